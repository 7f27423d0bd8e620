"""Background turns, wait_turn and the turn queue, on the real codex binary."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from codex_mcp_server.server import Settings
from codex_mcp_server.testing import RecordedRequest, Reply, ScriptedModel, replies

from .procs import describe, turn_processes, wait_until_gone
from .server_support import ProgressLog, serve, settled_thread, structured, text
from .test_server_tools import server_env  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("backend")


@pytest.fixture
async def client(server_env: Path, workdir: Path) -> AsyncIterator[Client]:  # noqa: F811
    async with Client(serve(Settings(cwd=workdir, heartbeat_interval=30.0))) as connected:
        yield connected


async def _wait_for_requests(model: ScriptedModel, count: int) -> None:
    await anyio.to_thread.run_sync(model.wait_for_requests, count, 20.0)


async def test_background_start_then_wait_turn(client: Client, model: ScriptedModel) -> None:
    model.add(replies.command("sleep 1; echo slow", login=False), replies.message("finished"))
    began = time.monotonic()
    started = await client.call_tool("start_thread", {"prompt": "slow", "background": True})
    assert time.monotonic() - began < 2.0
    assert not started.is_error, text(started)
    first = structured(started)
    assert first["status"] == "running"
    assert first["thread_id"]
    assert "wait_turn" in text(started)

    progress = ProgressLog()
    waited = await client.call_tool(
        "wait_turn", {"thread_id": first["thread_id"]}, progress_callback=progress
    )
    result = structured(waited)
    assert result["status"] == "completed"
    assert result["final_response"] == "finished"
    assert result["actions"]["commands"][0]["command"] == "sleep 1; echo slow"
    assert "message: finished" in progress.messages
    assert progress.values == sorted(set(progress.values))

    late = structured(await client.call_tool("wait_turn", {"thread_id": first["thread_id"]}))
    assert late == result


async def test_wait_turn_times_out_and_is_called_again(
    client: Client, model: ScriptedModel
) -> None:
    model.add(replies.message("first")), model.add(replies.message("eventually", delay=2.0))
    thread_id = structured(await client.call_tool("start_thread", {"prompt": "x"}))["thread_id"]
    running = await client.call_tool(
        "run_turn", {"thread_id": thread_id, "prompt": "slow", "background": True}
    )
    assert structured(running)["status"] == "running"

    began = time.monotonic()
    waited = await client.call_tool("wait_turn", {"thread_id": thread_id, "timeout_s": 0.3})
    assert time.monotonic() - began < 1.5
    assert not waited.is_error
    assert structured(waited)["status"] == "running"
    assert "still running" in text(waited)

    info = structured(await client.call_tool("get_thread", {"thread_id": thread_id}))
    assert info["status"] == "running"
    busy = await client.call_tool("run_turn", {"thread_id": thread_id, "prompt": "more"})
    assert busy.is_error and "wait_turn" in text(busy)

    done = await client.call_tool("wait_turn", {"thread_id": thread_id, "timeout_s": 20})
    assert structured(done)["status"] == "completed"
    assert structured(done)["final_response"] == "eventually"


@pytest.mark.parametrize("timeout_s", [-1, 111, "soon"])
async def test_wait_turn_bounds(client: Client, model: ScriptedModel, timeout_s: object) -> None:
    model.add(replies.message("x"))
    thread_id = structured(await client.call_tool("start_thread", {"prompt": "x"}))["thread_id"]
    result = await client.call_tool("wait_turn", {"thread_id": thread_id, "timeout_s": timeout_s})
    assert result.is_error
    assert "timeout_s" in text(result)


async def test_interrupting_a_background_turn(
    client: Client,
    model: ScriptedModel,
    server_env: Path,  # noqa: F811
) -> None:
    model.add(replies.hang())
    started = await client.call_tool("start_thread", {"prompt": "hang", "background": True})
    thread_id = structured(started)["thread_id"]
    await _wait_for_requests(model, 1)
    stopped = await client.call_tool("interrupt_turn", {"thread_id": thread_id})
    assert structured(stopped)["status"] == "interrupted"
    left = wait_until_gone(server_env, find=turn_processes)
    assert left == [], describe(left)
    waited = await client.call_tool("wait_turn", {"thread_id": thread_id})
    assert waited.is_error
    assert structured(waited)["status"] == "interrupted"
    info = await settled_thread(client, thread_id)
    assert info["turns"][0]["status"] == "interrupted"


async def test_cancelling_wait_turn_leaves_the_turn_running(
    client: Client, model: ScriptedModel
) -> None:
    model.add(replies.message("still done", delay=1.5))
    started = await client.call_tool("start_thread", {"prompt": "x", "background": True})
    thread_id = structured(started)["thread_id"]
    with anyio.move_on_after(0.3):
        await client.call_tool("wait_turn", {"thread_id": thread_id})
    done = await client.call_tool("wait_turn", {"thread_id": thread_id, "timeout_s": 20})
    assert structured(done)["final_response"] == "still done"


async def test_queue_runs_at_most_n_turns_in_order(
    server_env: Path,  # noqa: F811
    workdir: Path,
    model: ScriptedModel,
) -> None:
    arrivals: list[float] = []

    def answer(request: RecordedRequest) -> Reply:
        arrivals.append(time.monotonic())
        return replies.message(f"done {request.last_user_text}", delay=0.8)

    model.respond_with(answer)
    settings = Settings(cwd=workdir, max_concurrent_turns=2, heartbeat_interval=30.0)
    logs = [ProgressLog() for _ in range(6)]
    results: dict[int, Any] = {}
    async with Client(serve(settings)) as client:

        async def turn(index: int) -> None:
            results[index] = await client.call_tool(
                "start_thread", {"prompt": f"task {index}"}, progress_callback=logs[index]
            )

        async with anyio.create_task_group() as group:
            for index in range(6):
                group.start_soon(turn, index)
                await anyio.sleep(0.15)  # Submission order is the order asked.
    assert [structured(results[i])["final_response"] for i in range(6)] == [
        f"done task {i}" for i in range(6)
    ]
    # Each answer takes 0.8 s: the turns in flight at once are the requests that overlap.
    assert max(sum(1 for t in arrivals if s <= t < s + 0.8) for s in arrivals) == 2
    queued = [next((m for m in log.messages if m.startswith("queued")), None) for log in logs]
    assert queued == [None, None] + [
        "queued: waiting for a free slot (2 turns running, at most 2"
        + (f"; {ahead} waiting before this one)" if ahead else ")")
        for ahead in range(4)
    ]


async def test_a_queued_turn_says_queued_until_it_runs(
    server_env: Path,  # noqa: F811
    workdir: Path,
    model: ScriptedModel,
) -> None:
    model.add(replies.message("first", delay=1.5), replies.message("second", delay=1.0))
    settings = Settings(cwd=workdir, max_concurrent_turns=1, heartbeat_interval=0.3)
    second = ProgressLog()
    async with Client(serve(settings)) as client, anyio.create_task_group() as group:
        group.start_soon(client.call_tool, "start_thread", {"prompt": "one"})
        await _wait_for_requests(model, 1)
        result = await client.call_tool("start_thread", {"prompt": "two"}, progress_callback=second)
    assert structured(result)["final_response"] == "second"
    states = [m.split("…")[0] for m in second.messages if "… " in m and m.endswith(" s")]
    assert second.messages[0] == "queued: waiting for a free slot (1 turn running, at most 1)"
    assert "queued" in states and "working" in states, second.messages
    assert states.index("working") > len(states) - 1 - states[::-1].index("queued")
