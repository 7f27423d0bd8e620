"""Typed events and items of ``codex exec --experimental-json``, and the line parser.

Events and items are plain dicts typed as ``TypedDict``s, as in the TypeScript SDK:
``event["type"]``, ``event.get("item")``. Newer CLIs add fields and item types; the parser
keeps whatever it is given, so consumers should treat unknown ``type`` values as opaque.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal, Union, cast

from typing_extensions import NotRequired, TypedDict

from .errors import CodexParseError

__all__ = [
    "AgentMessageItem",
    "CommandExecutionItem",
    "ErrorItem",
    "FileChangeItem",
    "FileUpdateChange",
    "ItemCompletedEvent",
    "ItemDeltaEvent",
    "ItemStartedEvent",
    "ItemUpdatedEvent",
    "McpToolCallItem",
    "ReasoningItem",
    "ThreadError",
    "ThreadErrorEvent",
    "ThreadEvent",
    "ThreadItem",
    "ThreadStartedEvent",
    "TodoItem",
    "TodoListItem",
    "TurnCompletedEvent",
    "TurnDiffUpdatedEvent",
    "TurnFailedEvent",
    "TurnStartedEvent",
    "Usage",
    "WebSearchItem",
    "loads_json",
    "parse_event",
]

# ---------------------------------------------------------------------------- items


class AgentMessageItem(TypedDict):
    id: str
    type: Literal["agent_message"]
    text: str
    """Natural language, or JSON text when the turn had an output schema."""


class ReasoningItem(TypedDict):
    id: str
    type: Literal["reasoning"]
    text: str


class CommandExecutionItem(TypedDict):
    id: str
    type: Literal["command_execution"]
    command: str
    aggregated_output: str
    exit_code: NotRequired[int | None]
    status: Literal["in_progress", "completed", "failed", "declined"]


class FileUpdateChange(TypedDict):
    path: str
    kind: Literal["add", "delete", "update"]


class FileChangeItem(TypedDict):
    id: str
    type: Literal["file_change"]
    changes: list[FileUpdateChange]
    status: Literal["in_progress", "completed", "failed"]


class McpToolCallItem(TypedDict):
    id: str
    type: Literal["mcp_tool_call"]
    server: str
    tool: str
    arguments: Any
    result: NotRequired[dict[str, Any] | None]
    error: NotRequired[dict[str, Any] | None]
    status: Literal["in_progress", "completed", "failed"]


class WebSearchItem(TypedDict):
    id: str
    type: Literal["web_search"]
    query: str


class TodoItem(TypedDict):
    text: str
    completed: bool


class TodoListItem(TypedDict):
    id: str
    type: Literal["todo_list"]
    items: list[TodoItem]


class ErrorItem(TypedDict):
    id: str
    type: Literal["error"]
    message: str


ThreadItem = Union[
    AgentMessageItem,
    ReasoningItem,
    CommandExecutionItem,
    FileChangeItem,
    McpToolCallItem,
    WebSearchItem,
    TodoListItem,
    ErrorItem,
]

# --------------------------------------------------------------------------- events


class Usage(TypedDict):
    """Token usage; codex reports it cumulatively for the whole thread."""

    input_tokens: int
    cached_input_tokens: int
    cache_write_input_tokens: int
    output_tokens: int
    reasoning_output_tokens: int


class ThreadError(TypedDict):
    message: str


class ThreadStartedEvent(TypedDict):
    type: Literal["thread.started"]
    thread_id: str


class TurnStartedEvent(TypedDict):
    type: Literal["turn.started"]


class TurnCompletedEvent(TypedDict):
    type: Literal["turn.completed"]
    usage: Usage


class TurnFailedEvent(TypedDict):
    type: Literal["turn.failed"]
    error: ThreadError


class ItemStartedEvent(TypedDict):
    type: Literal["item.started"]
    item: ThreadItem


class ItemUpdatedEvent(TypedDict):
    type: Literal["item.updated"]
    item: ThreadItem


class ItemCompletedEvent(TypedDict):
    type: Literal["item.completed"]
    item: ThreadItem


class ThreadErrorEvent(TypedDict):
    """A top-level ``error`` event. Often not fatal: codex reports reconnects this way."""

    type: Literal["error"]
    message: str


class ItemDeltaEvent(TypedDict):
    """Text added to an agent message as the model writes it (app-server engine only; exec
    gives the whole message with ``item.completed``)."""

    type: Literal["item.delta"]
    item_id: str
    delta: str


class TurnDiffUpdatedEvent(TypedDict):
    """The turn's changes so far, as one unified diff (app-server engine only)."""

    type: Literal["turn.diff.updated"]
    diff: str


ThreadEvent = Union[
    ThreadStartedEvent,
    TurnStartedEvent,
    TurnCompletedEvent,
    TurnFailedEvent,
    ItemStartedEvent,
    ItemUpdatedEvent,
    ItemCompletedEvent,
    ThreadErrorEvent,
    ItemDeltaEvent,
    TurnDiffUpdatedEvent,
]

_ITEM_EVENTS = frozenset({"item.started", "item.updated", "item.completed"})
_MAX_LINE_IN_ERROR = 500


def parse_event(line: bytes | bytearray | str) -> ThreadEvent:
    """Parse one JSONL line of codex's stdout into an event.

    Raises :class:`CodexParseError` (quoting the line, truncated) when the line is not a JSON
    object with a string ``type``, or a field the SDK reads has the wrong type: an item
    event's ``item`` (an object with a string ``type``; an ``agent_message``'s ``text`` a
    string), ``thread.started``'s ``thread_id``, ``turn.failed``'s ``error.message``. Lone
    surrogates in strings become U+FFFD (see :func:`loads_json`).
    """
    try:
        event = loads_json(line)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than json allows.
        raise CodexParseError(_quote(line)) from None
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise CodexParseError(_quote(line))
    kind = event["type"]
    if kind in _ITEM_EVENTS:
        item = event.get("item")
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise CodexParseError(_quote(line))
        if item["type"] == "agent_message" and not isinstance(item.get("text"), str):
            raise CodexParseError(_quote(line))
    elif kind == "thread.started":
        # A thread id is a key of the caller's state (and a command-line argument later).
        if not isinstance(event.get("thread_id"), str) or not event["thread_id"]:
            raise CodexParseError(_quote(line))
    elif kind == "turn.failed":
        error = event.get("error")
        if not isinstance(error, dict) or not isinstance(error.get("message"), str):
            raise CodexParseError(_quote(line))
    elif kind == "turn.completed":
        usage = event.get("usage")
        if isinstance(usage, dict):
            # CLIs before 0.150 report only some counters; the TS SDK fills this one too.
            usage.setdefault("cache_write_input_tokens", 0)
    return cast(ThreadEvent, event)


# json.loads decodes bytes with "surrogatepass", so a surrogate may also come UTF-8-style.
_ENCODED_SURROGATE = re.compile(rb"\xed[\xa0-\xbf]")
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def loads_json(line: bytes | bytearray | str) -> Any:
    """``json.loads``, with every lone surrogate in a string (key or value) replaced by U+FFFD.

    JSON may escape half of a UTF-16 pair (``"\\ud800"``); Python decodes it to a ``str``
    that cannot be encoded as UTF-8, so whoever writes it on (a log, a pipe, an HTTP body)
    fails far from here. Only a line that may hold one is walked: the test is two substring
    searches (an escaped backslash before "ud" is a false alarm that costs the walk).
    Raises ``ValueError`` as ``json.loads`` does.
    """
    value = json.loads(line)
    if isinstance(line, str):
        suspect = (
            "\\ud" in line
            or "\\uD" in line
            or (not line.isascii() and _LONE_SURROGATE.search(line) is not None)
        )
    else:
        suspect = (
            b"\\ud" in line
            or b"\\uD" in line
            or (b"\xed" in line and _ENCODED_SURROGATE.search(line) is not None)
        )
    return _replace_surrogates(value) if suspect else value


def _replace_surrogates(value: Any) -> Any:
    def fix(text: str) -> str:
        return _LONE_SURROGATE.sub("\ufffd", text)

    if isinstance(value, str):
        return fix(value)
    # Iteratively: a line may nest as deep as json.loads allows, deeper than our stack.
    pending = [value]
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            for index, child in enumerate(node):
                if isinstance(child, str):
                    node[index] = fix(child)
                elif isinstance(child, (list, dict)):
                    pending.append(child)
        elif isinstance(node, dict):
            for key, child in list(node.items()):
                if isinstance(child, str):
                    child = fix(child)
                elif isinstance(child, (list, dict)):
                    pending.append(child)
                fixed = fix(key)
                if fixed != key:
                    del node[key]
                node[fixed] = child
    return value


def _quote(line: bytes | bytearray | str) -> str:
    head = line[: _MAX_LINE_IN_ERROR + 1]
    text = head.decode("utf-8", "replace") if isinstance(head, (bytes, bytearray)) else head
    if len(line) > _MAX_LINE_IN_ERROR:
        return f"{text[:_MAX_LINE_IN_ERROR]}… ({len(line)} bytes)"
    return text
