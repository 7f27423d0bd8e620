"""Spawning ``codex exec --experimental-json`` and reading its JSONL output.

:class:`CodexExec` builds the command line exactly as the TypeScript SDK does (its order
matters: thread options come after global ``--config`` flags so they win, and ``resume``
comes before ``--image``), starts codex in its own process group, writes the prompt to its
stdin and yields its stdout line by line. Whatever ends the run (exhaustion, an error, the
caller's cancellation, an abandoned generator), the whole process group is stopped and reaped.

A process that calls :func:`adopt_orphans` (the MCP server does) also stops, at the end of
each run, the processes a run's commands left behind outside codex's process group and
without its environment (``env -i setsid cmd &``): on Linux they are reparented to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import json
import os
import signal
import tempfile
import time
import uuid
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from subprocess import PIPE
from typing import IO, Any

import anyio
from anyio.abc import ByteReceiveStream, Process

from .errors import (
    CodexError,
    CodexExecError,
    CodexIdleTimeoutError,
    CodexNotFoundError,
    TurnCancelledError,
)
from .locate import INSTALL_HINT, CodexBinary, find_codex

__all__ = ["CodexExec", "ExecArgs", "Watchdog", "adopt_orphans"]

ORIGINATOR_ENV = "CODEX_INTERNAL_ORIGINATOR_OVERRIDE"
PYTHON_SDK_ORIGINATOR = "codex_sdk_py"

_CHUNK = 256 * 1024
_TERM_GRACE = 0.5
_STDERR_TAIL = 2000
_STDIN_NOTICE = "Reading prompt from stdin..."
_BACKTRACE = "Stack backtrace:"
_WARNING = "WARNING:"
_MARKER_ENV = "CODEX_SDK_PY_RUN"
_KILL_ROUNDS = 5


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
            return await stream.receive(_CHUNK)
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
            run_id = env[_MARKER_ENV] = f"{os.getpid()}-{uuid.uuid4().hex}"
            orphans = _orphans.begin()
            try:
                process = await _spawn(command, env, stderr)
            except BaseException as exc:
                _orphans.discard(orphans)  # No codex, so nothing of this run to stop.
                if isinstance(exc, CodexNotFoundError):
                    self._binary = None  # Look again next time: codex may be reinstalled.
                raise
            tree = _ProcessTree(process.pid, f"{_MARKER_ENV}={run_id}", orphans)
            watcher = _watch_cancel(cancel_event, tree) if cancel_event is not None else None
            try:
                await _send_prompt(process, args.input)
                assert process.stdout is not None
                async for line in _read_lines(process.stdout, watchdog):
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


async def _spawn(command: list[str], env: dict[str, str], stderr: IO[bytes] | int) -> Process:
    try:
        return await anyio.open_process(
            command, stdin=PIPE, stdout=PIPE, stderr=stderr, env=env, start_new_session=True
        )
    except (FileNotFoundError, PermissionError) as exc:
        raise CodexNotFoundError(
            f"Could not start codex at {command[0]}: {exc.strerror}. {INSTALL_HINT}"
        ) from exc
    except OSError as exc:
        if exc.errno == errno.E2BIG:
            raise CodexError(
                "Could not start codex: its arguments are too long for the system "
                "(a config value or instructions of more than about 128 KiB?)"
            ) from exc
        raise CodexError(f"Could not start codex: {exc}") from exc
    except ValueError as exc:  # An argument with a NUL byte.
        raise CodexError(f"Could not start codex: an argument must be free of NUL: {exc}") from exc


async def _send_prompt(process: Process, prompt: str) -> None:
    assert process.stdin is not None
    try:
        await process.stdin.send(prompt.encode())
        await process.stdin.aclose()
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, BrokenPipeError):
        # Codex died before reading its prompt; its exit code and stderr will say why.
        pass


async def _read_lines(
    stream: ByteReceiveStream, watchdog: Watchdog | None
) -> AsyncGenerator[bytes | bytearray, None]:
    # Chunked reads, not readline(): a line may be megabytes (a command's whole output), and
    # we search each chunk once so a long line costs linear time and about its own size.
    pending = bytearray()
    while True:
        try:
            chunk = await (watchdog.receive(stream) if watchdog else stream.receive(_CHUNK))
        except anyio.EndOfStream:
            break
        start = 0
        while (newline := chunk.find(b"\n", start)) >= 0:
            line: bytes | bytearray
            if pending:
                pending += chunk[start:newline]
                line, pending = pending, bytearray()
            else:
                line = chunk[start:newline]
            start = newline + 1
            if line and not line.isspace():
                yield line
        pending += chunk[start:]
    if pending and not pending.isspace():
        yield pending


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


class _ProcessTree:
    """Stops codex and everything it started.

    Codex leads its own process group (we start it in a new session), so one ``killpg``
    reaches its commands. Some of its helpers start sessions of their own (the login shell
    that snapshots the user's environment), and their background jobs can outlive them as
    orphans; all of them inherit a marker variable from codex's environment, by which
    ``/proc`` finds them. What drops the marker too is left to :func:`adopt_orphans`.
    """

    def __init__(self, pgid: int, marker: str, orphans: object | None = None) -> None:
        self.pgid = pgid
        self.marker = marker.encode()
        self.orphans = orphans
        self.cancelled = False
        self._escalation: asyncio.TimerHandle | None = None

    def cancel(self) -> None:
        """Stop codex from outside the reading task: TERM now, KILL if it lingers."""
        self.cancelled = True
        self.signal(signal.SIGTERM)
        loop = asyncio.get_running_loop()
        self._escalation = loop.call_later(_TERM_GRACE, self.signal, signal.SIGKILL)

    def signal(self, sig: int) -> int:
        """Signal the group and every marked process; return how many were marked."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pgid, sig)
        marked = _marked_processes(self.marker)
        for pid in marked:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        return len(marked)

    async def stop(self, process: Process) -> None:
        if self._escalation is not None:
            self._escalation.cancel()
        if process.returncode != 0 or self.cancelled:
            # Stopped early, or codex died (a crash or a kill leaves its commands orphaned,
            # and only bubblewrap's PID namespace, where the machine allows one, would end
            # them): TERM first so shells can clean up, then KILL whatever is left, until
            # none is (a process may fork between the scan and its signal).
            self.signal(signal.SIGTERM)
            with anyio.move_on_after(_TERM_GRACE):
                await process.wait()
            for _ in range(_KILL_ROUNDS):
                if not self.signal(signal.SIGKILL):
                    break
        else:
            # Codex ended well: ask what it left in its own group to end too. Helpers in
            # sessions of their own (a login shell's background jobs) are left to finish,
            # unless orphaned in a subreaper (see adopt_orphans).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pgid, signal.SIGTERM)
        await process.wait()
        await process.aclose()
        await _orphans.end(self.orphans)


def adopt_orphans() -> bool:
    """Make this process the child subreaper of the codex runs it starts (Linux only).

    A command can leave its process group and codex's environment (``env -i setsid cmd &``),
    so that neither the group signal nor the environment marker reaches it; once its parent
    exits it is reparented to the nearest subreaper. Being that subreaper, this process finds
    such orphans among its own children when a run ends, stops them and reaps them.

    Meant for a process whose children are its codex runs (the MCP server): a child of its
    own session is never touched, but one it started in a new session of its own during a
    run would be taken for an orphan of that run. Returns whether it is now a subreaper.
    """
    if not os.path.exists(f"/proc/self/task/{os.getpid()}/children"):
        return False  # Without it orphans could not be found, and would never be reaped.
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    _orphans.enabled = True
    return True


class _Orphans:
    """The runs that may own an orphan, and the stopping of orphans when a run ends.

    An orphan no longer says which run it came from: its parent, group and environment may
    all be gone. What it keeps is its start time, and a run's descendants all start after
    its codex did. So when a run ends, an orphan that started after it began belongs to it,
    unless another run that is still going had begun by then; such an orphan could be that
    run's, so it is left until the last run that could own it ends (at the latest when the
    server stops its last turn). This never stops what a running turn may still need, and
    stops everything once no run could need it; the price is that an escapee of a turn that
    overlapped another lives until both have ended. Recording descendants while a run goes
    would be sharper but would cost a /proc scan on the event path and still miss a process
    that escapes between scans; this costs a read of our children list per run, and nothing
    while no orphan exists.
    """

    def __init__(self) -> None:
        self.enabled = False
        # When each run still going began, in clock ticks since boot.
        self._running: dict[object, int] = {}

    def begin(self) -> object | None:
        """Note a run about to start codex; pass what this returns to :meth:`end`."""
        if not self.enabled:
            return None
        run = object()
        # Taken before codex is spawned, so that codex itself, and whatever it starts, is
        # seen as this run's while it runs, even by a run that ends meanwhile.
        self._running[run] = _now_ticks()
        return run

    def discard(self, run: object | None) -> None:
        self._running.pop(run, None)

    async def end(self, run: object | None) -> None:
        """Stop and reap the orphans ``run`` left, once its codex process is reaped."""
        start = self._running.pop(run, None)
        if start is None:
            return
        for _ in range(_KILL_ROUNDS):
            # Stopping an orphan reparents its own children to us: look again until no
            # orphan of this run is left.
            strays = self._strays(start)
            if not strays:
                return
            for sig in (signal.SIGTERM, signal.SIGKILL):
                for pid in strays:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, sig)
                with anyio.move_on_after(_TERM_GRACE):
                    while True:
                        strays = [pid for pid in strays if not _reap(pid)]
                        if not strays:
                            break
                        await anyio.sleep(_REAP_POLL)
                if not strays:
                    break

    def _strays(self, start: int) -> list[int]:
        """Live orphans of the run that began at ``start``; reaps its dead ones."""
        session = os.getsid(0)
        strays = []
        for pid in _children():
            began = _start_ticks(pid)
            if began is None or began < start:
                continue
            if any(other <= began for other in self._running.values()):
                continue  # A run still going may own it (or it is that run's codex).
            try:
                if os.getsid(pid) == session:
                    continue  # Codex runs in a session of its own: this is not from a run.
            except OSError:
                continue
            if not _reap(pid):
                strays.append(pid)
        return strays


_orphans = _Orphans()
_PR_SET_CHILD_SUBREAPER = 36
_REAP_POLL = 0.02


def _now_ticks() -> int:
    # The clock of a process's start time in /proc/<pid>/stat (boot time, in ticks).
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * os.sysconf("SC_CLK_TCK"))


def _children() -> set[int]:
    """Pids of this process's children (every thread's, since a reparented orphan may be
    given to any of them)."""
    found: set[int] = set()
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/children", "rb") as children:
                found.update(int(pid) for pid in children.read().split())
        except OSError:
            continue
    return found


def _start_ticks(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot; ``None`` if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[19])  # Field 22 of stat(5); two come before the command's ")".


def _reap(pid: int) -> bool:
    """Reap ``pid`` if it has ended; whether it is gone. Only for orphans: never a codex
    process, whose exit status asyncio waits for."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True  # Not our child (any more).
    return done == pid


def _marked_processes(marker: bytes) -> list[int]:
    """Live processes (of ours) whose environment holds ``marker``; none when not on Linux."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    found = []
    for entry in entries:
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/environ", "rb") as environ:
                    if marker in environ.read():
                        found.append(int(entry))
            except OSError:  # Gone, or not ours to read (and so not ours to kill).
                continue
    return found


def _watch_cancel(event: Any, tree: _ProcessTree) -> asyncio.Future[Any]:
    # One waiter for the whole run instead of racing every read against the event: setting
    # the event terminates codex, which closes its stdout and ends the read loop.
    waiter: asyncio.Future[Any] = asyncio.ensure_future(event.wait())

    def on_set(future: asyncio.Future[Any]) -> None:
        if not future.cancelled():
            tree.cancel()

    waiter.add_done_callback(on_set)
    return waiter
