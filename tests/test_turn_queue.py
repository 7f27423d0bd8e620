"""The turn queue on its own: a limit, first come first served, and what it tells a turn."""

from __future__ import annotations

import anyio

from codex_mcp_server.server.registry import TurnRecord
from codex_mcp_server.server.turns import TurnQueue


async def test_turns_beyond_the_limit_wait_and_start_in_order() -> None:
    queue = TurnQueue(2)
    started: list[int] = []
    running = 0
    most = 0
    lines: dict[int, list[str]] = {}
    release = anyio.Event()

    async def turn(index: int) -> None:
        nonlocal running, most
        record = TurnRecord(f"turn-{index}", "x")
        lines[index] = []

        async def listen(line: str) -> None:
            lines[index].append(line)

        async with record.listening(listen), queue.slot(record):
            started.append(index)
            running += 1
            most = max(most, running)
            await release.wait()
            await anyio.sleep(0.01)
            running -= 1

    async with anyio.create_task_group() as group:
        for index in range(6):
            group.start_soon(turn, index)
            await anyio.sleep(0.01)
        assert started == [0, 1]
        release.set()
    assert started == [0, 1, 2, 3, 4, 5]
    assert most == 2
    assert lines[0] == lines[1] == []
    assert [lines[i] for i in range(2, 6)] == [
        ["queued: waiting for a free slot (2 turns running, at most 2)"],
        *(
            [f"queued: waiting for a free slot (2 turns running, at most 2; {ahead} waiting "
             "before this one)"]
            for ahead in range(1, 4)
        ),
    ]  # fmt: skip


async def test_a_turn_cancelled_while_queued_gives_up_its_place() -> None:
    queue = TurnQueue(1)
    order: list[str] = []
    hold = anyio.Event()

    async def turn(name: str, scope: anyio.CancelScope | None = None) -> None:
        with scope or anyio.CancelScope():
            async with queue.slot(TurnRecord(name, "x")):
                order.append(name)
                await hold.wait()

    async with anyio.create_task_group() as group:
        group.start_soon(turn, "first")
        await anyio.sleep(0.01)
        doomed = anyio.CancelScope()
        group.start_soon(turn, "doomed", doomed)
        await anyio.sleep(0.01)
        group.start_soon(turn, "third")
        await anyio.sleep(0.01)
        doomed.cancel()
        hold.set()
    assert order == ["first", "third"]


async def test_the_heartbeat_says_queued_while_waiting_then_counts_from_the_start() -> None:
    queue = TurnQueue(1)
    first, second = TurnRecord("turn-1", "x"), TurnRecord("turn-2", "x")
    hold = anyio.Event()
    got_slot = anyio.Event()

    async def run(turn: TurnRecord, event: anyio.Event | None = None) -> None:
        async with queue.slot(turn):
            if event is not None:
                event.set()
            await hold.wait()

    async with anyio.create_task_group() as group:
        group.start_soon(run, first)
        await anyio.sleep(0.01)
        group.start_soon(run, second, got_slot)
        await anyio.sleep(0.01)
        assert queue.heartbeat(first, 100.0) == "working… 0 s"
        assert queue.heartbeat(second, 100.0) == "queued… 0 s"
        hold.set()
        await got_slot.wait()
        assert queue.heartbeat(second, 100.0) == "working… 0 s"
    # Outside the queue (not yet in it, or done): the time since the turn was asked for.
    assert queue.heartbeat(second, 100.0) == "working… 1 min 40 s"
