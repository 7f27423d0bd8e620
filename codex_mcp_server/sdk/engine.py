"""The seam between a :class:`~codex_mcp_server.sdk.Thread` and what runs its turns.

An :class:`Engine` starts and resumes threads and runs a turn as a stream of the SDK's typed
events (:data:`~codex_mcp_server.sdk.ThreadEvent`), whatever carries them:

* :class:`~codex_mcp_server.sdk.exec_engine.ExecEngine`: one ``codex exec --experimental-json``
  process per turn (the TypeScript SDK's way; the default of :class:`~codex_mcp_server.sdk.Codex`);
* :class:`~codex_mcp_server.sdk.app_server.AppServerEngine`: one long-lived ``codex app-server``
  holding warm threads;
* :class:`~codex_mcp_server.sdk.fake_engine.FakeEngine`: scripted events in memory, for tests of
  code built on threads.

A turn stops when its event stream is closed or its consumer is cancelled: each engine stops
what it started before the close returns (processes killed and reaped, or the turn interrupted
and its commands stopped).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol

from typing_extensions import Self

from .events import ThreadEvent
from .options import ThreadOptions, TurnOptions

__all__ = ["ClosingContext", "Engine", "TurnInput"]


@dataclass(frozen=True)
class TurnInput:
    """What one turn sends: the prompt, local images, and an output schema (already checked);
    or, with ``review_target``, a code review of that target (app-server's ``ReviewTarget``:
    ``{"type": "uncommittedChanges"}``, ``{"type": "baseBranch", "branch": ...}``,
    ``{"type": "commit", "sha": ...}``) instead of a prompt."""

    prompt: str
    images: Sequence[str] = ()
    output_schema: Mapping[str, Any] | None = field(default=None)
    review_target: Mapping[str, Any] | None = field(default=None)


class Engine(Protocol):
    """Runs the turns of threads. Use it as an async context manager where it holds processes."""

    name: str
    """``exec``, ``app-server`` or ``fake``: for logs and messages."""

    async def start_thread(self, options: ThreadOptions) -> str | None:
        """Create a thread now and return its id, or ``None`` when the engine only creates it
        with its first turn (``exec``: the id then arrives as ``thread.started``)."""
        ...

    async def resume_thread(self, thread_id: str, options: ThreadOptions) -> None:
        """Load a persisted thread so that its next turn continues it (a no-op where every
        turn loads it anyway). Raises a :class:`~codex_mcp_server.sdk.CodexError` when the
        thread cannot be loaded (unknown, or held by another Codex process)."""
        ...

    def run_turn(
        self,
        thread_id: str | None,
        options: ThreadOptions,
        turn: TurnInput,
        turn_options: TurnOptions,
    ) -> AsyncIterator[ThreadEvent]:
        """The turn's events, ``thread.started`` first for a thread that has no id yet.

        A ``turn.review_target`` makes the turn Codex's code review (its last agent message
        is the review); an engine that cannot review raises
        :class:`~codex_mcp_server.sdk.UnsupportedByEngineError` before starting anything.
        Closing the iterator early, or cancelling its consumer, stops the turn."""
        ...

    async def steer_turn(self, thread_id: str, prompt: str) -> str:
        """Add ``prompt`` to the thread's running turn (the model reads it on its next
        request) and return that turn's id. Raises
        :class:`~codex_mcp_server.sdk.NoActiveTurnError` when no turn runs, and
        :class:`~codex_mcp_server.sdk.UnsupportedByEngineError` where the engine cannot."""
        ...

    async def fork_thread(self, thread_id: str, options: ThreadOptions) -> str:
        """A new thread with ``thread_id``'s history copied, with ``options``; its id. Works
        on a thread another Codex process holds. Raises
        :class:`~codex_mcp_server.sdk.UnsupportedByEngineError` where the engine cannot."""
        ...

    async def thread_saved(self, thread_id: str, timeout_s: float) -> bool:
        """Whether the thread can be resumed later (waiting up to ``timeout_s`` for it)."""
        ...

    async def release_thread(self, thread_id: str) -> None:
        """The caller no longer needs the thread: let other Codex processes take it."""
        ...

    async def aclose(self) -> None:
        """Stop everything the engine runs; its turns end first."""
        ...

    async def __aenter__(self) -> Engine: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class ClosingContext:
    """``async with`` for an engine: entering gives it, leaving calls its ``aclose``."""

    async def aclose(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
