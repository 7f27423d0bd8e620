"""One human line per Codex event, for MCP ``notifications/progress`` messages.

Codex (``codex exec --json``) streams JSONL events; :func:`render_event` turns each into a single
line that a person watching a tool call can follow, or ``None`` when the event deserves no line.
:func:`heartbeat` gives the line sent while Codex is silent.

Which events give a line
------------------------
* ``item.started`` / ``item.completed``: the item, as below.
* ``item.updated``: only ``todo_list`` items (the plan's progress changes); for every other type
  the started and completed lines already tell the story, so updates are silent.
* a top-level ``error`` event: ``warning: <message>``. Codex reports reconnects this way
  (``Reconnecting... 2/5 (...)``); they are not fatal, but they explain a stalled turn.
* ``thread.started``, ``turn.started``, ``turn.completed``, ``turn.failed`` and unknown event types:
  ``None``. The turn's outcome belongs to the tool result, not to a progress line.

Item lines
----------
=================== ============================ ===========================================
item type           started                      completed
=================== ============================ ===========================================
command_execution   ``$ pytest -q``              ``✓ $ pytest -q (exit 0)``,
                                                 ``✗ $ make (exit 2)``, ``✗ $ rm x (declined)``
file_change         ``editing src/app.py…``      ``edited src/app.py, added tests/t.py``,
                                                 ``✗ failed to edit src/app.py``
mcp_tool_call       ``mcp: github.search``       ``✓ mcp: github.search``,
                                                 ``✗ mcp: github.search: <error>``
web_search          ``searching the web: <q>…``  ``web search: <query>``
todo_list           ``plan: 2/5 done — next: …`` (same; also on ``item.updated``)
collab_tool_call    ``agent: spawn_agent — <p>`` ``✓ agent: wait (2 completed)``
reasoning           (none)                       ``thinking: <first non-empty line>``
agent_message       (none)                       ``message: <first non-empty line>``
error               ``warning: <message>``       ``warning: <message>``
anything else       ``<type> (<status>)``        ``<type> (<status>)``
=================== ============================ ===========================================

Commands are shown without the shell wrapper Codex adds (``/bin/bash -lc '...'``), see
:func:`unwrap_command`. File paths inside ``cwd`` are shown relative to it. Agent messages and
reasoning with no visible text give no line.

Every line is a single line (runs of whitespace, newlines included, become one space), at most
:data:`MAX_LINE` characters (cut with ``…``) and never empty. Rendering is lenient: missing fields,
``None`` values, values of the wrong type, unknown item types and unknown statuses never raise.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

__all__ = [
    "MAX_LINE",
    "heartbeat",
    "one_line",
    "plan_summary",
    "relative_path",
    "render_event",
    "text_of",
    "unwrap_command",
    "web_search_query",
]

MAX_LINE = 200
"""The longest progress line, in characters."""

_ELLIPSIS = "…"
_NON_SPACE = re.compile(r"\S")
# Text longer than this is cut before whitespace is collapsed, so that rendering a huge field
# costs no more than rendering a short one.
_SCAN = 4 * MAX_LINE
# Names (server, tool, item type, ...) are cut to this length inside a line.
_NAME_MAX = 60
# Command strings longer than this are not parsed with shlex (pure Python, slow on megabytes).
_SHLEX_MAX = 20_000
# Unwrapped forms of commands up to this length are cached.
_CACHE_MAX = 2_000

_POSIX_SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "fish"})
_POWERSHELLS = frozenset({"powershell", "pwsh"})
_CMD = frozenset({"cmd"})
_SHELLS = _POSIX_SHELLS | _POWERSHELLS | _CMD

_DONE_VERBS = {"add": "added", "delete": "deleted", "update": "edited"}
_DOING_VERBS = {"add": "adding", "delete": "deleting", "update": "editing"}
_BASE_VERBS = {"add": "add", "delete": "delete", "update": "edit"}

# A line never shows more than this many file changes.
_MAX_PARTS = MAX_LINE // 4

_FAILED_STATUSES = frozenset({"failed", "error", "errored"})
_KNOWN_STATUSES = frozenset({"in_progress", "completed", "failed", "declined"})


# --------------------------------------------------------------------------- text helpers


def text_of(value: object) -> str:
    """``value`` as text: ``None`` is ``""``, anything that is not a string goes through ``str``."""
    if type(value) is str:
        return value
    if value is None:
        return ""
    return str(value)


def _get(mapping: object, key: str) -> Any:
    """``mapping[key]``, or ``None`` when ``mapping`` is not a mapping or lacks the key."""
    if type(mapping) is dict or isinstance(mapping, Mapping):
        return mapping.get(key)
    return None


def one_line(text: str, limit: int = MAX_LINE) -> str:
    """``text`` on one line: whitespace runs collapsed, cut to ``limit`` characters with ``…``.

    Only the first few hundred characters beyond ``limit`` are looked at, so the cost does not
    grow with the length of ``text``.
    """
    if len(text) <= limit:
        return " ".join(text.split())
    if limit <= 0:
        return ""
    window = limit * 4 + 64
    cut = len(text) > window
    line = " ".join((text[:window] if cut else text).split())
    if len(line) > limit or (cut and line):
        line = line[: limit - 1].rstrip() + _ELLIPSIS
    return line


def _first_line(text: str) -> str:
    """The first line of ``text`` that is not blank (possibly cut, never scanning all of it)."""
    match = _NON_SPACE.search(text)
    if match is None:
        return ""
    start = match.start()
    end = text.find("\n", start, start + _SCAN)
    if end == -1:
        end = start + _SCAN
    return text[start:end]


def _compose(prefix: str, body: str, suffix: str = "") -> str:
    """``prefix + body + suffix`` with ``body`` cut so that the whole fits in :data:`MAX_LINE`."""
    budget = MAX_LINE - len(prefix) - len(suffix)
    return prefix + one_line(body, max(budget, 1)) + suffix


def _name(value: object) -> str:
    """A short single-line name (server, tool, type, status) from any value."""
    return one_line(text_of(value), _NAME_MAX)


# --------------------------------------------------------------------------- paths


def relative_path(path: str, cwd: str | None) -> str:
    """``path`` relative to ``cwd`` when it lies inside it, else ``path`` unchanged.

    A plain prefix test (no file system access, no symlink resolution): ``/repo/src/a.py`` with
    ``cwd="/repo"`` is ``src/a.py``; ``/repo`` itself is ``.``; ``/repository/a.py`` stays as is.
    """
    if not cwd or not path:
        return path
    prefix = cwd.rstrip("/\\")
    if not prefix or not path.startswith(prefix):
        return path
    n = len(prefix)
    if len(path) == n:
        return "."
    if path[n] in "/\\":
        return path[n + 1 :] or "."
    return path


# --------------------------------------------------------------------------- commands


@lru_cache(maxsize=128)
def _shell_name(token: str) -> str:
    """``/usr/bin/bash`` -> ``bash``; ``C:\\...\\PowerShell.exe`` -> ``powershell``."""
    name = token.rsplit("/", 1)[-1].rsplit("\\", 1)[-1].lower()
    if name.endswith(".exe"):
        name = name[:-4]
    return name


def _is_command_flag(shell: str, flag: str) -> bool:
    """Whether ``flag`` makes ``shell`` run its next argument as a script (``-c``, ``-lc``...)."""
    if shell in _POSIX_SHELLS:
        # -c, -lc, -ic, -xc ...: a short cluster of single-letter options that includes c.
        return 2 <= len(flag) <= 5 and flag[0] == "-" and "c" in flag and flag[1:].isalpha()
    if shell in _POWERSHELLS:
        return flag.lower() in ("-command", "-c")
    return flag.lower() == "/c"


def _unwrap_argv(argv: Sequence[str]) -> str | None:
    """The script of ``[shell, flags..., -c, script, ...]``, or ``None`` if not a shell wrapper."""
    if len(argv) < 3:
        return None
    shell = _shell_name(argv[0])
    if shell not in _SHELLS:
        return None
    for i in range(1, len(argv) - 1):
        flag = argv[i]
        if _is_command_flag(shell, flag):
            return argv[i + 1]
        if not flag.startswith(("-", "/")):
            return None
    return None


def _unwrap_parsed(command: str) -> str:
    """Unwrap with a full shlex parse."""
    try:
        argv = shlex.split(command)
    except ValueError:
        return command
    inner = _unwrap_argv(argv)
    return command if inner is None else inner


def _unwrap_rough(script: str) -> str:
    """Drop the quotes around a script too long to parse (display only)."""
    if len(script) >= 2 and script[0] in "'\"" and script[-1] == script[0]:
        return script[1:-1]
    return script


@lru_cache(maxsize=256)
def _unwrap_short(command: str) -> str:
    """:func:`_unwrap_string`, cached: a command is rendered when it starts and when it ends."""
    return _unwrap_string(command)


def _unwrap_string(command: str) -> str:
    text = command.strip()
    head, sep, rest = text.partition(" ")
    if not sep:
        return text
    if head[:1] in ("'", '"'):
        # A quoted shell path, e.g. "C:\Program Files\PowerShell\7\pwsh.exe" -Command ...
        return _unwrap_parsed(text) if len(text) <= _SHLEX_MAX else text
    shell = _shell_name(head)
    if shell not in _SHELLS:
        return text
    flag, _, script = rest.lstrip().partition(" ")
    if not _is_command_flag(shell, flag):
        if flag.startswith(("-", "/")) and len(text) <= _SHLEX_MAX:
            return _unwrap_parsed(text)  # e.g. bash --noprofile -c '...'
        return text
    script = script.strip()
    if len(script) >= 2:
        quote = script[0]
        inner = script[1:-1]
        if quote == "'" and script[-1] == "'" and "'" not in inner:
            return inner
        if quote == '"' and script[-1] == '"' and '"' not in inner and "\\" not in inner:
            return inner
    if script and not any(ch in script for ch in " \t\n'\"\\"):
        return script
    if len(text) > _SHLEX_MAX:
        return _unwrap_rough(script)
    return _unwrap_parsed(text)


def unwrap_command(command: object) -> str:
    """The command a person typed, without the shell wrapper Codex runs it in.

    ``/bin/bash -lc 'pytest -q'`` -> ``pytest -q``; ``/bin/zsh -lc "cd x && make"`` ->
    ``cd x && make``; ``bash -c ls`` -> ``ls``; ``powershell.exe -Command 'dir'`` -> ``dir``.
    Anything else comes back stripped but unchanged, as does a string shlex cannot parse
    (unbalanced quotes). An argv list (older Codex versions) is unwrapped the same way or
    joined with shell quoting. ``None`` gives ``""``. Never raises.
    """
    if type(command) is str:
        return _unwrap_short(command) if len(command) <= _CACHE_MAX else _unwrap_string(command)
    if command is None:
        return ""
    if isinstance(command, (list, tuple)):
        argv = [text_of(part) for part in command]
        inner = _unwrap_argv(argv)
        return inner if inner is not None else shlex.join(argv)
    return text_of(command).strip()


# --------------------------------------------------------------------------- items


def _status(item: Mapping[str, Any]) -> str:
    status = item.get("status")
    if type(status) is str and status in _KNOWN_STATUSES:
        return status
    if status is None:
        return ""
    return _name(status)


def _exit_code(item: Mapping[str, Any]) -> int | None:
    code = item.get("exit_code")
    if type(code) is int:
        return code
    if isinstance(code, float) and code.is_integer():
        return int(code)
    return None


def _render_command(item: Mapping[str, Any], phase: str, cwd: str | None) -> str | None:
    command = unwrap_command(item.get("command"))
    if not command or command.isspace():
        command = "(empty command)"
    status = _status(item)
    code = _exit_code(item)
    if status == "declined":
        return _compose("✗ $ ", command, " (declined)")
    if phase == "started" or status == "in_progress":
        return _compose("$ ", command)
    if status in _FAILED_STATUSES or (code is not None and code != 0):
        suffix = f" (exit {code})" if code is not None else f" ({status})"
        return _compose("✗ $ ", command, suffix)
    if status in ("completed", ""):
        if code is not None:
            return _compose("✓ $ ", command, f" (exit {code})")
        return _compose("✓ $ ", command)
    return _compose("$ ", command, f" ({status})")


def _change_parts(
    changes: object, verbs: Mapping[str, str], other: str, cwd: str | None
) -> tuple[list[str], int]:
    """``["edited src/a.py", ...]`` (only as many as a line can show) and the number of changes."""
    parts: list[str] = []
    total = 0
    if not isinstance(changes, (list, tuple)):
        return parts, total
    for change in changes:
        if not (type(change) is dict or isinstance(change, Mapping)):
            continue
        path = text_of(change.get("path"))
        if not path:
            continue
        total += 1
        if len(parts) < _MAX_PARTS:
            kind = change.get("kind")
            verb = verbs.get(kind, other) if type(kind) is str else other
            parts.append(f"{verb} {relative_path(path, cwd)}")
    return parts, total


def _join_fitting(prefix: str, parts: list[str], total: int, suffix: str = "") -> str:
    """``prefix`` + as many ``parts`` as fit in a line + `` and N more`` + ``suffix``."""
    if len(parts) == total:
        line = prefix + ", ".join(parts) + suffix
        if len(line) <= MAX_LINE:
            return one_line(line)
    shown: list[str] = []
    used = len(prefix) + len(suffix)
    for part in parts:
        clipped = one_line(part, _NAME_MAX * 2)
        reserve = len(f" and {total} more") if len(shown) + 1 < total else 0
        extra = len(clipped) + (2 if shown else 0)
        if used + extra + reserve > MAX_LINE:
            break
        shown.append(clipped)
        used += extra
    if not shown and parts:
        return _compose(prefix, parts[0], suffix)
    text = prefix + ", ".join(shown)
    if len(shown) < total:
        text += f" and {total - len(shown)} more"
    return text + suffix


def _render_file_change(item: Mapping[str, Any], phase: str, cwd: str | None) -> str | None:
    status = _status(item)
    changes = item.get("changes")
    if status == "in_progress" or (phase == "started" and not status):
        parts, total = _change_parts(changes, _DOING_VERBS, "changing", cwd)
        if not parts:
            return "editing files…"
        return _join_fitting("", parts, total, "…")
    if status in _FAILED_STATUSES:
        parts, total = _change_parts(changes, _BASE_VERBS, "change", cwd)
        if not parts:
            return "✗ failed to edit files"
        return _join_fitting("✗ failed to ", parts, total)
    if status == "declined":
        parts, total = _change_parts(changes, _BASE_VERBS, "change", cwd)
        if not parts:
            return "✗ file change declined"
        return _join_fitting("✗ declined: ", parts, total)
    parts, total = _change_parts(changes, _DONE_VERBS, "changed", cwd)
    if status not in ("completed", ""):
        suffix = f" ({status})"
        return _join_fitting("", parts, total, suffix) if parts else f"file change{suffix}"
    if not parts:
        return "file change (no files)"
    return _join_fitting("", parts, total)


def _mcp_name(item: Mapping[str, Any]) -> str:
    server = _name(item.get("server"))
    tool = _name(item.get("tool"))
    if server and tool:
        return f"{server}.{tool}"
    return server or tool or "(unknown tool)"


def _error_message(error: object) -> str:
    if type(error) is dict or isinstance(error, Mapping):
        return text_of(error.get("message"))
    return text_of(error)


def _render_mcp(item: Mapping[str, Any], phase: str, cwd: str | None) -> str | None:
    name = _mcp_name(item)
    status = _status(item)
    if status == "declined":
        return f"✗ mcp: {name} (declined)"
    if phase == "started" or status == "in_progress":
        return f"mcp: {name}"
    message = _first_line(_error_message(item.get("error")))
    if status in _FAILED_STATUSES or (not status and message):
        if message:
            return _compose(f"✗ mcp: {name}: ", message)
        return f"✗ mcp: {name} (failed)"
    if status in ("completed", ""):
        return f"✓ mcp: {name}"
    return f"mcp: {name} ({status})"


def web_search_query(item: Mapping[str, Any]) -> str:
    """A ``web_search`` item's query (``query``, ``action.query``, ``action.queries``) or ``""``."""
    query = text_of(item.get("query"))
    if query.strip():
        return query
    action = item.get("action")
    query = text_of(_get(action, "query"))
    if query.strip():
        return query
    queries = _get(action, "queries")
    if isinstance(queries, list) and queries:
        query = text_of(queries[0])
        if query.strip():
            return query
    return ""


def _web_other(item: Mapping[str, Any]) -> str:
    """What a ``web_search`` item without a query did (open a page, find in a page), or ``""``."""
    action = item.get("action")
    kind = text_of(_get(action, "type"))
    url = text_of(_get(action, "url"))
    if kind == "open_page" and url:
        return f"opened {url}"
    if kind == "find_in_page":
        pattern = text_of(_get(action, "pattern"))
        return f'find "{pattern}" in {url or "page"}'
    return ""


def _render_web_search(item: Mapping[str, Any], phase: str, cwd: str | None) -> str | None:
    query = web_search_query(item)
    if phase == "started":
        if query:
            return _compose("searching the web: ", query, _ELLIPSIS)
        return "searching the web…"
    if query:
        return _compose("web search: ", query)
    other = _web_other(item)
    if other:
        return _compose("web: ", other)
    return "web search"


def plan_summary(items: object) -> str | None:
    """``2/5 done — next: <first open item>`` for a todo list, or ``None`` if it has no items."""
    if not isinstance(items, (list, tuple)):
        return None
    total = done = 0
    upcoming = ""
    for entry in items:
        if not (type(entry) is dict or isinstance(entry, Mapping)):
            continue
        total += 1
        if entry.get("completed") is True:
            done += 1
        elif not upcoming:
            upcoming = text_of(entry.get("text"))
    if total == 0:
        return None
    summary = f"{done}/{total} done"
    upcoming = _first_line(upcoming)
    if done < total and upcoming:
        summary += f" — next: {upcoming}"
    return summary


def _render_todo(item: Mapping[str, Any], phase: str, cwd: str | None) -> str | None:
    summary = plan_summary(item.get("items"))
    return _compose("plan: ", summary) if summary else "plan: (empty)"


def _render_reasoning(item: Mapping[str, Any], phase: str, cwd: str | None) -> str | None:
    if phase != "completed":
        return None
    line = _first_line(text_of(item.get("text"))).replace("**", "")
    line = one_line(line, MAX_LINE - 10)
    return f"thinking: {line}" if line else None


def _render_message(item: Mapping[str, Any], phase: str, cwd: str | None) -> str | None:
    if phase != "completed":
        return None
    line = _first_line(text_of(item.get("text")))
    return _compose("message: ", line) if line else None


def _render_error_item(item: Mapping[str, Any], phase: str, cwd: str | None) -> str | None:
    return _warning(item.get("message"))


def _warning(message: object) -> str:
    text = _first_line(text_of(message))
    return _compose("warning: ", text) if text else "warning: (no message)"


def _agent_states(states: object) -> str:
    """``2 completed, 1 running`` from a collab call's ``agents_states``."""
    if not (type(states) is dict or isinstance(states, Mapping)):
        return ""
    counts: dict[str, int] = {}
    for state in states.values():
        status = _name(_get(state, "status")) or "unknown"
        counts[status] = counts.get(status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in counts.items())


def _render_collab(item: Mapping[str, Any], phase: str, cwd: str | None) -> str | None:
    tool = _name(item.get("tool")) or "call"
    status = _status(item)
    states = _agent_states(item.get("agents_states"))
    detail = f" ({states})" if states else ""
    if phase == "started" or status == "in_progress":
        prompt = _first_line(text_of(item.get("prompt")))
        if prompt:
            return _compose(f"agent: {tool} — ", prompt)
        receivers = item.get("receiver_thread_ids")
        if isinstance(receivers, list) and receivers:
            plural = "s" if len(receivers) != 1 else ""
            return f"agent: {tool} ({len(receivers)} agent{plural})"
        return f"agent: {tool}"
    if status in _FAILED_STATUSES or status == "declined":
        return one_line(f"✗ agent: {tool} ({status}){detail}")
    if status in ("completed", ""):
        return one_line(f"✓ agent: {tool}{detail}")
    return one_line(f"agent: {tool} ({status}){detail}")


def _render_unknown(item: Mapping[str, Any], phase: str, cwd: str | None) -> str | None:
    kind = _name(item.get("type")) or "item"
    status = _status(item)
    return f"{kind} ({status})" if status else kind


_RENDERERS = {
    "command_execution": _render_command,
    "file_change": _render_file_change,
    "mcp_tool_call": _render_mcp,
    "web_search": _render_web_search,
    "todo_list": _render_todo,
    "reasoning": _render_reasoning,
    "agent_message": _render_message,
    "error": _render_error_item,
    "collab_tool_call": _render_collab,
}

_PHASES = {
    "item.started": "started",
    "item.updated": "updated",
    "item.completed": "completed",
}


def render_event(event: Mapping[str, Any], *, cwd: str | None = None) -> str | None:
    """One human line for a Codex JSONL event, or ``None`` when it deserves no line.

    ``cwd`` is the turn's working directory: file paths inside it are shown relative to it.
    See the module docstring for which events give a line and what it looks like. Never raises
    on odd input (missing or ``None`` fields, unknown types or statuses).
    """
    if not (type(event) is dict or isinstance(event, Mapping)):
        return None
    kind = event.get("type")
    phase = _PHASES.get(kind) if type(kind) is str else None
    if phase is None:
        if kind == "error":
            return _warning(event.get("message"))
        return None
    item = event.get("item")
    if not (type(item) is dict or isinstance(item, Mapping)):
        return None
    item_type = item.get("type")
    if phase == "updated" and item_type != "todo_list":
        return None
    if type(item_type) is str:
        return _RENDERERS.get(item_type, _render_unknown)(item, phase, cwd)
    return _render_unknown(item, phase, cwd)


def heartbeat(elapsed_s: float, doing: str = "working") -> str:
    """The line sent while Codex is silent: ``working… 45 s``, ``working… 2 min 05 s``.

    ``doing`` names the state (``queued`` while a turn waits for a slot). Whole seconds
    (rounded down); ``h``/``min``/``s`` past an hour. Negative or non-finite values count as 0.
    """
    try:
        seconds = int(elapsed_s)
    except (TypeError, ValueError, OverflowError):
        seconds = 0
    seconds = max(seconds, 0)
    if seconds < 60:
        return f"{doing}… {seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{doing}… {minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{doing}… {hours} h {minutes:02d} min {seconds:02d} s"
