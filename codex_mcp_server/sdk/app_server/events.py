"""App-server notifications of one turn, as the SDK's typed events (those of ``codex exec``).

The app-server names things in camelCase and reports a plan as ``turn/plan/updated`` where
exec has a ``todo_list`` item; :class:`TurnEvents` folds one turn's notifications into the
events a consumer of the exec engine sees, so that everything above the engine is the same.
Notifications and item types with no exec counterpart (user messages, rate limits, status
changes, ...) give no event; unknown ones are passed over. Two events exist only here: the
agent's text as it is written (``item.delta``) and the turn's diff (``turn.diff.updated``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from ..events import ThreadEvent, Usage

__all__ = ["TurnEvents", "convert_item", "convert_usage"]

_STATUS = {"inProgress": "in_progress"}


def _status(value: Any) -> str:
    text = str(value or "")
    return _STATUS.get(text, text)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def convert_item(item: Mapping[str, Any]) -> dict[str, Any] | None:
    """An app-server ``ThreadItem`` as an exec item, or ``None`` when exec has no such item."""
    kind = item.get("type")
    base: dict[str, Any] = {"id": _text(item.get("id"))}
    if kind == "agentMessage":
        return {**base, "type": "agent_message", "text": _text(item.get("text"))}
    if kind == "reasoning":
        parts = item.get("summary") or item.get("content") or []
        text = "\n".join(_text(p) for p in parts) if isinstance(parts, list) else _text(parts)
        return {**base, "type": "reasoning", "text": text} if text.strip() else None
    if kind == "commandExecution":
        code = item.get("exitCode")
        return {
            **base,
            "type": "command_execution",
            "command": _text(item.get("command")),
            "aggregated_output": _text(item.get("aggregatedOutput")),
            "exit_code": code if isinstance(code, int) else None,
            "status": _status(item.get("status")),
        }
    if kind == "fileChange":
        changes = []
        for change in item.get("changes") or ():
            if isinstance(change, Mapping):
                change_kind = change.get("kind")
                if isinstance(change_kind, Mapping):
                    change_kind = change_kind.get("type")
                changes.append({"path": _text(change.get("path")), "kind": _text(change_kind)})
        return {
            **base,
            "type": "file_change",
            "changes": changes,
            "status": _status(item.get("status")),
        }
    if kind == "mcpToolCall":
        return {
            **base,
            "type": "mcp_tool_call",
            "server": _text(item.get("server")),
            "tool": _text(item.get("tool")),
            "arguments": item.get("arguments"),
            "result": item.get("result"),
            "error": item.get("error"),
            "status": _status(item.get("status")),
        }
    if kind == "webSearch":
        return {
            **base,
            "type": "web_search",
            "query": _text(item.get("query")),
            "action": item.get("action"),
        }
    if kind == "collabAgentToolCall":
        return {
            **base,
            "type": "collab_tool_call",
            "tool": _text(item.get("tool")),
            "prompt": item.get("prompt"),
            "receiver_thread_ids": item.get("receiverThreadIds"),
            "agents_states": item.get("agentsStates"),
            "status": _status(item.get("status")),
        }
    return None


def convert_usage(usage: Any) -> Usage:
    """An app-server ``TokenUsageBreakdown`` as exec's usage."""
    get = usage.get if isinstance(usage, Mapping) else (lambda key: None)

    def count(key: str) -> int:
        value = get(key)
        return value if isinstance(value, int) else 0

    return {
        "input_tokens": count("inputTokens"),
        "cached_input_tokens": count("cachedInputTokens"),
        "cache_write_input_tokens": count("cacheWriteInputTokens"),
        "output_tokens": count("outputTokens"),
        "reasoning_output_tokens": count("reasoningOutputTokens"),
    }


class TurnEvents:
    """Folds the notifications of one turn (``turn_id``) into exec events."""

    def __init__(self, turn_id: str, usage: Usage | None = None) -> None:
        self.turn_id = turn_id
        self.ended = False
        self.interrupted = False
        self.usage = usage
        """Token usage of the thread so far (cumulative, as exec reports it)."""
        self.command_pids: set[int] = set()
        """Processes of the commands this turn started (to stop them with the turn)."""
        self._plan: dict[str, Any] | None = None
        self._last_error: str | None = None

    def feed(self, method: str, params: Mapping[str, Any]) -> list[ThreadEvent]:
        turn = params.get("turn")
        turn_id = params.get("turnId", turn.get("id") if isinstance(turn, Mapping) else None)
        if isinstance(turn, Mapping) and turn.get("rootTurnId") == self.turn_id:
            turn_id = self.turn_id  # A review runs as a sub-turn of the turn review/start gave.
        if turn_id is not None and turn_id != self.turn_id:
            return []  # Another turn of the thread (one that ended before ours began).
        if method in ("item/started", "item/completed"):
            return self._item(method, params.get("item"))
        if method == "turn/started":
            return [cast(ThreadEvent, {"type": "turn.started"})]
        if method == "item/agentMessage/delta":
            delta = params.get("delta")
            if not isinstance(delta, str) or not delta:
                return []
            event = {"type": "item.delta", "item_id": _text(params.get("itemId")), "delta": delta}
            return [cast(ThreadEvent, event)]
        if method == "turn/diff/updated":
            return [
                cast(ThreadEvent, {"type": "turn.diff.updated", "diff": _text(params.get("diff"))})
            ]
        if method == "turn/plan/updated":
            return self._plan_updated(params.get("plan"))
        if method == "thread/tokenUsage/updated":
            usage = params.get("tokenUsage")
            if isinstance(usage, Mapping):
                self.usage = convert_usage(usage.get("total"))
            return []
        if method == "error":
            error = params.get("error")
            message = _text(error.get("message") if isinstance(error, Mapping) else error)
            if params.get("willRetry"):
                return [cast(ThreadEvent, {"type": "error", "message": message})]
            self._last_error = message
            return []
        if method == "warning":
            item = {"id": "warning", "type": "error", "message": _text(params.get("message"))}
            return [cast(ThreadEvent, {"type": "item.completed", "item": item})]
        if method == "turn/completed" and isinstance(turn, Mapping):
            return self._completed(turn)
        return []

    def _item(self, method: str, raw: Any) -> list[ThreadEvent]:
        if not isinstance(raw, Mapping):
            return []
        item = convert_item(raw)
        if item is None:
            return []
        if item["type"] == "command_execution":
            pid = raw.get("processId")
            if isinstance(pid, (str, int)) and str(pid).isdigit():
                self.command_pids.add(int(pid))
        kind = "item.started" if method == "item/started" else "item.completed"
        return [cast(ThreadEvent, {"type": kind, "item": item})]

    def _plan_updated(self, steps: Any) -> list[ThreadEvent]:
        items = [
            {"text": _text(step.get("step")), "completed": step.get("status") == "completed"}
            for step in steps or ()
            if isinstance(step, Mapping)
        ]
        kind = "item.updated" if self._plan is not None else "item.started"
        self._plan = {"id": f"plan-{self.turn_id}", "type": "todo_list", "items": items}
        return [cast(ThreadEvent, {"type": kind, "item": dict(self._plan)})]

    def _completed(self, turn: Mapping[str, Any]) -> list[ThreadEvent]:
        self.ended = True
        events: list[ThreadEvent] = []
        if self._plan is not None:
            events.append(cast(ThreadEvent, {"type": "item.completed", "item": self._plan}))
        status = turn.get("status")
        if status == "completed":
            usage = self.usage or convert_usage(None)
            events.append(cast(ThreadEvent, {"type": "turn.completed", "usage": usage}))
            return events
        error = turn.get("error")
        message = _text(error.get("message")) if isinstance(error, Mapping) else ""
        if status == "interrupted":
            self.interrupted = True
            message = message or "The turn was interrupted."
        message = message or self._last_error or f"The turn ended as {status}."
        events.append(cast(ThreadEvent, {"type": "turn.failed", "error": {"message": message}}))
        return events
