"""An engine that plays scripted events from memory: tests of code built on threads, in
milliseconds and without codex.

    engine = FakeEngine()
    engine.script(FakeEngine.reply("hello"))
    async with Codex(engine=engine) as codex:
        turn = await codex.start_thread().run("hi")
    assert turn.final_response == "hello"

Each turn plays the next script: a list of events, after a ``turn.started``; a script may
contain :data:`FakeEngine.HANG`, where the turn then waits until it is stopped (as a model that
never answers). Every turn is recorded in :attr:`FakeEngine.turns`.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, cast

import anyio

from .engine import ClosingContext, TurnInput
from .errors import CodexError, NoActiveTurnError
from .events import ThreadEvent, Usage
from .options import ThreadOptions, TurnOptions

__all__ = ["FakeEngine", "FakeTurn"]

_USAGE: Usage = {
    "input_tokens": 42,
    "cached_input_tokens": 12,
    "cache_write_input_tokens": 0,
    "output_tokens": 5,
    "reasoning_output_tokens": 3,
}


@dataclass
class FakeTurn:
    """A turn the fake engine ran: its thread, options and input, and how it ended."""

    thread_id: str
    options: ThreadOptions
    input: TurnInput
    stopped: bool = False
    """Closed or cancelled before its script ended."""
    events: list[ThreadEvent] = field(default_factory=list)
    steers: list[str] = field(default_factory=list)
    """Prompts added with :meth:`FakeEngine.steer_turn` while it ran."""


class FakeEngine(ClosingContext):
    """Scripted turns in memory; ``names_on_start`` as app-server (ids before the turn)."""

    name = "fake"
    HANG: ClassVar[Mapping[str, Any]] = {"type": "fake.hang"}

    def __init__(self, *, names_on_start: bool = True) -> None:
        self.names_on_start = names_on_start
        self.turns: list[FakeTurn] = []
        self.released: list[str] = []
        self.forks: list[tuple[str, str]] = []
        """(source, fork) of every :meth:`fork_thread`."""
        self._running: dict[str, FakeTurn] = {}
        self.closed = False
        self._scripts: deque[Sequence[Mapping[str, Any]]] = deque()
        self._usage: dict[str, Usage] = {}

    @staticmethod
    def reply(text: str) -> list[dict[str, Any]]:
        """A script in which the agent answers ``text``."""
        item = {"id": "msg", "type": "agent_message", "text": text}
        return [{"type": "item.completed", "item": item}, {"type": "turn.completed"}]

    def script(self, *scripts: Sequence[Mapping[str, Any]]) -> None:
        """Queue scripts; each turn plays the next (an unscripted turn fails)."""
        self._scripts.extend(scripts)

    async def aclose(self) -> None:
        self.closed = True

    async def start_thread(self, options: ThreadOptions) -> str | None:
        return str(uuid.uuid4()) if self.names_on_start else None

    async def resume_thread(self, thread_id: str, options: ThreadOptions) -> None:
        return None

    async def thread_saved(self, thread_id: str, timeout_s: float) -> bool:
        return True

    async def release_thread(self, thread_id: str) -> None:
        self.released.append(thread_id)

    async def steer_turn(self, thread_id: str, prompt: str) -> str:
        turn = self._running.get(thread_id)
        if turn is None:
            raise NoActiveTurnError(thread_id)
        turn.steers.append(prompt)
        return f"fake-turn-{len(self.turns)}"

    async def fork_thread(self, thread_id: str, options: ThreadOptions) -> str:
        fork = str(uuid.uuid4())
        self.forks.append((thread_id, fork))
        return fork

    async def run_turn(
        self,
        thread_id: str | None,
        options: ThreadOptions,
        turn: TurnInput,
        turn_options: TurnOptions,
    ) -> AsyncIterator[ThreadEvent]:
        if thread_id is None:
            thread_id = str(uuid.uuid4())
            yield cast(ThreadEvent, {"type": "thread.started", "thread_id": thread_id})
        record = FakeTurn(thread_id, options, turn)
        self.turns.append(record)
        if not self._scripts:
            raise CodexError("FakeEngine: no script for this turn")
        script = self._scripts.popleft()
        finished = False
        self._running[thread_id] = record
        try:
            for event in ({"type": "turn.started"}, *script):
                if event is self.HANG:
                    await anyio.sleep_forever()
                if event["type"] == "turn.completed" and "usage" not in event:
                    event = {**event, "usage": self._add_usage(thread_id)}
                record.events.append(cast(ThreadEvent, event))
                yield cast(ThreadEvent, event)
            finished = True
        finally:
            record.stopped = not finished
            self._running.pop(thread_id, None)

    def _add_usage(self, thread_id: str) -> Usage:
        # Cumulative over the thread, as codex reports it.
        was = cast(Mapping[str, int], self._usage.get(thread_id, {}))
        now = cast(Mapping[str, int], _USAGE)
        usage = cast(Usage, {key: now[key] + was.get(key, 0) for key in now})
        self._usage[thread_id] = usage
        return usage
