"""The registry's memory bounds (threads by count, items by turn count and by size), and
progress feeds that never wait for a listener."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import pytest

from codex_mcp_server.sdk import Codex
from codex_mcp_server.server.registry import (
    FEED_CHARS,
    FEED_LINES,
    KEEP_ITEMS_OF_TURNS,
    SHED_TEXT_MAX,
    Registry,
    ThreadRecord,
    TurnRecord,
)

MEGABYTE = "x" * 1_000_000


def _thread(thread_id: str) -> ThreadRecord:
    """A record as the server makes one, for a thread codex named ``thread_id``."""
    thread = Codex({"codex_path_override": "/nonexistent/codex"}).start_thread()
    return ThreadRecord(thread_id, thread, "/work", {})


def _registry(*thread_ids: str, **limits: int) -> tuple[Registry, list[ThreadRecord]]:
    registry = Registry(**limits)
    records = [_thread(thread_id) for thread_id in thread_ids]
    for record in records:
        registry.add(record)
    return registry, records


def _command(output: str) -> dict[str, Any]:
    return {
        "id": "item_0",
        "type": "command_execution",
        "command": "cat big.log",
        "aggregated_output": output,
        "exit_code": 0,
        "status": "completed",
    }


def _end_turn(registry: Registry, record: ThreadRecord, output: str) -> None:
    """A turn of ``record`` that ran one command printing ``output``, ended and settled."""
    turn = record.new_turn("go")
    turn.thread_id = record.thread_id
    turn.items.append(_command(output))
    turn.finish("completed")
    registry.settle(turn)


async def test_idle_threads_are_evicted_least_recently_used_first() -> None:
    registry, (busy, a, _) = _registry("busy", "a", "b", max_threads=3)
    busy.new_turn("still running")
    registry.touch(a)  # Now b is the least recently used idle thread.
    registry.add(_thread("c"))
    assert registry.find("b") is None
    registry.add(_thread("d"))
    # The running thread stays, however old: its turn must be able to finish and report.
    assert registry.find("busy") is busy
    assert registry.find("a") is None
    assert {r.thread_id for r in registry.newest_first()} == {"busy", "c", "d"}


async def test_a_thread_keeps_the_items_of_its_last_turns_only() -> None:
    registry, (record,) = _registry("t")
    for n in range(KEEP_ITEMS_OF_TURNS + 1):
        _end_turn(registry, record, f"output {n}")
    first, second = record.turns[0], record.turns[1]
    assert first.items == []
    assert [c.command for c in first.actions.commands] == ["cat big.log"]  # Kept without items.
    assert second.items == [_command("output 1")]


async def test_items_beyond_the_byte_budget_are_dropped_oldest_first() -> None:
    registry, (one, two) = _registry("one", "two", max_item_bytes=3_100_000)
    for record in (one, two, one):
        _end_turn(registry, record, MEGABYTE)
    assert all(t.items for t in (*one.turns, *two.turns))  # About 3 MB: within the budget.
    assert one.turns[0].item_bytes > 1_000_000

    _end_turn(registry, two, MEGABYTE)
    # The turn that ended first lost its items (not its result); the others kept theirs.
    assert one.turns[0].items == []
    assert one.turns[0].actions.commands[0].command == "cat big.log"
    assert one.turns[0].status == "completed"
    assert all(t.items for t in (one.turns[1], *two.turns))


async def test_a_running_turn_keeps_its_items_whatever_the_budget() -> None:
    registry, (busy, other) = _registry("busy", "other", max_item_bytes=10)
    running = busy.new_turn("go")
    running.items.append(_command("y" * 100))
    _end_turn(registry, other, "z" * 100)
    assert other.turns[0].items == []
    assert running.items == [_command("y" * 100)]


async def test_a_thread_that_leaves_the_registry_gives_its_share_back() -> None:
    registry, (gone, kept) = _registry("gone", "kept", max_item_bytes=2_100_000)
    _end_turn(registry, gone, MEGABYTE)
    _end_turn(registry, kept, MEGABYTE)
    registry.remove("gone")
    _end_turn(registry, gone, MEGABYTE)  # Ends after its thread was dropped: not counted.
    _end_turn(registry, kept, MEGABYTE)
    assert all(t.items for t in kept.turns)  # 2 MB of the 2.1 MB budget.


# ------------------------------------------------------------------ progress feeds


async def test_a_listener_that_never_returns_holds_up_neither_the_turn_nor_others() -> None:
    """An HTTP client that stops reading its socket once held the turn (and its queue slot)
    in publish after codex had finished."""
    turn = TurnRecord("turn-1", "x")
    stuck: list[str] = []
    prompt: list[str] = []

    async def never_returns(line: str) -> None:
        stuck.append(line)
        await anyio.sleep_forever()

    async def keeps_up(line: str) -> None:
        prompt.append(line)

    lines = [f"line {i} " + "y" * 100 for i in range(3 * FEED_LINES)]
    async with anyio.create_task_group() as group:

        async def stuck_call() -> None:
            async with turn.listening(never_returns):
                await anyio.sleep_forever()

        group.start_soon(stuck_call)
        await anyio.sleep(0.01)
        with anyio.fail_after(10):
            async with turn.listening(keeps_up):
                for line in lines:
                    await turn.publish(line)
                    await turn.publish("working… 10 s", count=False)
                    await anyio.lowlevel.checkpoint()  # Events come apart in time.
            feeds = list(turn.feeds)
        assert len(feeds) == 1  # The stuck one: the other left with its call.
        held = feeds[0]._lines, feeds[0]._chars
        group.cancel_scope.cancel()
    assert [line for line in prompt if line.startswith("line")] == lines
    assert stuck == [lines[0]]
    assert held[0] <= FEED_LINES and held[1] <= FEED_CHARS, held
    assert not turn.feeds


async def test_a_slow_listener_hears_how_many_lines_it_missed() -> None:
    turn = TurnRecord("turn-1", "x")
    gate, drained = anyio.Event(), anyio.Event()
    heard: list[str] = []

    def skipped(count: int) -> str:
        return (
            f"… {count} progress line(s) skipped: this client read them slower than the turn "
            "made them (get_thread has the whole turn)"
        )

    async def slow(line: str) -> None:
        await gate.wait()
        heard.append(line)
        if line == skipped(9):
            drained.set()

    big = "z" * (FEED_CHARS // 4)
    shorts = [f"short {index}" for index in range(FEED_LINES + 5)]
    with anyio.fail_after(10):
        async with turn.listening(slow):
            await turn.publish("first")
            for _ in range(6):
                await turn.publish(big)  # By size, 3 fit beside "first".
            await turn.publish("working… 10 s", count=False)  # Dropped: lines are pending.
            for line in shorts:
                await turn.publish(line)  # By count, FEED_LINES - 4 fit.
            gate.set()
            await drained.wait()
            await turn.publish("after")  # Drained, the listener hears new lines again.
    kept = FEED_LINES - 4
    assert heard == ["first", big, big, big, skipped(3), *shorts[:kept], skipped(9), "after"]
    assert turn.lines == 1 + 6 + len(shorts) + 1


async def test_leaving_a_feed_on_an_error_raises_it_as_it_is() -> None:
    turn = TurnRecord("turn-1", "x")

    async def never_returns(line: str) -> None:
        await anyio.sleep_forever()

    with anyio.fail_after(10), pytest.raises(LookupError, match="boom"):
        async with turn.listening(never_returns):
            await turn.publish("pending")
            raise LookupError("boom")
    assert not turn.feeds


def _answer(registry: Registry, record: ThreadRecord, answer: str) -> None:
    """A turn of ``record`` that answered ``answer`` without running anything, ended."""
    turn = record.new_turn("go")
    turn.thread_id = record.thread_id
    turn.final_response = answer
    turn.finish("completed")
    registry.settle(turn)


async def test_final_responses_count_in_the_memory_bound() -> None:
    # Items were all that counted: 1 MB answers piled up without bound.
    registry, (one, two) = _registry("one", "two", max_item_bytes=3_100_000)
    for record in (one, two, one):
        _answer(registry, record, MEGABYTE)
    assert all(t.final_response == MEGABYTE for t in (*one.turns, *two.turns))
    assert one.turns[0].text_bytes > 1_000_000

    _answer(registry, two, MEGABYTE)
    # The turn that ended first keeps the start of its answer and says where the rest is.
    shed = one.turns[0].final_response
    assert shed.startswith("x" * SHED_TEXT_MAX) and len(shed) < SHED_TEXT_MAX + 200
    assert "resume_thread" in shed
    assert one.turns[0].status == "completed"
    assert all(t.final_response == MEGABYTE for t in (one.turns[1], *two.turns))


async def test_prompts_count_too_and_the_bound_holds_over_many_turns() -> None:
    registry, (record,) = _registry("t", max_item_bytes=5_000_000)
    for _ in range(50):
        turn = record.new_turn(MEGABYTE)
        turn.thread_id = record.thread_id
        turn.final_response = MEGABYTE
        turn.finish("completed")
        registry.settle(turn)
    held = sum(len(t.prompt) + len(t.final_response) for t in record.turns)
    assert held < 5_000_000 + 50 * 2 * (SHED_TEXT_MAX + 200)
    assert record.turns[-1].final_response == MEGABYTE
