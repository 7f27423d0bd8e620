"""The registry's memory bounds: threads by count, items by turn count and by size."""

from __future__ import annotations

from typing import Any

from codex_mcp_server.sdk import Codex
from codex_mcp_server.server.registry import KEEP_ITEMS_OF_TURNS, Registry, ThreadRecord


def _thread(thread_id: str) -> ThreadRecord:
    """A record as the server makes one, for a thread codex named ``thread_id``."""
    thread = Codex({"codex_path_override": "/nonexistent/codex"}).start_thread()
    return ThreadRecord(thread_id, thread, "/work", {})


def _command(output: str) -> dict[str, Any]:
    return {
        "id": "item_0",
        "type": "command_execution",
        "command": "cat big.log",
        "aggregated_output": output,
        "exit_code": 0,
        "status": "completed",
    }


def _ended_turn(record: ThreadRecord, output: str) -> None:
    turn = record.new_turn("go")
    turn.thread_id = record.thread_id
    turn.items.append(_command(output))
    turn.finish("completed")


async def test_idle_threads_are_evicted_least_recently_used_first() -> None:
    registry = Registry(max_threads=3)
    busy, a, b = _thread("busy"), _thread("a"), _thread("b")
    busy.new_turn("still running")
    for record in (busy, a, b):
        registry.add(record)
    registry.touch(a)  # Now b is the least recently used idle thread.
    registry.add(_thread("c"))
    assert registry.find("b") is None
    registry.add(_thread("d"))
    # The running thread stays, however old: its turn must be able to finish and report.
    assert registry.find("busy") is busy
    assert registry.find("a") is None
    assert {r.thread_id for r in registry.newest_first()} == {"busy", "c", "d"}


async def test_a_thread_keeps_the_items_of_its_last_turns_only() -> None:
    registry = Registry()
    record = _thread("t")
    registry.add(record)
    for n in range(KEEP_ITEMS_OF_TURNS + 1):
        _ended_turn(record, f"output {n}")
        registry.settle(record.turns[-1])
    first, second = record.turns[0], record.turns[1]
    assert first.items == []
    assert [c.command for c in first.actions.commands] == ["cat big.log"]  # Kept without items.
    assert second.items == [_command("output 1")]


async def test_items_beyond_the_byte_budget_are_dropped_oldest_first() -> None:
    registry = Registry(max_item_bytes=3_100_000)
    one, two = _thread("one"), _thread("two")
    registry.add(one)
    registry.add(two)
    megabyte = "x" * 1_000_000
    for record in (one, two, one):
        _ended_turn(record, megabyte)
        registry.settle(record.turns[-1])
    assert all(t.items for t in (*one.turns, *two.turns))  # About 3 MB: within the budget.
    assert one.turns[0].item_bytes > 1_000_000

    _ended_turn(two, megabyte)
    registry.settle(two.turns[-1])
    # The turn that ended first lost its items (not its result); the others kept theirs.
    assert one.turns[0].items == []
    assert one.turns[0].actions.commands[0].command == "cat big.log"
    assert one.turns[0].status == "completed"
    assert all(t.items for t in (one.turns[1], *two.turns))


async def test_a_running_turn_keeps_its_items_whatever_the_budget() -> None:
    registry = Registry(max_item_bytes=10)
    busy, other = _thread("busy"), _thread("other")
    registry.add(busy)
    registry.add(other)
    running = busy.new_turn("go")
    running.items.append(_command("y" * 100))
    _ended_turn(other, "z" * 100)
    registry.settle(other.turns[0])
    assert other.turns[0].items == []
    assert running.items == [_command("y" * 100)]


async def test_a_thread_that_leaves_the_registry_gives_its_share_back() -> None:
    registry = Registry(max_item_bytes=2_100_000)
    gone, kept = _thread("gone"), _thread("kept")
    registry.add(gone)
    registry.add(kept)
    megabyte = "x" * 1_000_000
    for record in (gone, kept):
        _ended_turn(record, megabyte)
        registry.settle(record.turns[-1])
    registry.remove("gone")
    _ended_turn(gone, megabyte)  # A turn that ends after its thread was dropped: not counted.
    registry.settle(gone.turns[-1])
    _ended_turn(kept, megabyte)
    registry.settle(kept.turns[-1])
    assert all(t.items for t in kept.turns)  # 2 MB of the 2.1 MB budget.
