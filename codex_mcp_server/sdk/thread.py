"""A conversation with the agent: :class:`Thread`, and the results of its turns."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Union

from typing_extensions import TypedDict

from .errors import InvalidOptionsError, TurnFailedError
from .events import ThreadEvent, ThreadItem, Usage, parse_event
from .exec import CodexExec, ExecArgs, Watchdog
from .options import CodexOptions, ThreadOptions, TurnOptions
from .output_schema import check_output_schema, output_schema_file

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
    """A conversation with the agent. Each turn runs one ``codex exec`` process."""

    def __init__(
        self,
        exec: CodexExec,
        options: CodexOptions,
        thread_options: ThreadOptions,
        thread_id: str | None = None,
    ) -> None:
        self._exec = exec
        self._options = options
        self._thread_options = thread_options
        self._id = thread_id

    @property
    def id(self) -> str | None:
        """The thread id; ``None`` for a new thread until its first turn starts."""
        return self._id

    async def run_streamed(
        self, input: Input, turn_options: TurnOptions | None = None
    ) -> StreamedTurn:
        """Run a turn and receive its events as they come."""
        options = turn_options or {}
        prompt, images = normalize_input(input)
        schema_json = check_output_schema(options.get("output_schema"))
        return StreamedTurn(self._stream(prompt, images, schema_json, options))

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
        self,
        prompt: str,
        images: list[str],
        schema_json: str | None,
        options: TurnOptions,
    ) -> AsyncGenerator[ThreadEvent, None]:
        idle_timeout = options.get("idle_timeout", self._options.get("idle_timeout"))
        watchdog = Watchdog(idle_timeout) if idle_timeout else None
        scratch = self._options.get("scratch_directory")
        with output_schema_file(schema_json, scratch) as schema_path:
            args = self._exec_args(prompt, images, schema_path, options)
            lines = self._exec.run(
                args, cancel_event=options.get("cancel_event"), watchdog=watchdog
            )
            async with aclosing(lines):
                async for line in lines:
                    event = parse_event(line)
                    if watchdog is not None:
                        if event["type"] == "error":
                            watchdog.warn(str(event.get("message", "")))
                        else:
                            watchdog.touch()
                    if event["type"] == "thread.started":
                        self._id = event["thread_id"]
                    yield event

    def _exec_args(
        self, prompt: str, images: list[str], schema_path: str | None, options: TurnOptions
    ) -> ExecArgs:
        thread = self._thread_options
        return ExecArgs(
            input=prompt,
            base_url=self._options.get("base_url"),
            api_key=self._options.get("api_key"),
            thread_id=self._id,
            images=images,
            model=thread.get("model"),
            profile=thread.get("profile"),
            thread_source=thread.get("thread_source"),
            sandbox_mode=_text(thread.get("sandbox_mode")),
            working_directory=_text(thread.get("working_directory")),
            additional_directories=[str(d) for d in thread.get("additional_directories", ())],
            skip_git_repo_check=bool(thread.get("skip_git_repo_check")),
            output_schema_file=schema_path,
            cyber_access_program=options.get("cyber_access_program"),
            model_reasoning_effort=_text(thread.get("model_reasoning_effort")),
            network_access_enabled=thread.get("network_access_enabled"),
            web_search_mode=_text(thread.get("web_search_mode")),
            web_search_enabled=thread.get("web_search_enabled"),
            approval_policy=_text(thread.get("approval_policy")),
        )


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


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
