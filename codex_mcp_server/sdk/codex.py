"""The entry point of the SDK: :class:`Codex`."""

from __future__ import annotations

from types import TracebackType
from typing import Literal

from .engine import Engine
from .exec import CodexExec
from .exec_engine import ExecEngine
from .options import CodexOptions, ThreadOptions
from .thread import Thread

__all__ = ["Codex", "EngineName"]

EngineName = Literal["exec", "app-server"]


class Codex:
    """Starts and resumes threads, all run by the same codex binary and settings.

    By default each turn runs its own ``codex exec`` process, as in the TypeScript SDK.
    ``engine="app-server"`` keeps one ``codex app-server`` running that holds the threads
    warm (a turn then costs a fraction of a process start); use it as
    ``async with Codex(options, engine="app-server") as codex:`` so that the process is
    stopped when you are done. An :class:`Engine` instance may be given too.

    Config overrides are validated here, so a bad one fails at construction. The binary is
    looked up on the first turn (:class:`CodexNotFoundError` then says how to install it).
    """

    def __init__(
        self, options: CodexOptions | None = None, *, engine: EngineName | Engine = "exec"
    ) -> None:
        self._options: CodexOptions = dict(options or {})  # type: ignore[assignment]
        if engine == "exec":
            self._engine: Engine = ExecEngine(self._options)
        elif engine == "app-server":
            from .app_server import AppServerEngine

            self._engine = AppServerEngine(self._options)
        elif isinstance(engine, str):
            raise ValueError(f"unknown engine {engine!r}: expected 'exec' or 'app-server'")
        else:
            self._engine = engine

    @property
    def engine(self) -> Engine:
        """What runs this client's turns."""
        return self._engine

    @property
    def exec(self) -> CodexExec:
        """The process runner of the ``exec`` engine."""
        if not isinstance(self._engine, ExecEngine):
            raise AttributeError(f"the {self._engine.name} engine has no CodexExec")
        return self._engine.exec

    def start_thread(self, options: ThreadOptions | None = None) -> Thread:
        """A new conversation; its id is known once its first turn starts."""
        return Thread(self._engine, dict(options or {}))  # type: ignore[arg-type]

    def resume_thread(self, thread_id: str, options: ThreadOptions | None = None) -> Thread:
        """A conversation persisted by codex under ``$CODEX_HOME/sessions``."""
        return Thread(self._engine, dict(options or {}), thread_id)  # type: ignore[arg-type]

    async def aclose(self) -> None:
        """Stop the engine's processes (nothing to do for ``exec``)."""
        await self._engine.aclose()

    async def __aenter__(self) -> Codex:
        await self._engine.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._engine.__aexit__(exc_type, exc, tb)
