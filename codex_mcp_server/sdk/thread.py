"""A conversation with the agent: :class:`Thread`, and the results of its turns."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Union

from typing_extensions import TypedDict

from .engine import Engine, TurnInput
from .errors import InvalidOptionsError, NoActiveTurnError, TurnFailedError
from .events import ThreadEvent, ThreadItem, Usage
from .options import ThreadOptions, TurnOptions
from .output_schema import check_output_schema

__all__ = [
    "ImageUserInput",
    "Input",
    "RunResult",
    "RunStreamedResult",
    "StreamedTurn",
    "TextUserInput",
    "Thread",
    "Turn",
    "UserInput",
]


class TextUserInput(TypedDict):
    type: Literal["text"]
    text: str


class ImageUserInput(TypedDict):
    type: Literal["local_image"]
    path: str


UserInput = Union[TextUserInput, ImageUserInput]
Input = Union[str, Sequence[UserInput]]


@dataclass
class Turn:
    """Result of a completed turn."""

    items: list[ThreadItem]
    """Every item completed during the turn."""
    final_response: str
    """Text of the turn's last agent message ("" if there was none)."""
    usage: Usage | None
    """Token usage, cumulative for the thread as codex reports it."""


@dataclass
class StreamedTurn:
    """A turn whose events are consumed as they come.

    Codex starts when ``events`` is first iterated. Leaving the loop early stops codex once
    the generator is closed: use ``async with`` (or :meth:`aclose`) to make that immediate.
    """

    events: AsyncGenerator[ThreadEvent, None]

    async def aclose(self) -> None:
        await self.events.aclose()

    async def __aenter__(self) -> StreamedTurn:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


RunResult = Turn
RunStreamedResult = StreamedTurn


class Thread:
    """A conversation with the agent, whose turns an :class:`Engine` runs (by default each in
    its own ``codex exec`` process)."""

    def __init__(
        self,
        engine: Engine,
        thread_options: ThreadOptions,
        thread_id: str | None = None,
    ) -> None:
        self._engine = engine
        self._thread_options = thread_options
        self._id = thread_id

    @property
    def id(self) -> str | None:
        """The thread id; ``None`` for a new thread until its first turn starts."""
        return self._id

    @property
    def options(self) -> ThreadOptions:
        return self._thread_options

    async def start(self) -> str | None:
        """Make the thread live on its engine before its first turn: a new thread is created
        (its id returned, or ``None`` where the id only comes with the first turn), a resumed
        one loaded (a :class:`CodexError` says why it cannot be)."""
        if self._id is None:
            self._id = await self._engine.start_thread(self._thread_options)
        else:
            await self._engine.resume_thread(self._id, self._thread_options)
        return self._id

    async def steer(self, input: Input) -> str:
        """Add ``input`` (text) to this thread's running turn; the model reads it on its next
        request. Returns the turn's id. :class:`NoActiveTurnError` when no turn runs."""
        prompt, images = normalize_input(input)
        if images:
            raise InvalidOptionsError("A steer takes text only, no images")
        if self._id is None:
            raise NoActiveTurnError("(not started)")
        return await self._engine.steer_turn(self._id, prompt)

    async def fork(self, options: ThreadOptions | None = None) -> Thread:
        """A new thread with this one's history copied (this thread's options unless
        ``options`` is given). Works on a thread another Codex process holds."""
        if self._id is None:
            raise InvalidOptionsError("A thread can be forked once it has an id")
        fork_options: ThreadOptions = (
            dict(options) if options is not None else dict(self._thread_options)  # type: ignore[assignment]
        )
        fork_id = await self._engine.fork_thread(self._id, fork_options)
        return Thread(self._engine, fork_options, fork_id)

    async def run_streamed(
        self, input: Input, turn_options: TurnOptions | None = None
    ) -> StreamedTurn:
        """Run a turn and receive its events as they come."""
        options = turn_options or {}
        prompt, images = normalize_input(input)
        schema = options.get("output_schema")
        check_output_schema(schema)
        return StreamedTurn(self._stream(TurnInput(prompt, images, schema), options))

    async def review_streamed(
        self, target: Mapping[str, Any], turn_options: TurnOptions | None = None
    ) -> StreamedTurn:
        """Run Codex's code review of ``target`` as a turn of this thread (``{"type":
        "uncommittedChanges"}``, ``{"type": "baseBranch", "branch": "main"}`` or ``{"type":
        "commit", "sha": "..."}``); its final agent message carries the findings. The
        app-server engine only (:class:`UnsupportedByEngineError` elsewhere)."""
        return StreamedTurn(self._stream(TurnInput("", review_target=target), turn_options or {}))

    async def run(self, input: Input, turn_options: TurnOptions | None = None) -> Turn:
        """Run a turn to its end and return its items, final response and usage."""
        streamed = await self.run_streamed(input, turn_options)
        items: list[ThreadItem] = []
        final_response = ""
        usage: Usage | None = None
        failure: str | None = None
        async with aclosing(streamed.events) as events:
            async for event in events:
                if event["type"] == "item.completed":
                    item = event["item"]
                    if item["type"] == "agent_message":
                        final_response = item["text"]
                    items.append(item)
                elif event["type"] == "turn.completed":
                    usage = event["usage"]
                elif event["type"] == "turn.failed":
                    failure = event["error"]["message"]
                    break
        # Raised after the loop so that codex is already stopped when the caller sees it.
        if failure is not None:
            raise TurnFailedError(failure)
        return Turn(items, final_response, usage)

    async def _stream(
        self, turn: TurnInput, options: TurnOptions
    ) -> AsyncGenerator[ThreadEvent, None]:
        events = self._engine.run_turn(self._id, self._thread_options, turn, options)
        async with aclosing(events):  # type: ignore[type-var]
            async for event in events:
                if event["type"] == "thread.started":
                    self._id = event["thread_id"]
                yield event


def normalize_input(input: Input) -> tuple[str, list[str]]:
    """The prompt (text entries joined by blank lines) and the image paths of an input."""
    if isinstance(input, str):
        return input, []
    texts: list[str] = []
    images: list[str] = []
    for entry in input:
        kind = entry.get("type") if isinstance(entry, Mapping) else None
        if kind == "text":
            texts.append(str(entry["text"]))  # type: ignore[typeddict-item]
        elif kind == "local_image":
            images.append(str(entry["path"]))  # type: ignore[typeddict-item]
        else:
            raise InvalidOptionsError(
                f"Unsupported input entry {entry!r}: expected a string, or entries of type "
                '"text" (with "text") or "local_image" (with "path")'
            )
    return "\n\n".join(texts), images
