"""Typed events and items of ``codex exec --experimental-json``, and the line parser.

Events and items are plain dicts typed as ``TypedDict``s, as in the TypeScript SDK:
``event["type"]``, ``event.get("item")``. Newer CLIs add fields and item types; the parser
keeps whatever it is given, so consumers should treat unknown ``type`` values as opaque.
"""

from __future__ import annotations

import json
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
    "TurnFailedEvent",
    "TurnStartedEvent",
    "Usage",
    "WebSearchItem",
    "parse_event",
    "sanitize_json",
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


ThreadEvent = Union[
    ThreadStartedEvent,
    TurnStartedEvent,
    TurnCompletedEvent,
    TurnFailedEvent,
    ItemStartedEvent,
    ItemUpdatedEvent,
    ItemCompletedEvent,
    ThreadErrorEvent,
]

_ITEM_EVENTS = frozenset({"item.started", "item.updated", "item.completed"})
_MAX_LINE_IN_ERROR = 500


def parse_event(line: bytes | bytearray | str) -> ThreadEvent:
    """Parse one JSONL line of codex's stdout into an event.

    Raises :class:`CodexParseError` (quoting the line, truncated) when the line is not a JSON
    object with a string ``type``, or an item event lacks its ``item`` object.
    """
    try:
        event = json.loads(line)
    except ValueError:
        raise CodexParseError(_quote(line)) from None
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise CodexParseError(_quote(line))
    kind = event["type"]
    if kind in _ITEM_EVENTS:
        if not isinstance(event.get("item"), dict):
            raise CodexParseError(_quote(line))
    elif kind == "turn.completed":
        usage = event.get("usage")
        if isinstance(usage, dict):
            # CLIs before 0.150 report only some counters; the TS SDK fills this one too.
            usage.setdefault("cache_write_input_tokens", 0)
    return cast(ThreadEvent, event)


def _quote(line: bytes | bytearray | str) -> str:
    head = line[: _MAX_LINE_IN_ERROR + 1]
    text = head.decode("utf-8", "replace") if isinstance(head, (bytes, bytearray)) else head
    if len(line) > _MAX_LINE_IN_ERROR:
        return f"{text[:_MAX_LINE_IN_ERROR]}… ({len(line)} bytes)"
    return text


def sanitize_json(value: Any) -> Any:
    """``value`` (parsed JSON) with lone surrogates in its strings replaced by U+FFFD.

    ``json.loads`` turns an escaped lone surrogate (``"\\ud800"``) into a string that cannot
    be encoded as UTF-8, which would fail wherever the text is written out later.
    """
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        return value
    if isinstance(value, dict):
        return {sanitize_json(k): sanitize_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [sanitize_json(v) for v in value]
    return value
