"""The threads this server knows, in memory, keyed by Codex thread id.

The registry is the server's only mutable state. A thread runs at most one turn at a time;
the record of a running turn carries the cancel scope that stops it, the listeners its
progress lines go to, and an event set once it has fully ended (codex stopped and reaped).

Memory is bounded: the registry keeps at most :data:`MAX_THREADS` threads (the least
recently used idle ones go first; Codex still has them on disk for ``resume_thread``), and a
thread keeps the items of its last :data:`KEEP_ITEMS_OF_TURNS` turns; older turns keep their
result (final response, actions, usage) without the items. Items are what can be large (a
command's output), so their text is also bounded across all threads by
:data:`MAX_ITEM_BYTES`: past it, the turns that ended first lose their items.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from ..sdk import Thread, Usage
from .actions import Actions, summarize_actions
from .models import TurnStatus, TurnUsage

__all__ = [
    "KEEP_ITEMS_OF_TURNS",
    "MAX_ITEM_BYTES",
    "MAX_THREADS",
    "BusyThreadError",
    "Listener",
    "Registry",
    "ThreadRecord",
    "TurnRecord",
    "UnknownThreadError",
]

logger = logging.getLogger(__name__)

MAX_THREADS = 1000
KEEP_ITEMS_OF_TURNS = 20
MAX_ITEM_BYTES = 256 * 1024 * 1024

Listener = Callable[[str], Awaitable[None]]


class UnknownThreadError(LookupError):
    def __init__(self, thread_id: str) -> None:
        super().__init__(
            f"Unknown thread_id {thread_id!r}: this server has not seen it. If Codex persisted "
            "it earlier (a previous server run, or the codex CLI), call resume_thread with this "
            "thread_id first; otherwise call start_thread."
        )


class BusyThreadError(RuntimeError):
    def __init__(self, thread_id: str, turn_id: str) -> None:
        super().__init__(
            f"Thread {thread_id} is busy: {turn_id} is still running, and a thread runs one "
            "turn at a time. Call wait_turn to wait for its result, or interrupt_turn to stop it."
        )


@dataclass(eq=False)
class TurnRecord:
    turn_id: str
    prompt: str
    status: TurnStatus = "running"
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    items: list[dict[str, Any]] = field(default_factory=list)
    final_response: str = ""
    structured_output: Any = None
    usage: TurnUsage | None = None
    error: str | None = None
    thread_id: str | None = None
    """A new thread's id once codex names it; a known thread's from the start."""
    lines: int = 0
    """Progress lines published so far."""
    last_line: str = ""
    listeners: set[Listener] = field(default_factory=set)
    cancel_scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    thread_known: anyio.Event = field(default_factory=anyio.Event)
    """Set once codex named the thread (or the turn ended without it)."""
    done: anyio.Event = field(default_factory=anyio.Event)
    item_bytes: int = 0
    """Characters of text in the items (about their bytes), counted when the turn ends."""
    _actions: Actions | None = None

    async def publish(self, line: str, *, count: bool = True) -> None:
        """Send a progress line to whoever listens now; heartbeats pass ``count=False``."""
        if count:
            self.lines += 1
            self.last_line = line
        for listener in list(self.listeners):
            await listener(line)

    def finish(self, status: TurnStatus, error: str | None = None) -> None:
        self.status = status
        self.error = error
        self.finished_at = time.time()
        logger.info(
            "thread %s %s %s after %.1f s%s",
            self.thread_id or "(not named by codex)",
            self.turn_id,
            status,
            self.finished_at - self.started_at,
            f": {error.splitlines()[0][:300]}" if error else "",
        )

    @property
    def actions(self) -> Actions:
        if self._actions is not None:
            return self._actions
        actions = summarize_actions(self.items)
        if self.status != "running":
            self._actions = actions  # Settled: summarize once.
        return actions

    def drop_items(self) -> None:
        self._actions = self.actions
        self.items = []


@dataclass(eq=False)
class ThreadRecord:
    thread_id: str
    thread: Thread
    working_directory: str
    options: dict[str, Any]
    created_at: float = field(default_factory=time.time)
    turns: list[TurnRecord] = field(default_factory=list)
    cumulative_usage: Usage | None = None
    """Codex reports usage summed over the thread; a turn's own is the difference."""

    @property
    def running_turn(self) -> TurnRecord | None:
        if self.turns and self.turns[-1].status == "running":
            return self.turns[-1]
        return None

    @property
    def status(self) -> str:
        return "running" if self.running_turn else "idle"

    @property
    def updated_at(self) -> float:
        return self.turns[-1].started_at if self.turns else self.created_at

    def new_turn(self, prompt: str) -> TurnRecord:
        turn = TurnRecord(f"turn-{len(self.turns) + 1}", prompt, thread_id=self.thread_id)
        self.turns.append(turn)
        return turn

    def turn_usage(self, cumulative: Usage) -> TurnUsage:
        before = self.cumulative_usage
        self.cumulative_usage = cumulative

        def delta(key: str) -> int:
            now: Any = cumulative.get(key, 0)
            was: Any = before.get(key, 0) if before else 0
            return max(0, int(now or 0) - int(was or 0))

        return TurnUsage(
            input_tokens=delta("input_tokens"),
            cached_input_tokens=delta("cached_input_tokens"),
            output_tokens=delta("output_tokens"),
            reasoning_output_tokens=delta("reasoning_output_tokens"),
        )


class Registry:
    """Threads by id, least recently used first."""

    def __init__(
        self, max_threads: int = MAX_THREADS, max_item_bytes: int = MAX_ITEM_BYTES
    ) -> None:
        self._threads: dict[str, ThreadRecord] = {}
        self._max_threads = max_threads
        self._max_item_bytes = max_item_bytes
        # Ended turns that still hold items, oldest first, and the sum of their sizes.
        self._with_items: dict[TurnRecord, None] = {}
        self._item_bytes = 0

    def get(self, thread_id: str) -> ThreadRecord:
        try:
            return self._threads[thread_id]
        except KeyError:
            raise UnknownThreadError(thread_id) from None

    def find(self, thread_id: str) -> ThreadRecord | None:
        return self._threads.get(thread_id)

    def add(self, record: ThreadRecord) -> None:
        # Re-adding (resume_thread on a known thread) moves it to the newest position.
        self._threads.pop(record.thread_id, None)
        self._threads[record.thread_id] = record
        excess = len(self._threads) - self._max_threads
        for old in [r for r in self._threads.values() if not r.running_turn][: max(0, excess)]:
            self.remove(old.thread_id)

    def settle(self, turn: TurnRecord) -> None:
        """Account for the items of ``turn``, which has ended, and enforce the item bounds."""
        record = self.find(turn.thread_id) if turn.thread_id else None
        if record is None or turn not in record.turns:
            return  # Its thread is gone from the registry, and its items with it.
        turn.item_bytes = _text_size(turn.items)
        if turn.items:
            self._with_items[turn] = None
            self._item_bytes += turn.item_bytes
        for old in record.turns[:-KEEP_ITEMS_OF_TURNS]:
            if old.items:
                self._drop_items(old)
        while self._item_bytes > self._max_item_bytes:
            self._drop_items(next(iter(self._with_items)))  # The one that ended first.

    def remove(self, thread_id: str) -> None:
        record = self._threads.pop(thread_id, None)
        for turn in record.turns if record else ():
            self._uncount(turn)

    def _drop_items(self, turn: TurnRecord) -> None:
        self._uncount(turn)
        turn.drop_items()

    def _uncount(self, turn: TurnRecord) -> None:
        if turn in self._with_items:
            del self._with_items[turn]
            self._item_bytes -= turn.item_bytes

    def touch(self, record: ThreadRecord) -> None:
        """Mark ``record`` as just used, so it is the last to be evicted."""
        self._threads.pop(record.thread_id, None)
        self._threads[record.thread_id] = record

    def newest_first(self) -> list[ThreadRecord]:
        return sorted(self._threads.values(), key=lambda r: r.updated_at, reverse=True)


def _text_size(value: Any) -> int:
    """Characters of text in ``value`` (an item: dicts, lists, strings, numbers)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(len(k) + _text_size(v) for k, v in value.items())
    if isinstance(value, list):
        return sum(_text_size(v) for v in value)
    return 8
