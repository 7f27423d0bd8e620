"""Faults for the reliability tests: a misbehaving codex, and probes for what a run leaks.

:func:`faulty_codex` writes a stand-in codex binary that follows a plan, one entry per
call: run the real codex (:data:`REAL`), relay the real codex's output with a bad line put
in (:func:`relay`), or print something and exit or hang (:func:`act`). Calls beyond the
plan run the real codex, so a thread can be made to exist first and used again after.
"""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import codex_cli_bin

from .procs import codex_processes

__all__ = [
    "REAL",
    "FaultyCodex",
    "act",
    "codex_runners",
    "fault_rounds",
    "faulty_codex",
    "open_fds",
    "relay",
    "schema_dirs",
    "seeded",
    "thread_started",
    "turn_started",
    "until",
    "wait_for",
]

REAL: dict[str, Any] = {"real": True}
"""A plan entry: this call runs the real codex binary."""

FAKE_THREAD_ID = "00000000-0000-7000-8000-00000000fa11"
"""The thread a fake names when it is not resuming one."""


def act(stdout: str = "", *, stderr: str = "", code: int = 0, hang: bool = False) -> dict[str, Any]:
    """A plan entry: print ``stdout`` (``{thread_id}`` is the thread resumed, if any) and
    ``stderr``, then exit with ``code``, or stay alive and silent with ``hang``."""
    return {"stdout": stdout, "stderr": stderr, "code": code, "hang": hang}


def relay(inject: str, *, after: str, kill: bool = False) -> dict[str, Any]:
    """A plan entry: run the real codex and pass its output on, writing ``inject`` (raw,
    newline included or not) right after its first event of type ``after``, then exit 0.

    With ``kill``, the real codex is SIGKILLed the moment that event is passed on, before
    it can do anything more (such as save the thread)."""
    return {"relay": True, "inject": inject, "after": after, "kill": kill}


_SCRIPT = r"""
import json, os, subprocess, sys, time

here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "plan.json")) as file:
    plan = json.load(file)
if sys.argv[1:] == ["--version"]:  # The server asks at start; not a run of the plan.
    os.execv(plan["codex"], [plan["codex"], "--version"])
fd = os.open(os.path.join(here, "calls.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
os.write(fd, (json.dumps(sys.argv[1:]) + "\n").encode())
os.close(fd)
with open(os.path.join(here, "calls.log")) as file:
    call = sum(1 for _ in file)
step = plan["calls"][call - 1] if call <= len(plan["calls"]) else {"real": True}
env = dict(os.environ)
if plan["path_dir"]:
    env["PATH"] = plan["path_dir"] + os.pathsep + env.get("PATH", "")
argv = [plan["codex"], *sys.argv[1:]]

if step.get("real"):
    os.execve(argv[0], argv, env)

if step.get("relay"):
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env)
    for line in child.stdout:
        sys.stdout.buffer.write(line)
        sys.stdout.buffer.flush()
        try:
            kind = json.loads(line).get("type")
        except ValueError:
            kind = None
        if kind == step["after"]:
            if step["kill"]:
                child.kill()
            sys.stdout.write(step["inject"])
            sys.stdout.flush()
            break
    sys.exit(0)

args = sys.argv[1:]
thread_id = args[args.index("resume") + 1] if "resume" in args else plan["fake_thread_id"]
sys.stdout.write(step["stdout"].replace("{thread_id}", thread_id))
sys.stdout.flush()
sys.stderr.write(step["stderr"])
sys.stderr.flush()
if step["hang"]:
    while True:
        time.sleep(60)
sys.exit(step["code"])
"""


@dataclass(frozen=True)
class FaultyCodex:
    """A stand-in codex binary and the record of its calls."""

    path: Path

    @property
    def calls(self) -> list[list[str]]:
        """The arguments of every call so far, in order."""
        log = self.path.parent / "calls.log"
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines()]


def faulty_codex(directory: Path, *plan: dict[str, Any]) -> FaultyCodex:
    """A codex binary in ``directory`` that follows ``plan``, one entry per call."""
    directory.mkdir(parents=True, exist_ok=True)
    config = {
        "calls": list(plan),
        "codex": str(codex_cli_bin.bundled_codex_path()),
        "path_dir": str(codex_cli_bin.bundled_path_dir() or ""),
        "fake_thread_id": FAKE_THREAD_ID,
    }
    (directory / "plan.json").write_text(json.dumps(config))
    script = directory / "codex"
    script.write_text(f"#!{sys.executable} -S\n{_SCRIPT}")
    script.chmod(0o755)
    return FaultyCodex(script)


def thread_started(thread_id: str = "{thread_id}") -> str:
    """The JSONL line codex prints first (a fake fills in the thread it resumes)."""
    return json.dumps({"type": "thread.started", "thread_id": thread_id}) + "\n"


def turn_started() -> str:
    """The JSONL line codex prints second."""
    return json.dumps({"type": "turn.started"}) + "\n"


def codex_runners(home: Path) -> list[int]:
    """Pids of the codex processes that run turns (not their commands) of ``home``: each
    ``codex exec``, or the one ``codex app-server``."""
    found = []
    for pid in codex_processes(home):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[0].endswith(b"/codex") and (argv[1:2] == [b"exec"] or b"app-server" in argv):
            found.append(pid)
    return found


# ------------------------------------------------------------------- probes


def schema_dirs(home: Path | None = None) -> set[Path]:
    """The output-schema directories the SDK made and has not removed: in the temporary
    directory, and in the scratch directories of the servers using Codex's ``home``."""
    found = set(Path(tempfile.gettempdir()).glob("codex-output-schema-*"))
    if home is not None:
        found |= set(home.glob("codex-mcp-server/codex-output-schema-*"))
        found |= set(home.glob("codex-mcp-server/scratch-*/codex-output-schema-*"))
    return found


def open_fds() -> int:
    """File descriptors this process holds."""
    return len(os.listdir("/proc/self/fd"))


def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` passes; return its last value."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return condition()
        time.sleep(interval)
    return True


async def until(condition: Callable[[], bool], interval: float = 0.02) -> None:
    """Poll ``condition`` until it holds; the caller's deadline bounds the wait."""
    while True:
        if condition():
            return
        await anyio.sleep(interval)


# --------------------------------------------------------------- randomness


def fault_rounds(default: int = 20) -> int:
    """How many random rounds to run: ``CODEX_MCP_FAULT_ROUNDS``, else ``default``."""
    value = os.environ.get("CODEX_MCP_FAULT_ROUNDS", "").strip()
    return int(value) if value else default


def seeded() -> tuple[int, random.Random]:
    """A seed (``CODEX_MCP_FAULT_SEED``, else a fresh one) and its generator, seed printed
    so that pytest shows it with a failure and the schedule can be replayed."""
    value = os.environ.get("CODEX_MCP_FAULT_SEED", "").strip()
    seed = int(value) if value else random.SystemRandom().randrange(2**32)
    print(f"fault schedule seed: CODEX_MCP_FAULT_SEED={seed}")
    return seed, random.Random(seed)
