"""The threads this server knows, in memory, keyed by Codex thread id.

The registry is the server's only mutable state. A thread runs at most one turn at a time;
the record of a running turn carries the cancel scope that stops it and an event set once
it has fully ended (codex's process group stopped and reaped).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import anyio

from ..sdk import Thread, Usage
from .models import TurnStatus, TurnUsage

__all__ = ["BusyThreadError", "Registry", "ThreadRecord", "TurnRecord", "UnknownThreadError"]


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
            "turn at a time. Wait for it to finish, or stop it with interrupt_turn."
        )


@dataclass(eq=False)
class TurnRecord:
    turn_id: str
    prompt: str
    has_output_schema: bool = False
    status: TurnStatus = "running"
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    items: list[dict[str, Any]] = field(default_factory=list)
    final_response: str = ""
    structured_output: Any = None
    usage: TurnUsage | None = None
    error: str | None = None
    cancel_scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    done: anyio.Event = field(default_factory=anyio.Event)

    def finish(self, status: TurnStatus, error: str | None = None) -> None:
        self.status = status
        self.error = error
        self.finished_at = time.time()


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

    def next_turn_id(self) -> str:
        return f"turn-{len(self.turns) + 1}"

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
    """Threads by id; newest last."""

    def __init__(self) -> None:
        self._threads: dict[str, ThreadRecord] = {}

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

    def newest_first(self) -> list[ThreadRecord]:
        return sorted(
            self._threads.values(),
            key=lambda r: r.turns[-1].started_at if r.turns else r.created_at,
            reverse=True,
        )

    def running_turns(self) -> list[TurnRecord]:
        return [t for r in self._threads.values() if (t := r.running_turn) is not None]
