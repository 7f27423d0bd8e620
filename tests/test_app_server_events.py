"""App-server notifications folded into the exec engine's events (no codex needed)."""

from __future__ import annotations

from typing import Any

from codex_mcp_server.sdk.app_server.events import TurnEvents, convert_item

TURN = {"threadId": "t", "turnId": "u"}


def _feed(events: TurnEvents, method: str, **params: Any) -> list[Any]:
    return list(events.feed(method, {**TURN, **params}))


def test_items_take_the_exec_shapes() -> None:
    command = {
        "type": "commandExecution",
        "id": "c1",
        "command": "/bin/bash -lc 'ls'",
        "aggregatedOutput": "a\n",
        "exitCode": 0,
        "status": "completed",
        "processId": "77",
    }
    assert convert_item(command) == {
        "id": "c1",
        "type": "command_execution",
        "command": "/bin/bash -lc 'ls'",
        "aggregated_output": "a\n",
        "exit_code": 0,
        "status": "completed",
    }
    change = {
        "type": "fileChange",
        "id": "p",
        "status": "inProgress",
        "changes": [{"path": "/w/a.py", "kind": {"type": "update"}, "diff": "…"}],
    }
    assert convert_item(change) == {
        "id": "p",
        "type": "file_change",
        "changes": [{"path": "/w/a.py", "kind": "update"}],
        "status": "in_progress",
    }
    assert convert_item({"type": "agentMessage", "id": "m", "text": "hi"}) == {
        "id": "m",
        "type": "agent_message",
        "text": "hi",
    }
    reasoning = {"type": "reasoning", "id": "r", "summary": ["**Plan**", "then"], "content": []}
    assert convert_item(reasoning) == {"id": "r", "type": "reasoning", "text": "**Plan**\nthen"}
    # exec reports reasoning only with a summary, and has no user-message items.
    assert convert_item({"type": "reasoning", "id": "r", "summary": [], "content": []}) is None
    assert convert_item({"type": "userMessage", "id": "x", "content": []}) is None
    assert convert_item({"type": "somethingNew", "id": "y"}) is None


def test_a_turn_folds_into_started_items_plan_and_completed_with_usage() -> None:
    events = TurnEvents("u")
    out = _feed(events, "turn/started", turn={"id": "u"})
    assert out == [{"type": "turn.started"}]
    step = {"step": "read", "status": "completed"}
    out = _feed(events, "turn/plan/updated", plan=[step, {"step": "fix", "status": "pending"}])
    assert out[0]["type"] == "item.started" and out[0]["item"]["type"] == "todo_list"
    out = _feed(events, "turn/plan/updated", plan=[step, {"step": "fix", "status": "completed"}])
    assert out[0]["type"] == "item.updated"
    total = {"inputTokens": 84, "cachedInputTokens": 24, "outputTokens": 10}
    assert _feed(events, "thread/tokenUsage/updated", tokenUsage={"total": total}) == []
    assert _feed(events, "account/rateLimits/updated") == []  # Unknown to exec: passed over.
    out = _feed(events, "turn/completed", turn={"id": "u", "status": "completed"})
    assert [e["type"] for e in out] == ["item.completed", "turn.completed"]
    assert out[0]["item"]["items"] == [
        {"text": "read", "completed": True},
        {"text": "fix", "completed": True},
    ]
    assert out[1]["usage"]["input_tokens"] == 84
    assert out[1]["usage"]["reasoning_output_tokens"] == 0
    assert events.ended


def test_failures_retries_and_other_turns() -> None:
    events = TurnEvents("u")
    assert _feed(events, "item/completed", turnId="older", item={"type": "agentMessage"}) == []
    retry = _feed(events, "error", error={"message": "Reconnecting… 1/5"}, willRetry=True)
    assert retry == [{"type": "error", "message": "Reconnecting… 1/5"}]
    assert _feed(events, "error", error={"message": "boom"}, willRetry=False) == []
    out = _feed(events, "turn/completed", turn={"id": "u", "status": "failed", "error": None})
    assert out == [{"type": "turn.failed", "error": {"message": "boom"}}]
    stopped = TurnEvents("v")
    out = stopped.feed(
        "turn/completed", {"threadId": "t", "turn": {"id": "v", "status": "interrupted"}}
    )
    assert out[-1]["type"] == "turn.failed" and stopped.interrupted


def test_commands_started_are_remembered_to_stop_them() -> None:
    events = TurnEvents("u")
    item = {"type": "commandExecution", "id": "c", "command": "sleep 9", "processId": "4242"}
    _feed(events, "item/started", item={**item, "status": "inProgress"})
    assert events.command_pids == {4242}


def test_a_reviews_sub_turn_counts_as_the_turn_review_start_gave() -> None:
    # Seen on 0.163: review/start answers with turn "r"; turn/started then names a sub-turn
    # whose rootTurnId is "r", while items and turn/completed carry "r" itself.
    events = TurnEvents("r")
    sub_turn = {"id": "s", "rootTurnId": "r", "status": "inProgress"}
    assert events.feed("turn/started", {"threadId": "t", "turn": sub_turn}) == [
        {"type": "turn.started"}
    ]
    other = {"id": "s2", "rootTurnId": "elsewhere", "status": "inProgress"}
    assert events.feed("turn/started", {"threadId": "t", "turn": other}) == []
