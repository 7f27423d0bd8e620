"""Spawning ``codex exec --experimental-json`` and reading its JSONL output.

:class:`CodexExec` builds the command line exactly as the TypeScript SDK does (its order
matters: thread options come after global ``--config`` flags so they win, and ``resume``
comes before ``--image``), starts codex in its own process group, writes the prompt to its
stdin and yields its stdout line by line. Whatever ends the run (exhaustion, an error, the
caller's cancellation, an abandoned generator), the whole process group is stopped and reaped
(:mod:`.processes`), with what the run's commands left behind in a process that called
:func:`~.processes.adopt_orphans`.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import uuid
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import anyio
from anyio.abc import ByteReceiveStream, Process

from .errors import (
    CodexExecError,
    CodexIdleTimeoutError,
    CodexNotFoundError,
    TurnCancelledError,
)
from .locate import CodexBinary, find_codex
from .processes import CHUNK, MARKER_ENV, ProcessTree, orphans, read_lines, spawn

__all__ = ["CodexExec", "ExecArgs", "Watchdog"]

ORIGINATOR_ENV = "CODEX_INTERNAL_ORIGINATOR_OVERRIDE"
PYTHON_SDK_ORIGINATOR = "codex_sdk_py"

_STDERR_TAIL = 2000
_STDIN_NOTICE = "Reading prompt from stdin..."
_BACKTRACE = "Stack backtrace:"
_WARNING = "WARNING:"


@dataclass(frozen=True)
class ExecArgs:
    """Everything one ``codex exec`` run needs besides the :class:`CodexExec` settings."""

    input: str
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    thread_id: str | None = None
    images: Sequence[str] = ()
    model: str | None = None
    profile: str | None = None
    thread_source: str | None = None
    sandbox_mode: str | None = None
    working_directory: str | None = None
    additional_directories: Sequence[str] = ()
    skip_git_repo_check: bool = False
    output_schema_file: str | None = None
    cyber_access_program: str | None = None
    model_reasoning_effort: str | None = None
    network_access_enabled: bool | None = None
    web_search_mode: str | None = None
    web_search_enabled: bool | None = None
    approval_policy: str | None = None
    config_overrides: Sequence[str] = ()
    """The thread's own ``key=value`` overrides, after the :class:`CodexExec` ones."""


class Watchdog:
    """Fails a run when codex shows no progress for ``timeout`` seconds.

    The reader waits at most until :attr:`deadline`; the consumer calls :meth:`touch` for each
    event that counts as progress. Warnings (top-level ``error`` events such as reconnects)
    do not count, so a turn that only reconnects still times out, naming the last warning.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.deadline = anyio.current_time() + timeout
        self.last_warning: str | None = None
        self._progressed = False

    def touch(self) -> None:
        # Called for every event: only note it; the clock is read once per read instead.
        self._progressed = True

    def warn(self, message: str) -> None:
        self.last_warning = message

    async def receive(self, stream: ByteReceiveStream) -> bytes:
        now = anyio.current_time()
        if self._progressed:
            self.deadline = now + self.timeout
            self._progressed = False
        with anyio.move_on_after(self.deadline - now):
            return await stream.receive(CHUNK)
        raise CodexIdleTimeoutError(self.timeout, self.last_warning)


class CodexExec:
    """Runs codex with fixed global settings: binary, environment and config overrides."""

    def __init__(
        self,
        executable_path: str | None = None,
        env: Mapping[str, str] | None = None,
        config_args: Sequence[str] = (),
        config_overrides: Sequence[str] = (),
    ) -> None:
        self._executable_path = executable_path
        self._env = dict(env) if env is not None else None
        self._config_args = tuple(config_args)
        self._config_overrides = tuple(config_overrides)
        self._binary: CodexBinary | None = None

    @property
    def binary(self) -> CodexBinary:
        """The codex binary, looked up on first use so a missing one fails the turn, not import."""
        if self._binary is None:
            search_path = self._env.get("PATH") if self._env is not None else None
            self._binary = find_codex(self._executable_path, search_path)
        return self._binary

    def build_args(self, args: ExecArgs) -> list[str]:
        """The arguments after the executable, in the TypeScript SDK's order."""
        command = ["exec", "--experimental-json"]
        for override in (*self._config_args, *self._config_overrides, *args.config_overrides):
            command += ["--config", override]
        if args.base_url:
            command += ["--config", f"openai_base_url={_quoted(args.base_url)}"]
        if args.model:
            command += ["--model", args.model]
        if args.profile:
            command += ["--profile", args.profile]
        if args.thread_source is not None and not args.thread_id:
            command += ["--thread-source", args.thread_source]
        if args.sandbox_mode:
            command += ["--sandbox", str(args.sandbox_mode)]
        if args.working_directory:
            command += ["--cd", args.working_directory]
        for directory in args.additional_directories:
            command += ["--add-dir", directory]
        if args.skip_git_repo_check:
            command.append("--skip-git-repo-check")
        if args.output_schema_file:
            command += ["--output-schema", args.output_schema_file]
        if args.cyber_access_program:
            command += ["--cyber-access-program", args.cyber_access_program]
        if args.model_reasoning_effort:
            command += [
                "--config",
                f"model_reasoning_effort={_quoted(args.model_reasoning_effort)}",
            ]
        if args.network_access_enabled is not None:
            enabled = "true" if args.network_access_enabled else "false"
            command += ["--config", f"sandbox_workspace_write.network_access={enabled}"]
        if args.web_search_mode:
            command += ["--config", f"web_search={_quoted(args.web_search_mode)}"]
        elif args.web_search_enabled is not None:
            mode = "live" if args.web_search_enabled else "disabled"
            command += ["--config", f"web_search={_quoted(mode)}"]
        if args.approval_policy:
            command += ["--config", f"approval_policy={_quoted(args.approval_policy)}"]
        if args.thread_id:
            command += ["resume", args.thread_id]
        # After `resume`: `--image` takes several values and would swallow `resume <id>`.
        for image in args.images:
            command += ["--image", image]
        return command

    def build_env(self, args: ExecArgs, path_dirs: Sequence[str] = ()) -> dict[str, str]:
        """The given environment (or a copy of ours) with the SDK's variables on top."""
        env = dict(self._env) if self._env is not None else dict(os.environ)
        if not env.get(ORIGINATOR_ENV):
            env[ORIGINATOR_ENV] = PYTHON_SDK_ORIGINATOR
        if args.api_key:
            env["CODEX_API_KEY"] = args.api_key
        if path_dirs:
            current = env.get("PATH", "")
            env["PATH"] = os.pathsep.join([*path_dirs, *([current] if current else [])])
        return env

    async def run(
        self,
        args: ExecArgs,
        *,
        cancel_event: Any = None,
        watchdog: Watchdog | None = None,
    ) -> AsyncGenerator[bytes | bytearray, None]:
        """Start codex and yield its stdout lines (without the newline), of any length.

        Raises :class:`CodexExecError` after the last line if codex exited unsuccessfully,
        :class:`TurnCancelledError` if ``cancel_event`` (an ``asyncio.Event``) was set, and
        :class:`CodexIdleTimeoutError` if the ``watchdog`` expired.
        """
        if cancel_event is not None and cancel_event.is_set():
            raise TurnCancelledError("The turn was cancelled before it started")
        binary = self.binary
        command = [binary.path, *self.build_args(args)]
        env = self.build_env(args, binary.path_dirs)
        with tempfile.TemporaryFile() as stderr:
            run_id = env[MARKER_ENV] = f"{os.getpid()}-{uuid.uuid4().hex}"
            run = orphans.begin()
            try:
                process = await spawn(command, env, stderr)
            except BaseException as exc:
                orphans.discard(run)  # No codex, so nothing of this run to stop.
                if isinstance(exc, CodexNotFoundError):
                    self._binary = None  # Look again next time: codex may be reinstalled.
                raise
            tree = ProcessTree(process.pid, f"{MARKER_ENV}={run_id}", run)
            watcher = _watch_cancel(cancel_event, tree) if cancel_event is not None else None
            try:
                await _send_prompt(process, args.input)
                assert process.stdout is not None
                async for line in read_lines(process.stdout, watchdog):
                    yield line
                returncode = await process.wait()
                if tree.cancelled:
                    raise TurnCancelledError("The turn was cancelled")
                if returncode != 0:
                    raise CodexExecError(
                        returncode if returncode > 0 else None,
                        -returncode if returncode < 0 else None,
                        _tail(stderr),
                    )
            finally:
                if watcher is not None:
                    watcher.cancel()
                with anyio.CancelScope(shield=True):
                    await tree.stop(process)


def _quoted(value: str) -> str:
    # TOML basic strings accept JSON string escapes, as the TypeScript SDK relies on.
    return json.dumps(str(value))


async def _send_prompt(process: Process, prompt: str) -> None:
    assert process.stdin is not None
    try:
        await process.stdin.send(prompt.encode())
        await process.stdin.aclose()
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, BrokenPipeError):
        # Codex died before reading its prompt; its exit code and stderr will say why.
        pass


def _tail(stderr: IO[bytes]) -> str:
    size = stderr.seek(0, os.SEEK_END)
    stderr.seek(max(0, size - 4 * _STDERR_TAIL))
    text = stderr.read().decode("utf-8", "replace")
    # A Rust backtrace of `<unknown>` frames would push the actual error out of the tail.
    text = text.split(_BACKTRACE, 1)[0]
    lines = [line for line in text.splitlines() if line.strip() and line.strip() != _STDIN_NOTICE]
    # Codex prints warnings that have nothing to do with its failure (it could not create
    # PATH aliases, say) before the error itself: the cause goes first, the warnings after.
    warnings = [line for line in lines if line.lstrip().startswith(_WARNING)]
    cause = "\n".join(line for line in lines if not line.lstrip().startswith(_WARNING))
    cause = cause[-_STDERR_TAIL:].strip()
    return "\n".join([cause, *warnings] if cause else warnings)[:_STDERR_TAIL].strip()


def _watch_cancel(event: Any, tree: ProcessTree) -> asyncio.Future[Any]:
    # One waiter for the whole run instead of racing every read against the event: setting
    # the event terminates codex, which closes its stdout and ends the read loop.
    waiter: asyncio.Future[Any] = asyncio.ensure_future(event.wait())

    def on_set(future: asyncio.Future[Any]) -> None:
        if not future.cancelled():
            tree.cancel()

    waiter.add_done_callback(on_set)
    return waiter
