"""One exception hierarchy for everything the SDK raises.

Catch :class:`CodexError` for any failure of a turn. Cancellation through a turn's
``cancel_event`` raises :class:`TurnCancelledError`, which is also an
``asyncio.CancelledError`` so that code written for the TypeScript SDK's ``AbortError``
(``except asyncio.CancelledError``) keeps working.
"""

from __future__ import annotations

import asyncio

__all__ = [
    "CodexError",
    "CodexExecError",
    "CodexIdleTimeoutError",
    "CodexNotFoundError",
    "CodexParseError",
    "InvalidOptionsError",
    "NoActiveTurnError",
    "TurnCancelledError",
    "TurnFailedError",
    "UnsupportedByEngineError",
]


class CodexError(Exception):
    """Base class of every error the SDK raises."""


class InvalidOptionsError(CodexError, ValueError):
    """An option (config overrides, output schema, input) cannot be turned into CLI arguments."""


class CodexNotFoundError(CodexError, FileNotFoundError):
    """No codex binary could be found or started."""


class CodexExecError(CodexError):
    """The codex process exited unsuccessfully before the turn ended."""

    def __init__(
        self,
        exit_code: int | None,
        signal: int | None,
        stderr_tail: str,
        *,
        program: str = "Codex Exec",
    ) -> None:
        detail = f"signal {signal}" if signal is not None else f"code {exit_code}"
        message = f"{program} exited with {detail}"
        if stderr_tail:
            message += f": {stderr_tail}"
        super().__init__(message)
        self.exit_code = exit_code
        self.signal = signal
        self.stderr_tail = stderr_tail


class TurnFailedError(CodexError):
    """Codex reported ``turn.failed``; the message is the model-facing reason."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CodexParseError(CodexError):
    """Codex printed a line that is not a JSON event."""

    def __init__(self, line: str) -> None:
        super().__init__(f"Failed to parse item: {line}")
        self.line = line


class CodexIdleTimeoutError(CodexError, TimeoutError):
    """Codex printed nothing for longer than the idle timeout; it has been killed."""

    def __init__(self, idle_timeout: float, last_warning: str | None = None) -> None:
        message = f"Codex made no progress for {idle_timeout:g} s, so the turn was stopped"
        if last_warning:
            message += f" (last warning: {last_warning})"
        super().__init__(message)
        self.idle_timeout = idle_timeout
        self.last_warning = last_warning


class TurnCancelledError(CodexError, asyncio.CancelledError):
    """The turn's ``cancel_event`` was set; codex has been stopped."""


class UnsupportedByEngineError(CodexError):
    """The engine cannot do this (``exec`` holds no live thread to steer, fork or ask)."""

    def __init__(self, what: str, engine: str) -> None:
        super().__init__(
            f"{what} needs a live thread, which the {engine} engine does not hold: use the "
            "app-server engine (`Codex(engine='app-server')`; for the MCP server, "
            "`--backend app-server`, its default)."
        )
        self.engine = engine


class NoActiveTurnError(CodexError):
    """The thread runs no turn that could take more input."""

    def __init__(self, thread_id: str) -> None:
        super().__init__(
            f"Thread {thread_id} has no running turn to steer (it is idle, or its turn has "
            "not started yet or has just ended): use run_turn (Thread.run) to start a turn "
            "with this prompt."
        )
        self.thread_id = thread_id
