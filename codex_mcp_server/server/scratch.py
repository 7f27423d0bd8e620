"""The server's private directory for files codex reads (instructions, schemas).

Each server makes its own ``scratch-*`` directory under ``$CODEX_HOME/codex-mcp-server`` and
removes it when it stops. A server that is killed (SIGKILL, a crash, the machine going down)
cannot, so each one also holds a lock on a ``scratch-*.lock`` file beside its directory for
as long as it lives: the kernel lets go of the lock when the process ends, however it ends,
and the next server to make its directory removes every directory whose lock nobody holds.
A lock, not a pid: servers in other PID namespaces (containers sharing the home) see each
other's pids as dead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no sweeping of stale directories
    fcntl = None  # type: ignore[assignment]

__all__ = ["Scratch"]

_LOCK_SUFFIX = ".lock"


class Scratch:
    """One server's directory under ``parent``, made 0700 (and ``parent`` with it)."""

    def __init__(self, parent: Path) -> None:
        parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _sweep(parent)
        self.path = Path(tempfile.mkdtemp(prefix="scratch-", dir=parent))
        self._lock_fd = _hold_lock(self.path)

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(_lock_path(self.path))
            os.close(self._lock_fd)
            self._lock_fd = None


def _lock_path(directory: Path) -> Path:
    return directory.with_name(directory.name + _LOCK_SUFFIX)


def _hold_lock(directory: Path) -> int | None:
    if fcntl is None:
        return None
    # Locked under a name no sweeper looks at, then renamed: a sweeper never finds the lock
    # file of a live server unlocked.
    fd, temporary = tempfile.mkstemp(prefix=".lock-", dir=directory.parent)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.replace(temporary, _lock_path(directory))
    except OSError:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        return None  # No lock (a file system without them): the directory is not swept.
    return fd


def _sweep(parent: Path) -> None:
    """Remove the directories (and lock files) of servers that are gone."""
    if fcntl is None:
        return
    for lock in parent.glob(f"scratch-*{_LOCK_SUFFIX}"):
        try:
            fd = os.open(lock, os.O_RDWR)
        except OSError:
            continue  # Removed meanwhile by its server or another sweeper.
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # Held: its server lives.
            shutil.rmtree(lock.with_name(lock.name[: -len(_LOCK_SUFFIX)]), ignore_errors=True)
            with contextlib.suppress(OSError):
                os.unlink(lock)
        finally:
            os.close(fd)
