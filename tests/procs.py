"""Finding codex processes in /proc, to prove none is left behind."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path


def codex_processes(home: Path) -> list[int]:
    """Pids of live processes started with ``CODEX_HOME=home`` (codex and its children)."""
    needle = f"CODEX_HOME={home}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path("/proc", entry, "environ").read_bytes()
            state = Path("/proc", entry, "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and needle in environ.split(b"\0"):
            found.append(int(entry))
    return found


def wait_until_gone(
    home: Path, timeout: float = 1.0, find: Callable[[Path], list[int]] | None = None
) -> list[int]:
    """Wait up to ``timeout`` for every codex process of ``home`` to end; return the rest."""
    find = find or codex_processes
    deadline = time.monotonic() + timeout
    while (left := find(home)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left


def describe(pids: list[int]) -> str:
    import subprocess

    if not pids:
        return ""
    ps = ["ps", "-o", "pid,ppid,pgid,sid,stat,etime,args", "-p", ",".join(map(str, pids))]
    return subprocess.run(ps, capture_output=True, text=True).stdout


def codex_only(home: Path) -> list[int]:
    """Codex processes of ``home``, leaving out a server subprocess, which shares the home."""
    left = []
    for pid in codex_processes(home):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"codex_mcp_server" not in cmdline:
            left.append(pid)
    return left


def turn_processes(home: Path) -> list[int]:
    """What a turn left running: :func:`codex_only`, less the ``codex app-server`` that the
    app-server engine keeps for as long as the server runs."""
    left = []
    for pid in codex_only(home):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"app-server" not in cmdline:
            left.append(pid)
    return left
