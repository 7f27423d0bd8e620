"""A compact record of what the agent did in a turn, for the turn result.

:func:`summarize_actions` reduces the turn's completed Codex items to an :class:`Actions` record
(part of the tools' structured output); :func:`describe_actions` renders that record as a few short
lines for the text content. Neither ever pastes command output: the full items stay with the
thread (``get_thread``).

Items are plain dicts as Codex emits them; missing fields, ``None`` values, unknown item types and
unknown statuses never raise. What is recorded:

* ``command_execution``: the command without its shell wrapper (cut to 500 characters), its exit
  code and status.
* ``file_change``: one entry per (path, kind), in first-seen order; a file edited in five patches
  is one entry. Changes of a ``failed`` or ``declined`` patch are left out: nothing was changed.
  Paths are kept as Codex reports them (absolute).
* ``mcp_tool_call``: server, tool and status.
* ``web_search``: the query (or, for a page visit, the URL).
* ``todo_list``: the last todo list of the turn.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TypeGuard

from pydantic import BaseModel, Field

from .progress import (
    one_line,
    relative_path,
    text_of,
    unwrap_command,
    web_search_query,
)

__all__ = [
    "Actions",
    "CommandAction",
    "FileChangeAction",
    "McpToolCallAction",
    "TodoAction",
    "describe_actions",
    "summarize_actions",
]

COMMAND_MAX = 500
"""Longest command string kept in :class:`CommandAction`."""
TODO_TEXT_MAX = 500
"""Longest todo item text kept in :class:`TodoAction`."""

# describe_actions: longest entry, and longest list of entries on one line (before "… and N more").
_ENTRY_MAX = 80
_LINE_BUDGET = 400

_UNSUCCESSFUL = frozenset({"failed", "declined", "error", "errored"})


class CommandAction(BaseModel):
    """A shell command the agent ran."""

    command: str = Field(
        description="The command, without the shell wrapper Codex runs it in "
        f"(at most {COMMAND_MAX} characters)."
    )
    exit_code: int | None = Field(
        default=None, description="The command's exit code; null if it did not finish or run."
    )
    status: str = Field(description="completed, failed, declined or in_progress.")


class FileChangeAction(BaseModel):
    """A file the agent changed."""

    path: str = Field(description="The file's path, as Codex reported it.")
    kind: str = Field(description="add, delete or update.")


class McpToolCallAction(BaseModel):
    """A call the agent made to a tool of an MCP server."""

    server: str = Field(description="The MCP server's name in Codex's configuration.")
    tool: str = Field(description="The tool's name.")
    status: str = Field(description="completed, failed or in_progress.")


class TodoAction(BaseModel):
    """An entry of the agent's plan."""

    text: str = Field(description="What the entry says.")
    completed: bool = Field(description="Whether the agent marked it done.")


class Actions(BaseModel):
    """What the agent did in a turn; the full items (with command output) stay with the thread."""

    commands: list[CommandAction] = Field(
        default_factory=list, description="Shell commands run, in order."
    )
    file_changes: list[FileChangeAction] = Field(
        default_factory=list,
        description="Files changed, one entry per path and kind, in first-seen order.",
    )
    mcp_tool_calls: list[McpToolCallAction] = Field(
        default_factory=list, description="MCP tool calls made, in order."
    )
    web_searches: list[str] = Field(
        default_factory=list, description="Web search queries (or visited URLs), in order."
    )
    todo_list: list[TodoAction] | None = Field(
        default=None, description="The agent's plan as it stood at the end of the turn, if any."
    )
    left_out: int = Field(
        default=0,
        description="Entries left out of the lists above to keep a result small (the latest "
        "are kept); the thread's resource has them all.",
    )

    def capped(self, limit: int) -> Actions:
        """These actions with at most ``limit`` entries per list, the latest ones."""
        lists = ("commands", "file_changes", "mcp_tool_calls", "web_searches")
        cut = {name: getattr(self, name)[-limit:] for name in lists}
        todo = self.todo_list[-limit:] if self.todo_list else self.todo_list
        left_out = sum(len(getattr(self, name)) - len(cut[name]) for name in lists)
        left_out += len(self.todo_list or ()) - len(todo or ())
        if not left_out:
            return self
        return self.model_copy(update={**cut, "todo_list": todo, "left_out": left_out})


# --------------------------------------------------------------------------- summarize


def _is_mapping(value: object) -> TypeGuard[Mapping[str, Any]]:
    return type(value) is dict or isinstance(value, Mapping)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _command(item: Mapping[str, Any]) -> CommandAction:
    code = item.get("exit_code")
    exit_code = code if type(code) is int else None
    status = text_of(item.get("status"))
    if not status:
        status = "unknown" if exit_code is None else "completed" if exit_code == 0 else "failed"
    command = unwrap_command(item.get("command"))
    return CommandAction(command=_cut(command, COMMAND_MAX), exit_code=exit_code, status=status)


def _mcp_call(item: Mapping[str, Any]) -> McpToolCallAction:
    status = text_of(item.get("status"))
    if not status:
        status = "failed" if item.get("error") else "completed"
    return McpToolCallAction(
        server=text_of(item.get("server")), tool=text_of(item.get("tool")), status=status
    )


def _web_search(item: Mapping[str, Any]) -> str:
    query = web_search_query(item)
    if query:
        return query
    action = item.get("action")
    return text_of(action.get("url")) if _is_mapping(action) else ""


def _todo_list(item: Mapping[str, Any]) -> list[TodoAction]:
    entries = item.get("items")
    todos: list[TodoAction] = []
    if not isinstance(entries, list):
        return todos
    for entry in entries:
        if _is_mapping(entry):
            todos.append(
                TodoAction(
                    text=_cut(text_of(entry.get("text")), TODO_TEXT_MAX),
                    completed=entry.get("completed") is True,
                )
            )
    return todos


def summarize_actions(items: Iterable[Mapping[str, Any]]) -> Actions:
    """The :class:`Actions` record of a turn, from its completed items (in order).

    Items of other types (messages, reasoning, errors, unknown types) and values that are not
    mappings are skipped. See the module docstring for what is kept.
    """
    actions = Actions()
    seen_files: set[tuple[str, str]] = set()
    for item in items:
        if not _is_mapping(item):
            continue
        kind = item.get("type")
        if kind == "command_execution":
            actions.commands.append(_command(item))
        elif kind == "file_change":
            if text_of(item.get("status")) in _UNSUCCESSFUL:
                continue
            changes = item.get("changes")
            if not isinstance(changes, list):
                continue
            for change in changes:
                if not _is_mapping(change):
                    continue
                path = text_of(change.get("path"))
                change_kind = text_of(change.get("kind")) or "update"
                if path and (path, change_kind) not in seen_files:
                    seen_files.add((path, change_kind))
                    actions.file_changes.append(FileChangeAction(path=path, kind=change_kind))
        elif kind == "mcp_tool_call":
            actions.mcp_tool_calls.append(_mcp_call(item))
        elif kind == "web_search":
            query = _web_search(item)
            if query:
                actions.web_searches.append(query)
        elif kind == "todo_list":
            actions.todo_list = _todo_list(item)
    return actions


# --------------------------------------------------------------------------- describe

_VERBS = {"add": "added", "delete": "deleted", "update": "edited"}


def _describe_command(action: CommandAction) -> str:
    command = one_line(action.command, _ENTRY_MAX) or "(empty command)"
    status, code = action.status, action.exit_code
    if status == "declined":
        return f"✗ {command} (declined)"
    if code is not None and code != 0:
        return f"✗ {command} (exit {code})"
    if status in _UNSUCCESSFUL:
        return f"✗ {command} ({status})"
    if status == "completed":
        return f"✓ {command}"
    if status == "in_progress":
        return f"{command} (running)"
    return f"{command} ({one_line(status, 20)})"


def _describe_file(action: FileChangeAction, cwd: str | None) -> str:
    verb = _VERBS.get(action.kind) or one_line(action.kind, 20) or "changed"
    return f"{verb} {one_line(relative_path(action.path, cwd), _ENTRY_MAX)}"


def _describe_mcp(action: McpToolCallAction) -> str:
    name = ".".join(part for part in (action.server, action.tool) if part) or "(unknown tool)"
    name = one_line(name, _ENTRY_MAX)
    if action.status == "completed":
        return name
    if action.status in _UNSUCCESSFUL:
        return f"✗ {name} ({action.status})"
    return f"{name} ({one_line(action.status, 20)})"


def _describe_plan(todos: list[TodoAction]) -> str:
    done = sum(1 for todo in todos if todo.completed)
    line = f"{done}/{len(todos)} done"
    upcoming = next((todo.text for todo in todos if not todo.completed), "")
    upcoming = one_line(upcoming, _ENTRY_MAX)
    return f"{line} — next: {upcoming}" if upcoming else line


def _bounded(label: str, entries: Iterator[str], total: int, limit: int, sep: str) -> str:
    """``label: e1<sep>e2 … and N more``: at most ``limit`` entries and about 400 characters."""
    shown: list[str] = []
    used = 0
    for entry in entries:
        if len(shown) >= limit or (shown and used + len(sep) + len(entry) > _LINE_BUDGET):
            break
        used += len(entry) + (len(sep) if shown else 0)
        shown.append(entry)
    line = f"{label}: {sep.join(shown)}"
    if len(shown) < total:
        more = f"… and {total - len(shown)} more"
        line = f"{line}{sep}{more}" if shown else f"{line}{more}"
    return line


def describe_actions(actions: Actions, *, limit: int = 10, cwd: str | None = None) -> str:
    """A few plain-text lines summing up ``actions``, or ``""`` when the agent did nothing.

    One line per kind of action, e.g.::

        commands (3): ✓ pytest -q; ✗ make (exit 2); ✓ ruff check
        files: edited src/app.py, added tests/test_app.py
        mcp: github.search_issues
        web: "query"
        plan: 2/5 done — next: write the docs

    Each line shows at most ``limit`` entries (and about 400 characters), then ``… and N more``,
    so the text stays small whatever the turn did. File paths inside ``cwd`` are shown relative
    to it.
    """
    limit = max(limit, 0)
    lines: list[str] = []
    if actions.commands:
        commands = actions.commands
        lines.append(
            _bounded(
                f"commands ({len(commands)})",
                (_describe_command(c) for c in commands),
                len(commands),
                limit,
                "; ",
            )
        )
    if actions.file_changes:
        files = actions.file_changes
        lines.append(
            _bounded("files", (_describe_file(f, cwd) for f in files), len(files), limit, ", ")
        )
    if actions.mcp_tool_calls:
        calls = actions.mcp_tool_calls
        lines.append(_bounded("mcp", (_describe_mcp(c) for c in calls), len(calls), limit, ", "))
    if actions.web_searches:
        queries = actions.web_searches
        lines.append(
            _bounded(
                "web",
                (f'"{one_line(q, _ENTRY_MAX)}"' for q in queries),
                len(queries),
                limit,
                ", ",
            )
        )
    if actions.todo_list:
        lines.append(f"plan: {_describe_plan(actions.todo_list)}")
    return "\n".join(lines)
