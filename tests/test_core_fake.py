"""The server's core over the in-memory FakeEngine: what every engine relies on, in
milliseconds (the same behaviours run against the real binary in the other server tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from codex_mcp_server.sdk.fake_engine import FakeEngine
from codex_mcp_server.server import Settings, build_server
from codex_mcp_server.server.models import ThreadOptionsInput
from codex_mcp_server.server.registry import Registry
from codex_mcp_server.server.threads import ThreadService, TurnRequest

from .server_support import ProgressLog, structured, text


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
async def client(tmp_path: Path, engine: FakeEngine) -> AsyncIterator[Client]:
    settings = Settings(cwd=tmp_path, heartbeat_interval=30.0, max_concurrent_turns=1)
    async with Client(build_server(settings, engine=engine)) as connected:
        yield connected


async def _call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, text(result)
    return structured(result)


async def test_turns_results_and_usage_per_turn(client: Client, engine: FakeEngine) -> None:
    engine.script(FakeEngine.reply("one"), FakeEngine.reply("two"))
    first = await _call(client, "start_thread", prompt="a")
    second = await _call(client, "run_turn", thread_id=first["thread_id"], prompt="b")
    assert (first["turn_id"], first["final_response"]) == ("turn-1", "one")
    assert (second["turn_id"], second["final_response"]) == ("turn-2", "two")
    # The engine reports usage summed over the thread; a turn's is its own.
    assert first["usage"]["input_tokens"] == second["usage"]["input_tokens"] == 42
    assert [t.input.prompt for t in engine.turns] == ["a", "b"]
    assert engine.turns[0].thread_id == engine.turns[1].thread_id == first["thread_id"]


async def test_a_background_start_returns_while_its_turn_queues(
    client: Client, engine: FakeEngine
) -> None:
    """An engine that names threads up front lets a background start return at once, even
    when the turn waits for a slot (one slot here, held by a hanging turn)."""
    engine.script([FakeEngine.HANG], FakeEngine.reply("later"))
    busy = await _call(client, "start_thread", prompt="hang", background=True)
    with anyio.fail_after(5):
        queued = await _call(client, "start_thread", prompt="queued", background=True)
    assert queued["status"] == "running"
    assert [t.input.prompt for t in engine.turns] == ["hang"]  # Not started: queued.
    await _call(client, "interrupt_turn", thread_id=busy["thread_id"])
    done = await _call(client, "wait_turn", thread_id=queued["thread_id"], timeout_s=5)
    assert done["final_response"] == "later"
    assert engine.turns[0].stopped and not engine.turns[1].stopped


async def test_interrupt_stops_the_engines_turn(client: Client, engine: FakeEngine) -> None:
    engine.script([FakeEngine.HANG], FakeEngine.reply("again"))
    started = await _call(client, "start_thread", prompt="hang", background=True)
    stopped = await _call(client, "interrupt_turn", thread_id=started["thread_id"])
    assert stopped["status"] == "interrupted"
    assert engine.turns[0].stopped
    again = await _call(client, "run_turn", thread_id=started["thread_id"], prompt="more")
    assert again["final_response"] == "again"


async def test_progress_lines_come_from_the_engines_events(
    client: Client, engine: FakeEngine
) -> None:
    command = {"id": "c", "type": "command_execution", "command": "ls", "status": "completed"}
    engine.script([{"type": "item.completed", "item": {**command, "exit_code": 0}},
                   *FakeEngine.reply("done")])  # fmt: skip
    progress = ProgressLog()
    result = await client.call_tool("start_thread", {"prompt": "x"}, progress_callback=progress)
    assert structured(result)["actions"]["commands"][0]["command"] == "ls"
    assert progress.messages == ["✓ $ ls (exit 0)", "message: done"]


async def test_threads_leaving_the_registry_are_released(
    tmp_path: Path, engine: FakeEngine
) -> None:
    service = ThreadService(Settings(cwd=tmp_path), Registry(max_threads=1), engine=engine)
    engine.script(FakeEngine.reply("1"), FakeEngine.reply("2"))
    async with service.running():
        first, _ = await service.start(ThreadOptionsInput(), TurnRequest("a"))
        await service.start(ThreadOptionsInput(), TurnRequest("b"))
        await anyio.wait_all_tasks_blocked()  # The release runs in the service's task group.
        assert engine.released == [first.thread_id]
    assert engine.closed


async def test_an_unscripted_turn_fails_clearly(client: Client, engine: FakeEngine) -> None:
    engine.script(FakeEngine.reply("first"))
    first = await _call(client, "start_thread", prompt="a")
    result = await client.call_tool("run_turn", {"thread_id": first["thread_id"], "prompt": "b"})
    assert result.is_error
    assert "no script" in text(result)


async def test_steer_and_fork_go_through_the_engine(client: Client, engine: FakeEngine) -> None:
    engine.script([FakeEngine.HANG])
    started = await _call(client, "start_thread", prompt="hang", background=True)
    thread_id = started["thread_id"]
    for _ in range(500):  # The turn starts in the background.
        if engine.turns:
            break
        await anyio.sleep(0.01)
    steered = await _call(client, "steer_turn", thread_id=thread_id, prompt="more")
    assert steered["turn_id"] == "turn-1"
    assert engine.turns[0].steers == ["more"]
    await _call(client, "interrupt_turn", thread_id=thread_id)
    refused = await client.call_tool("steer_turn", {"thread_id": thread_id, "prompt": "late"})
    assert refused.is_error and "run_turn" in text(refused)
    fork = await _call(client, "fork_thread", thread_id=thread_id)
    assert engine.forks == [(thread_id, fork["thread_id"])]
