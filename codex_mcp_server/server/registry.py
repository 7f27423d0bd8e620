"""The threads this server knows, in memory, keyed by Codex thread id.

The registry is the server's only mutable state. A thread runs at most one turn at a time;
the record of a running turn carries the cancel scope that stops it, the listeners its
progress lines go to, and an event set once it has fully ended (codex stopped and reaped).

Progress never waits for a listener: each one gets a :class:`Feed`, a buffer bounded in
lines and characters that a task of the listener's own call drains. A listener that does
not keep up (an HTTP client that stopped reading) loses lines, told how many; the turn,
its queue slot and the other listeners go on.

Memory is bounded: the registry keeps at most :data:`MAX_THREADS` threads (the least
recently used idle ones go first; Codex still has them on disk for ``resume_thread``), and a
thread keeps the items of its last :data:`KEEP_ITEMS_OF_TURNS` turns; older turns keep their
result (final response, actions, usage) without the items. Text is bounded across all
threads by size, :data:`MAX_ITEM_BYTES`: the items (a command's output can be large), the
prompt and the final response (a 1 MB answer is as large) of every ended turn count. Past
the bound, the turns that ended first lose their items and keep only the start of their
prompt and final response (:data:`SHED_TEXT_MAX` characters).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import anyio

from ..sdk import Thread, Usage
from .actions import Actions, summarize_actions
from .models import TurnStatus, TurnUsage

if TYPE_CHECKING:
    from .approvals import Approval

__all__ = [
    "FEED_CHARS",
    "FEED_LINES",
    "KEEP_ITEMS_OF_TURNS",
    "MAX_ITEM_BYTES",
    "MAX_THREADS",
    "SHED_TEXT_MAX",
    "Asker",
    "BusyThreadError",
    "Feed",
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
FEED_LINES = 1000
FEED_CHARS = 256 * 1024
"""What one listener's feed holds before it drops lines (progress lines are short: a few
hundred characters at most, so lines is the usual bound and characters the safe one)."""
SHED_TEXT_MAX = 2_000

Listener = Callable[[str], Awaitable[None]]


@runtime_checkable
class Asker(Protocol):
    """A listener that can also put a question to the person at the host (a tool call of a
    client that takes elicitations): returns the action and the form's content."""

    can_ask: bool

    async def ask(
        self, message: str, schema: dict[str, Any]
    ) -> tuple[str, dict[str, Any] | None]: ...


@dataclass
class _Skipped:
    lines: int = 0

    def describe(self) -> str:
        return (
            f"… {self.lines} progress line(s) skipped: this client read them slower than "
            "the turn made them (get_thread has the whole turn)"
        )


class Feed:
    """Progress lines on their way to one listener: offered without waiting, delivered in
    order by :meth:`deliver`, at most ``max_lines`` lines and ``max_chars`` characters held.

    Past that, lines are dropped for this listener only, and a line in their place says how
    many; a heartbeat is dropped whenever anything is pending (it says only "still alive").
    """

    def __init__(
        self, listener: Listener, max_lines: int = FEED_LINES, max_chars: int = FEED_CHARS
    ) -> None:
        self.listener = listener
        self._max_lines = max_lines
        self._max_chars = max_chars
        self._pending: deque[str | _Skipped] = deque()
        self._lines = 0
        self._chars = 0
        self._wakeup = anyio.Event()
        self._closed = False

    def offer(self, line: str, *, heartbeat: bool = False) -> None:
        if self._closed or (heartbeat and self._pending):
            return
        if self._lines >= self._max_lines or self._chars + len(line) > self._max_chars:
            last = self._pending[-1] if self._pending else None
            if not isinstance(last, _Skipped):
                last = _Skipped()
                self._pending.append(last)
            last.lines += 1
        else:
            self._pending.append(line)
            self._lines += 1
            self._chars += len(line)
        self._wakeup.set()

    def close(self) -> None:
        """Take no more lines; :meth:`deliver` returns once those pending are delivered."""
        self._closed = True
        self._wakeup.set()

    async def deliver(self) -> None:
        while True:
            if not self._pending:
                if self._closed:
                    return
                self._wakeup = anyio.Event()
                await self._wakeup.wait()
                continue
            entry = self._pending.popleft()
            if isinstance(entry, _Skipped):
                line = entry.describe()
            else:
                line = entry
                self._lines -= 1
                self._chars -= len(line)
            await self.listener(line)


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
    diff: str | None = None
    """The turn's changes as one unified diff (app-server backend)."""
    structured_output: Any = None
    usage: TurnUsage | None = None
    error: str | None = None
    thread_id: str | None = None
    """A new thread's id once codex names it; a known thread's from the start."""
    lines: int = 0
    """Progress lines published so far."""
    last_line: str = ""
    feeds: set[Feed] = field(default_factory=set)
    cancel_scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    stop_reason: str = "The turn was stopped by interrupt_turn."
    """The error recorded when ``cancel_scope`` stops the turn."""
    thread_known: anyio.Event = field(default_factory=anyio.Event)
    """Set once codex named the thread (or the turn ended without it)."""
    done: anyio.Event = field(default_factory=anyio.Event)
    item_bytes: int = 0
    """Characters of text in the items and the diff (about their bytes), counted when the
    turn ends."""
    text_bytes: int = 0
    """Characters of the prompt, final response and error (and the structured output parsed
    from the response), counted when the turn ends."""
    before_start: Callable[[], None] | None = None
    """Checks made as the turn leaves the queue, just before codex starts; a ``CodexError``
    it raises is the turn's failure."""
    pending: dict[str, Approval] = field(default_factory=dict)
    """Codex's requests waiting for a decision (see ``approvals.py``)."""
    approvals_seen: int = 0
    askers: list[Asker] = field(default_factory=list)
    """The listeners now that can ask the person at the host (the latest asks)."""
    attention: anyio.Event = field(default_factory=anyio.Event)
    """Set while a request waits for answer_approval (nobody was asked through the host)."""
    _actions: Actions | None = None

    @property
    def shown_status(self) -> TurnStatus:
        """The status a result shows: a running turn with requests pending waits for them."""
        return "waiting_for_approval" if self.status == "running" and self.pending else self.status

    def settle_approval(self, approval: Approval) -> None:
        """``approval`` is answered: it no longer waits."""
        self.pending.pop(approval.request_id, None)
        if all(waiting.asked for waiting in self.pending.values()):
            self.attention = anyio.Event()

    async def ended_or_waiting(self) -> None:
        """Return once the turn has ended, or a request waits for answer_approval."""
        attention = self.attention
        if attention.is_set() or self.done.is_set():
            return
        async with anyio.create_task_group() as group:

            async def until(event: anyio.Event) -> None:
                await event.wait()
                group.cancel_scope.cancel()

            group.start_soon(until, self.done)
            group.start_soon(until, attention)

    async def publish(self, line: str, *, count: bool = True) -> None:
        """Send a progress line to whoever listens now; heartbeats pass ``count=False``.

        Never waits for a listener (see :class:`Feed`).
        """
        if count:
            self.lines += 1
            self.last_line = line
        for feed in self.feeds:
            feed.offer(line, heartbeat=not count)

    @asynccontextmanager
    async def listening(self, listener: Listener | None) -> AsyncIterator[None]:
        """Within the block, ``listener`` gets the turn's progress lines, from a task of the
        caller's; leaving it normally delivers what is still pending first."""
        if listener is None:
            yield
            return
        feed = Feed(listener)
        failure: BaseException | None = None
        asker = listener if isinstance(listener, Asker) and listener.can_ask else None
        async with anyio.create_task_group() as group:
            group.start_soon(feed.deliver)
            self.feeds.add(feed)
            if asker is not None:
                self.askers.append(asker)
            try:
                yield
            except BaseException as exc:
                # Raised as it is, not in the task group's ExceptionGroup, and without
                # waiting for the listener.
                failure = exc
                group.cancel_scope.cancel()
            finally:
                self.feeds.discard(feed)
                if asker is not None:
                    self.askers.remove(asker)
                feed.close()
        if failure is not None:
            raise failure

    def finish(self, status: TurnStatus, error: str | None = None) -> None:
        for approval in list(self.pending.values()):  # Codex no longer waits for them.
            approval.decide("decline", "the turn ended")
            self.settle_approval(approval)
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
        self.diff = None  # As large as the items it sums up, and counted with them.

    def shed(self) -> None:
        """Keep the result's gist only: no items, the start of the long texts."""
        self.drop_items()
        note = "dropped from the server's memory; Codex keeps the thread (resume_thread)"
        self.prompt = _shorten(self.prompt, note)
        response = _shorten(self.final_response, note)
        if response != self.final_response:
            self.final_response = response
            self.structured_output = None  # Parsed from the response, as large as it.
        if self.error is not None:
            self.error = _shorten(self.error, note)


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
    earlier_turns: int = 0
    """Turns of the thread this server has no record of (run before it resumed the thread),
    so that turn ids stay unique within the thread."""
    additional_directories: list[str] = field(default_factory=list)
    """Resolved, as the working directory is; each turn checks that they still are."""
    files: list[str] = field(default_factory=list)
    """The server's scratch files codex reads for this thread; removed when it leaves."""

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
        turn = TurnRecord(
            f"turn-{self.earlier_turns + len(self.turns) + 1}", prompt, thread_id=self.thread_id
        )
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
        self,
        max_threads: int = MAX_THREADS,
        max_item_bytes: int = MAX_ITEM_BYTES,
    ) -> None:
        self._threads: dict[str, ThreadRecord] = {}
        self.on_leave: Callable[[ThreadRecord], None] | None = None
        """Called with each record that leaves (removed, evicted, or replaced by another)."""
        self._max_threads = max_threads
        self._max_item_bytes = max_item_bytes
        # Ended turns that still hold their texts, oldest first, and the sum of their sizes.
        self._held: dict[TurnRecord, None] = {}
        self._held_bytes = 0

    def get(self, thread_id: str) -> ThreadRecord:
        try:
            return self._threads[thread_id]
        except KeyError:
            raise UnknownThreadError(thread_id) from None

    def find(self, thread_id: str) -> ThreadRecord | None:
        return self._threads.get(thread_id)

    def add(self, record: ThreadRecord) -> None:
        # Re-adding (resume_thread on a known thread) moves it to the newest position.
        replaced = self._threads.pop(record.thread_id, None)
        self._threads[record.thread_id] = record
        if replaced is not None and replaced is not record:
            self._left(replaced)
        excess = len(self._threads) - self._max_threads
        for old in [r for r in self._threads.values() if not r.running_turn][: max(0, excess)]:
            self.remove(old.thread_id)

    def settle(self, turn: TurnRecord) -> None:
        """Account for the texts of ``turn``, which has ended, and enforce the bounds."""
        record = self.find(turn.thread_id) if turn.thread_id else None
        if record is None or turn not in record.turns:
            return  # Its thread is gone from the registry, and its texts with it.
        turn.item_bytes = _text_size(turn.items) + len(turn.diff or "")
        turn.text_bytes = len(turn.prompt) + len(turn.final_response) + len(turn.error or "")
        if turn.structured_output is not None:
            turn.text_bytes += len(turn.final_response)
        self._held[turn] = None
        self._held_bytes += turn.item_bytes + turn.text_bytes
        for old in record.turns[:-KEEP_ITEMS_OF_TURNS]:
            if old.items:
                self._drop_items(old)
        while self._held_bytes > self._max_item_bytes:
            self._shed(next(iter(self._held)))  # The one that ended first.

    def remove(self, thread_id: str) -> None:
        record = self._threads.pop(thread_id, None)
        if record is None:
            return
        for turn in record.turns:
            self._uncount(turn)
        self._left(record)

    def _left(self, record: ThreadRecord) -> None:
        if self.on_leave is not None:
            self.on_leave(record)

    def _drop_items(self, turn: TurnRecord) -> None:
        if turn in self._held:
            self._held_bytes -= turn.item_bytes
            turn.item_bytes = 0
        turn.drop_items()

    def _shed(self, turn: TurnRecord) -> None:
        # What is left (a few kB per turn) is bounded by the count of threads and turns.
        self._uncount(turn)
        turn.shed()

    def _uncount(self, turn: TurnRecord) -> None:
        if turn in self._held:
            del self._held[turn]
            self._held_bytes -= turn.item_bytes + turn.text_bytes

    def touch(self, record: ThreadRecord) -> None:
        """Mark ``record`` as just used, so it is the last to be evicted."""
        self._threads.pop(record.thread_id, None)
        self._threads[record.thread_id] = record

    def newest_first(self) -> list[ThreadRecord]:
        return sorted(self._threads.values(), key=lambda r: r.updated_at, reverse=True)


def _shorten(text: str, note: str) -> str:
    if len(text) <= SHED_TEXT_MAX:
        return text
    return f"{text[:SHED_TEXT_MAX]}… [{len(text) - SHED_TEXT_MAX} more characters {note}]"


def _text_size(value: Any) -> int:
    """Characters of text in ``value`` (an item: dicts, lists, strings, numbers)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(len(k) + _text_size(v) for k, v in value.items())
    if isinstance(value, list):
        return sum(_text_size(v) for v in value)
    return 8
