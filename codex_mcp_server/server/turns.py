"""Running one turn of a thread: codex's events become records and progress lines.

Knows nothing of MCP: progress lines go to the turn's listeners (the tool call waiting for
it, if any). While codex is silent a heartbeat line goes out, so hosts that reset their
timeouts on progress keep waiting.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio

from ..sdk import CodexError, Input, StreamedTurn, Thread, TurnOptions, loads_json
from .progress import heartbeat, one_line, render_event
from .registry import ThreadRecord, TurnRecord

__all__ = [
    "LIVE_TEXT_INTERVAL",
    "MAX_STRUCTURED_DEPTH",
    "TurnQueue",
    "execute_turn",
    "explain_failure",
]

logger = logging.getLogger(__name__)

MAX_STRUCTURED_DEPTH = 100
"""Deepest ``structured_output`` a result carries (objects and arrays within each other)."""
LIVE_TEXT_INTERVAL = 0.25
"""Shortest time between two progress lines of the agent's text as it is written."""
_LIVE_TEXT_LINE = 100
_LIVE_TEXT_KEPT = 400


class _Writing:
    """The agent's message as it is written: the tail of its text, as a progress line no more
    often than :data:`LIVE_TEXT_INTERVAL` (a model writes dozens of deltas a second)."""

    def __init__(self) -> None:
        self._item: str | None = None
        self._tail = ""
        self._last = -LIVE_TEXT_INTERVAL

    def add(self, item_id: str, delta: str) -> str | None:
        if item_id != self._item:
            self._item, self._tail = item_id, ""
        self._tail = (self._tail + delta)[-_LIVE_TEXT_KEPT:]
        now = anyio.current_time()
        if now - self._last < LIVE_TEXT_INTERVAL:
            return None
        self._last = now
        text = " ".join(self._tail.split())
        if len(text) > _LIVE_TEXT_LINE:
            text = "…" + text[-(_LIVE_TEXT_LINE - 1) :]
        return f"writing: {one_line(text, _LIVE_TEXT_LINE)}" if text else None


class TurnQueue:
    """At most ``limit`` turns run at once; the others wait in order, and say so."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._slots = anyio.Semaphore(limit)
        self._waiting = 0
        # When each turn started waiting for, or got, its slot: heartbeats count from there.
        self._queued_at: dict[TurnRecord, float] = {}
        self._running_at: dict[TurnRecord, float] = {}

    @asynccontextmanager
    async def slot(self, turn: TurnRecord) -> AsyncIterator[None]:
        queued_at: float | None = None
        if self._waiting or self._slots.value == 0:
            running = self.limit - self._slots.value
            turns = "turn" if running == 1 else "turns"
            ahead = f"; {self._waiting} waiting before this one" if self._waiting else ""
            self._waiting += 1
            self._queued_at[turn] = queued_at = anyio.current_time()
            try:
                await turn.publish(
                    f"queued: waiting for a free slot ({running} {turns} running, "
                    f"at most {self.limit}{ahead})"
                )
                await self._slots.acquire()  # anyio's semaphore wakes waiters in order.
            finally:
                self._waiting -= 1
                del self._queued_at[turn]
        else:
            await self._slots.acquire()
        self._running_at[turn] = now = anyio.current_time()
        logger.info(
            "thread %s %s started%s",
            turn.thread_id or "(new)",
            turn.turn_id,
            f" after {now - queued_at:.1f} s in the queue" if queued_at is not None else "",
        )
        try:
            if turn.before_start is not None:
                turn.before_start()  # A wait in the queue can be long: check what may change.
            yield
        finally:
            del self._running_at[turn]
            self._slots.release()

    def heartbeat(self, turn: TurnRecord, elapsed: float) -> str:
        """``queued… 10 s`` while ``turn`` waits, then ``working… 10 s`` from its start.

        ``elapsed``: the time since the turn was asked for, used before it reaches the queue.
        """
        now = anyio.current_time()
        if (since := self._queued_at.get(turn)) is not None:
            return heartbeat(now - since, "queued")
        if (since := self._running_at.get(turn)) is not None:
            return heartbeat(now - since)
        return heartbeat(elapsed)


async def execute_turn(
    thread: Thread,
    turn: TurnRecord,
    input: Input,
    output_schema: dict[str, Any] | None,
    *,
    on_thread_started: Callable[[str], ThreadRecord],
    cwd: str,
    heartbeat_interval: float,
    queue: TurnQueue,
    on_request: Callable[[str, Mapping[str, Any]], Awaitable[Any]] | None = None,
    review_target: Mapping[str, Any] | None = None,
) -> ThreadRecord | None:
    """Run the turn to its end and record its outcome in ``turn``.

    Returns the thread's record (``None`` if codex failed before naming the thread).
    Codex errors end the turn as ``failed``; ``turn.cancel_scope`` ends it as ``interrupted``;
    cancellation of the caller also records ``interrupted``, then propagates.
    """
    record: ThreadRecord | None = None
    failure: str | None = None
    started = last_report = anyio.current_time()

    async def send(line: str, *, count: bool = True) -> None:
        nonlocal last_report
        last_report = anyio.current_time()
        await turn.publish(line, count=count)

    async def keep_alive() -> None:
        while True:
            await anyio.sleep(max(0.0, last_report + heartbeat_interval - anyio.current_time()))
            if anyio.current_time() - last_report >= heartbeat_interval:
                await send(queue.heartbeat(turn, anyio.current_time() - started), count=False)

    async def consume(group: anyio.abc.TaskGroup) -> None:
        nonlocal record, failure
        ended = False
        writing = _Writing()
        options: TurnOptions = {"output_schema": output_schema} if output_schema else {}
        if on_request is not None:
            options["on_request"] = on_request  # Codex's questions during this turn.

        def named(thread_id: str) -> None:
            nonlocal record
            turn.thread_id = thread_id
            record = on_thread_started(thread_id)
            turn.thread_known.set()

        try:
            # An engine that creates threads up front names the thread before the queue, so a
            # background start returns at once; exec names it when its turn starts.
            if thread.id is not None:
                named(thread.id)
            elif (thread_id := await thread.start()) is not None:
                named(thread_id)

            async def streamed_turn() -> StreamedTurn:
                # Made once the slot is ours: a turn cancelled in the queue starts nothing.
                if review_target is not None:
                    return await thread.review_streamed(review_target, options)
                return await thread.run_streamed(input, options)

            async with queue.slot(turn), await streamed_turn() as streamed:
                async for event in streamed.events:
                    if event["type"] == "thread.started":
                        named(event["thread_id"])
                    elif event["type"] == "item.completed":
                        item = event["item"]
                        turn.items.append(dict(item))
                        if item["type"] == "agent_message":
                            turn.final_response = item["text"]
                    elif event["type"] == "turn.completed":
                        ended = True
                        if record is not None:
                            turn.usage = record.turn_usage(event["usage"])
                    elif event["type"] == "turn.failed":
                        failure = event["error"]["message"]
                    elif event["type"] == "turn.diff.updated":
                        turn.diff = event["diff"] or None
                    elif event["type"] == "item.delta":
                        if (line := writing.add(event["item_id"], event["delta"])) is not None:
                            await send(line)
                        continue
                    line = render_event(event, cwd=cwd)
                    if line is not None:
                        await send(line)
        except CodexError as exc:
            # After turn.failed codex exits 1; the turn's own message says more than that.
            failure = failure or explain_failure(exc, cwd)
        else:
            if not ended and failure is None:
                failure = "Codex exited with code 0 before the turn ended (no turn.completed)."
        finally:
            group.cancel_scope.cancel()

    try:
        with turn.cancel_scope:
            async with anyio.create_task_group() as group:
                group.start_soon(keep_alive)
                group.start_soon(consume, group)
        if turn.cancel_scope.cancelled_caught:
            turn.finish("interrupted", turn.stop_reason)
        elif failure is not None:
            turn.finish("failed", failure)
        else:
            note = None
            if output_schema is not None:
                turn.structured_output, note = _structured_output(turn.final_response)
            turn.finish("completed", note)
    except anyio.get_cancelled_exc_class():
        if turn.status == "running":
            turn.finish("interrupted", "The turn was cancelled by the client.")
        raise
    except BaseException:
        if turn.status == "running":
            turn.finish("failed", "The server failed while running this turn; see its log.")
        raise
    finally:
        turn.thread_known.set()
        turn.done.set()
    return record


def explain_failure(exc: CodexError, cwd: str) -> str:
    """Codex's error, with what the calling model can do about it when the server knows."""
    # Matched on the text, not the type: every engine passes codex's own words on.
    if _NEEDS_GIT in str(exc):
        return (
            f"Codex refused to work in {cwd}: it is not inside a Git repository (nor a "
            "directory Codex trusts). Call start_thread (or resume_thread) again with "
            "skip_git_repo_check: true to let it work there anyway, or give a "
            f"working_directory inside a Git repository. Codex said: {exc}"
        )
    return str(exc)


_NEEDS_GIT = "--skip-git-repo-check was not specified"


def _structured_output(text: str) -> tuple[Any, str | None]:
    """The answer parsed as JSON, or ``None`` and why when it cannot be a result's value."""
    try:
        value = loads_json(text)  # An answer may escape a lone surrogate: made safe here.
    except (ValueError, RecursionError):
        return None, None
    if _depth_exceeds(value, MAX_STRUCTURED_DEPTH):
        return None, (
            f"structured_output is null: the answer nests deeper than {MAX_STRUCTURED_DEPTH} "
            "levels, more than a result can carry; final_response holds it as text."
        )
    return value, None


def _depth_exceeds(value: Any, limit: int) -> bool:
    # Serializing a result (pydantic, then the JSON-RPC message around it) fails a few
    # levels past 250, for every tool and resource that shows the turn: keep well below.
    level = [value]
    for _ in range(limit):
        level = [
            child
            for node in level
            if isinstance(node, (dict, list))
            for child in (node.values() if isinstance(node, dict) else node)
        ]
        if not level:
            return False
    return any(isinstance(node, (dict, list)) and node for node in level)
