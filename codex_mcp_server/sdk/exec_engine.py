"""The ``exec`` engine: one ``codex exec --experimental-json`` process per turn.

Threads exist only on disk between turns: a new thread gets its id from its first turn's
``thread.started`` event, and every later turn runs ``codex exec ... resume <id>``. Nothing is
held between turns, so there is nothing to release or close.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from pathlib import Path

import anyio

from .config import serialize_config_overrides
from .engine import ClosingContext, TurnInput
from .errors import UnsupportedByEngineError
from .events import ThreadEvent, parse_event
from .exec import CodexExec, ExecArgs, Watchdog
from .options import CodexOptions, ThreadOptions, TurnOptions
from .output_schema import check_output_schema, output_schema_file
from .sessions import session_saved

__all__ = ["ExecEngine"]

_POLL_S = 0.05


class ExecEngine(ClosingContext):
    """Runs each turn as its own ``codex exec`` process (see :class:`CodexExec`)."""

    name = "exec"

    def __init__(self, options: CodexOptions | None = None) -> None:
        self._options: CodexOptions = dict(options or {})  # type: ignore[assignment]
        config = self._options.get("config")
        self.exec = CodexExec(
            executable_path=self._options.get("codex_path_override"),
            env=self._options.get("env"),
            config_args=serialize_config_overrides(config) if config is not None else (),
            config_overrides=self._options.get("config_overrides", ()),
        )

    async def aclose(self) -> None:
        """Nothing to stop: each turn's process is stopped when its turn ends."""

    async def start_thread(self, options: ThreadOptions) -> str | None:
        return None  # Codex names the thread when its first turn starts.

    async def resume_thread(self, thread_id: str, options: ThreadOptions) -> None:
        return None  # Every turn resumes the thread from its rollout file.

    async def release_thread(self, thread_id: str) -> None:
        return None

    async def steer_turn(self, thread_id: str, prompt: str) -> str:
        raise UnsupportedByEngineError("Steering a running turn", self.name)

    async def fork_thread(self, thread_id: str, options: ThreadOptions) -> str:
        raise UnsupportedByEngineError("Forking a thread", self.name)

    async def thread_saved(self, thread_id: str, timeout_s: float) -> bool:
        # Codex saves a new thread a few tenths of a second after naming it; a turn stopped
        # before that leaves a thread that cannot be resumed.
        home = self._codex_home()
        for _ in range(round(timeout_s / _POLL_S)):
            if session_saved(home, thread_id):
                return True
            await anyio.sleep(_POLL_S)
        return session_saved(home, thread_id)

    async def run_turn(
        self,
        thread_id: str | None,
        options: ThreadOptions,
        turn: TurnInput,
        turn_options: TurnOptions,
    ) -> AsyncIterator[ThreadEvent]:
        if turn.review_target is not None:
            raise UnsupportedByEngineError("A code review", self.name)
        idle_timeout = turn_options.get("idle_timeout", self._options.get("idle_timeout"))
        watchdog = Watchdog(idle_timeout) if idle_timeout else None
        schema = check_output_schema(turn.output_schema)
        with output_schema_file(schema, self._options.get("scratch_directory")) as schema_path:
            args = self.exec_args(thread_id, options, turn, schema_path, turn_options)
            lines = self.exec.run(
                args, cancel_event=turn_options.get("cancel_event"), watchdog=watchdog
            )
            async with aclosing(lines):
                async for line in lines:
                    event = parse_event(line)
                    if watchdog is not None:
                        if event["type"] == "error":
                            watchdog.warn(str(event.get("message", "")))
                        else:
                            watchdog.touch()
                    yield event

    def exec_args(
        self,
        thread_id: str | None,
        thread: ThreadOptions,
        turn: TurnInput,
        schema_path: str | None,
        turn_options: TurnOptions,
    ) -> ExecArgs:
        """The ``codex exec`` arguments of one turn."""
        return ExecArgs(
            input=turn.prompt,
            base_url=self._options.get("base_url"),
            api_key=self._options.get("api_key"),
            thread_id=thread_id,
            images=list(turn.images),
            model=thread.get("model"),
            profile=thread.get("profile"),
            thread_source=thread.get("thread_source"),
            sandbox_mode=_text(thread.get("sandbox_mode")),
            working_directory=_text(thread.get("working_directory")),
            additional_directories=[str(d) for d in thread.get("additional_directories", ())],
            skip_git_repo_check=bool(thread.get("skip_git_repo_check")),
            output_schema_file=schema_path,
            cyber_access_program=turn_options.get("cyber_access_program"),
            model_reasoning_effort=_text(thread.get("model_reasoning_effort")),
            network_access_enabled=thread.get("network_access_enabled"),
            web_search_mode=_text(thread.get("web_search_mode")),
            web_search_enabled=thread.get("web_search_enabled"),
            approval_policy=_text(thread.get("approval_policy")),
            config_overrides=tuple(thread.get("config_overrides", ())),
        )

    def _codex_home(self) -> Path:
        env: Mapping[str, str] = self._options.get("env") or os.environ
        home = env.get("CODEX_HOME")
        return Path(home).expanduser() if home else Path.home() / ".codex"


def _text(value: object) -> str | None:
    return None if value is None else str(value)
