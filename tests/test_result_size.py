"""What one tool result carries is bounded by size, whatever the turns held."""

from __future__ import annotations

import json
from typing import Any

from codex_mcp_server.server.models import TurnResult
from codex_mcp_server.server.registry import Registry, ThreadRecord
from codex_mcp_server.server.tools import (
    ACTIONS_MAX,
    RESPONSE_MAX,
    THREAD_RESULT_MAX,
    thread_info,
    thread_page,
    turn_model,
)

from .test_registry import MEGABYTE, _command, _registry

URI = "codex://threads/t"


def _big_turns(record: ThreadRecord, registry: Registry, count: int) -> None:
    """``count`` ended turns of ``record``, each with a 1 MB answer and a 1 MB output."""
    for n in range(count):
        turn = record.new_turn(f"prompt {n}")
        turn.thread_id = record.thread_id
        turn.items += [_command(MEGABYTE), {"id": "m", "type": "agent_message", "text": MEGABYTE}]
        turn.final_response = MEGABYTE
        turn.finish("completed")
        registry.settle(turn)


def _size(value: Any) -> int:
    return len(json.dumps(value.model_dump(mode="json")))


async def test_get_thread_of_50_turns_of_1_mb_answers_stays_small() -> None:
    # It used to return 73 MB: every turn's answer and output whole.
    registry, (record,) = _registry("t")
    _big_turns(record, registry, 50)

    page = thread_page(record, limit=50, offset=0)
    assert _size(page) < 1_000_000
    assert _size(page) <= THREAD_RESULT_MAX + 10_000
    assert page.turn_count == 50
    shown = [t.turn_id for t in page.turns]
    assert shown[-1] == "turn-50"  # The newest are shown; older ones left out first.
    assert shown == [f"turn-{n}" for n in range(51 - len(shown), 51)]
    assert f"offset={len(shown)}" in page.next_step and URI in page.next_step
    newest = page.turns[-1]
    assert newest.final_response.startswith("x" * 1000)
    assert newest.final_response.endswith(f"more characters: read {URI}]")
    assert len(newest.final_response) < RESPONSE_MAX + 100

    # The resource is where the whole is.
    assert thread_info(record, full=True).turns[0].final_response == MEGABYTE


async def test_get_thread_pages_back_through_the_turns() -> None:
    registry, (record,) = _registry("t")
    for n in range(12):
        turn = record.new_turn(f"prompt {n + 1}")
        turn.thread_id = record.thread_id
        turn.finish("completed")
        registry.settle(turn)
    assert [t.turn_id for t in thread_page(record, 5, 0).turns] == [
        f"turn-{n}" for n in range(8, 13)
    ]
    middle = thread_page(record, 5, 5)
    assert [t.turn_id for t in middle.turns] == [f"turn-{n}" for n in range(3, 8)]
    assert "offset=10" in middle.next_step
    oldest = thread_page(record, 5, 10)
    assert [t.turn_id for t in oldest.turns] == ["turn-1", "turn-2"]
    assert "offset" not in oldest.next_step
    assert thread_page(record, 5, 99).turns == []


async def test_a_turn_result_caps_its_output_and_actions() -> None:
    registry, (record,) = _registry("t")
    turn = record.new_turn("go")
    turn.thread_id = record.thread_id
    turn.items += [_command(f"out {n}") | {"command": f"cmd {n}"} for n in range(200)]
    turn.final_response = json.dumps({"rows": ["r" * 100] * 1000})  # 100 kB of JSON
    turn.structured_output = json.loads(turn.final_response)
    turn.finish("completed")
    registry.settle(turn)

    result = turn_model(TurnResult, record, turn)
    assert result.structured_output is None
    assert "structured_output" in result.next_step and URI in result.next_step
    assert len(result.actions.commands) == ACTIONS_MAX
    assert result.actions.commands[-1].command == "cmd 199"  # The latest are kept.
    assert result.actions.left_out == 200 - ACTIONS_MAX
    assert _size(result) < 2 * RESPONSE_MAX
