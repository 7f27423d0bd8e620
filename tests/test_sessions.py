"""Reading a thread's past from its rollout file: what a resume needs, from whatever is there."""

from __future__ import annotations

import json
from pathlib import Path

from codex_mcp_server.server.sessions import SessionSummary, read_session


def _line(kind: str, payload: object) -> str:
    return json.dumps({"timestamp": "2026-01-01T00:00:00Z", "type": kind, "payload": payload})


def _token_count(input_tokens: object) -> str:
    total = {"input_tokens": input_tokens, "cached_input_tokens": 2, "output_tokens": 3}
    return _line("event_msg", {"type": "token_count", "info": {"total_token_usage": total}})


def test_turns_cwd_and_the_last_total_usage(tmp_path: Path) -> None:
    rollout = tmp_path / "rollout.jsonl"
    started = _line("event_msg", {"type": "task_started", "turn_id": "t"})
    lines = [
        _line("session_meta", {"id": "x", "cwd": "/work"}),
        started,
        _token_count(42),
        # Command output that merely mentions the markers counts for nothing.
        _line("response_item", {"type": "message", "text": '"task_started" "token_count"'}),
        started,
        _token_count(84),
        _line("event_msg", {"type": "token_count", "info": None}),  # Codex writes these too.
    ]
    rollout.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = read_session(rollout)
    assert (summary.cwd, summary.turns) == ("/work", 2)
    assert summary.usage is not None
    assert summary.usage["input_tokens"] == 84 and summary.usage["output_tokens"] == 3
    assert summary.usage["reasoning_output_tokens"] == 0


def test_malformed_rollouts_give_what_they_can(tmp_path: Path) -> None:
    rollout = tmp_path / "rollout.jsonl"
    lines = [
        '{"type": "session_meta", "payload": ',  # Cut off.
        _line("session_meta", ["not", "an", "object"]),
        _line("session_meta", {"cwd": 7}),
        json.dumps(["task_started"]),
        _line("event_msg", "task_started"),
        _token_count(-5),
        _token_count("many"),
        "\xff not json token_count",
    ]
    rollout.write_text("\n".join(lines), encoding="utf-8")
    summary = read_session(rollout)
    assert (summary.cwd, summary.turns) == (None, 0)
    assert summary.usage is not None and summary.usage["input_tokens"] == 0
    assert read_session(tmp_path / "missing.jsonl") == SessionSummary()
