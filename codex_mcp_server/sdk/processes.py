"""Codex's processes, whichever engine runs codex: starting one in a session of its own,
reading its output line by line, stopping it with everything it started, and the orphans
its commands can leave behind (see :func:`adopt_orphans`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import os
import signal
import time
from collections.abc import AsyncGenerator
from subprocess import PIPE
from typing import IO, Protocol

import anyio
from anyio.abc import ByteReceiveStream, Process

from .errors import CodexError, CodexNotFoundError
from .locate import INSTALL_HINT

__all__ = [
    "CHUNK",
    "MARKER_ENV",
    "ProcessTree",
    "Receiver",
    "adopt_orphans",
    "orphans",
    "read_lines",
    "spawn",
]

CHUNK = 256 * 1024
"""Bytes asked of codex's stdout per read."""
MARKER_ENV = "CODEX_SDK_PY_RUN"
"""The variable marking codex's environment (and its descendants'), to find them in /proc."""
_TERM_GRACE = 0.5  # seconds from SIGTERM to SIGKILL
_KILL_ROUNDS = 5


class Receiver(Protocol):
    """What reads codex's stdout for :func:`read_lines` when plain reads will not do (exec's
    idle-timeout watchdog)."""

    async def receive(self, stream: ByteReceiveStream) -> bytes: ...


async def spawn(command: list[str], env: dict[str, str], stderr: IO[bytes] | int) -> Process:
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


async def read_lines(
    stream: ByteReceiveStream, receiver: Receiver | None = None
) -> AsyncGenerator[bytes | bytearray, None]:
    # Chunked reads, not readline(): a line may be megabytes (a command's whole output), and
    # we search each chunk once so a long line costs linear time and about its own size.
    pending = bytearray()
    while True:
        try:
            chunk = await (receiver.receive(stream) if receiver else stream.receive(CHUNK))
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


class ProcessTree:
    """Stops codex and everything it started.

    Codex leads its own process group (we start it in a new session), so one ``killpg``
    reaches its commands. Some of its helpers start sessions of their own (the login shell
    that snapshots the user's environment), and their background jobs can outlive them as
    orphans; all of them inherit a marker variable from codex's environment, by which
    ``/proc`` finds them. What drops the marker too is left to :func:`adopt_orphans`.
    """

    def __init__(self, pgid: int, marker: str, run: object | None = None) -> None:
        self.pgid = pgid
        self.marker = marker.encode()
        self.run = run  # What orphans.begin() gave for this run, if anything.
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
        await orphans.end(self.run)


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
    orphans.enabled = True
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


orphans = _Orphans()
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
