"""What the benchmarks share: statistics, the machine's description, the scripted-model setup,
the fake codex, the MCP server under test, and process measurement through ``/proc``.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import stat
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.stdio import get_default_environment

from codex_mcp_server.testing import ScriptedModel, codex_env, make_codex_home, replies

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
PROMPT = "Say hi."
REPLY = "Hi!"
CHUNK = 256 * 1024  # the SDK's read size (processes.CHUNK)
MIB = 1024 * 1024

# The variable the SDK marks codex's environment with (processes.MARKER_ENV), with the value
# "<pid of the process running the SDK>-<uuid>", so that it can find and stop what codex
# leaves running. Direct codex runs carry it too, with a value of their own.
MARKER_ENV = "CODEX_SDK_PY_RUN"
# Marks the environment of the MCP servers the benchmarks start, to find their pid.
SERVER_MARKER_ENV = "CODEX_MCP_BENCH_SERVER"


@dataclass(frozen=True)
class Settings:
    """Sizes of every benchmark, for a full or a quick run."""

    quick: bool
    events: int  # SDK cost per event: events in the stream
    render_events: int  # parse/render: events in the stream
    repeats: int  # SDK cost per event, parse/render: timed runs per case
    warmup: int  # turn overhead: warm-up rounds
    rounds: int  # turn overhead: timed rounds of (direct, SDK, MCP)
    warm_rounds: int  # warm turns: timed rounds (a round costs a third of a second)
    path_seconds: float  # event path: seconds of events at each rate below
    path_rates: tuple[float, ...]  # event path: events per second (the first has the target)
    cold_runs: int  # cold start: timed rounds
    levels: tuple[int, ...]  # concurrency: simultaneous threads
    level_rounds: int  # concurrency: rounds over the levels
    big_line: int  # big line: bytes of aggregated_output

    @classmethod
    def for_mode(cls, quick: bool, **overrides: Any) -> Settings:
        values: dict[str, Any] = dict(
            quick=quick,
            events=50_000 if quick else 200_000,
            render_events=50_000 if quick else 100_000,
            repeats=2 if quick else 5,
            warmup=1 if quick else 2,
            rounds=5 if quick else 15,
            warm_rounds=15 if quick else 60,
            path_seconds=3.0 if quick else 10.0,
            path_rates=(1000.0, 100.0),
            cold_runs=3 if quick else 7,
            levels=(1, 4, 16, 32),
            level_rounds=1 if quick else 2,
            big_line=50_000_000,
        )
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)


# ------------------------------------------------------------------------ statistics


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear interpolation between closest ranks (numpy's default method)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(seconds: Sequence[float], *, samples: bool = True) -> dict[str, Any]:
    """Median, p90, p99, min, max and mean of ``seconds``, in milliseconds."""
    ms = [s * 1000 for s in seconds]
    summary: dict[str, Any] = {
        "n": len(ms),
        "median_ms": round(percentile(ms, 50), 3),
        "p90_ms": round(percentile(ms, 90), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "min_ms": round(min(ms), 3),
        "max_ms": round(max(ms), 3),
        "mean_ms": round(sum(ms) / len(ms), 3),
    }
    if samples:
        summary["samples_ms"] = [round(v, 2) for v in ms]
    return summary


@dataclass
class Row:
    """One line of the results table: a figure, and its target when there is one."""

    benchmark: str
    measure: str
    value: str
    target: str = ""
    met: bool | None = None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "measure": self.measure,
            "value": self.value,
            "target": self.target,
            "met": self.met,
            "note": self.note,
        }


def versus(value: float, target: float, *, at_most: bool) -> tuple[bool, str]:
    """Whether ``value`` meets ``target`` and by how much it misses or beats it, in %."""
    met = value <= target if at_most else value >= target
    change = (value - target) / target * 100
    return met, f"{change:+.0f}% vs target"


# ------------------------------------------------------------------- machine info


def codex_binary() -> str:
    import codex_cli_bin  # type: ignore[import-not-found,unused-ignore]

    return str(codex_cli_bin.bundled_codex_path())


def _run_text(command: Sequence[str]) -> str | None:
    try:
        return subprocess.run(
            command, capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def _dist(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return None


def _mem_total_mib() -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return None


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def machine_info(codex: str) -> dict[str, Any]:
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(affinity) if affinity is not None else None,
        "memory_mib": _mem_total_mib(),
        "shared": "a shared 2-core VM: other jobs ran during the measurements",
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "python_executable": sys.executable,
        "codex_version": _run_text([codex, "--version"]) or "unknown",
        "codex_path": codex,
        "versions": {name: _dist(name) for name in ("anyio", "mcp", "pydantic", "pydantic-core")},
        "git_commit": _run_text(["git", "-C", str(BENCH_DIR), "rev-parse", "--short", "HEAD"]),
        "git_dirty": bool(_run_text(["git", "-C", str(BENCH_DIR), "status", "--porcelain"])),
        "load_average_at_start": load_average(),
    }


# --------------------------------------------------------- scripted model and codex


@dataclass
class Scripted:
    """A scripted model, an isolated ``CODEX_HOME`` pointing at it, and a project."""

    model: ScriptedModel
    home: Path
    env: dict[str, str]
    project: Path


def make_project(path: Path) -> Path:
    """An empty git repository, so that codex looks at nothing else."""
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    return path


@contextlib.contextmanager
def scripted_codex(work: Path, name: str) -> Iterator[Scripted]:
    """The scripted model answering every request with :data:`REPLY` unless told otherwise."""
    with ScriptedModel() as model:
        model.respond_with(lambda request: replies.message(REPLY))
        home = make_codex_home(work / f"{name}-home", model.url)
        yield Scripted(model, home, codex_env(home), make_project(work / f"{name}-project"))


def write_fake_codex(directory: Path) -> Path:
    """An executable copy of ``fake_codex.py`` in ``directory`` (python -S: fast start)."""
    fake = directory / "fake-codex"
    source = (BENCH_DIR / "fake_codex.py").read_text()
    fake.write_text(f"#!{sys.executable} -S\n{source}")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return fake


def fake_orders(mode: str, **orders: Any) -> str:
    """The prompt that tells the fake codex what to write."""
    return json.dumps({"mode": mode, **orders})


# ------------------------------------------------------------ process measurement


def proc_status(pid: int) -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` of one process (not its children), in bytes, and ``peak``.

    The kernel updates ``VmHWM`` lazily (when the RSS is about to shrink), so it can lag
    behind the current ``VmRSS``: ``peak`` is the larger of the two.
    """
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024
    values["peak"] = max(values["VmRSS"], values["VmHWM"])
    return values


def children_rss(pid: int) -> int:
    """``VmRSS`` of every descendant of ``pid`` (the app-server and what it runs), in bytes."""
    total = 0
    pending = [pid]
    while pending:
        parent = pending.pop()
        for child in _pids():
            if parent_pid(child) == parent:
                pending.append(child)
                with contextlib.suppress(OSError, KeyError):
                    total += proc_status(child)["VmRSS"]
    return total


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of one process so far, its children excluded."""
    fields = _read(f"/proc/{pid}/stat").rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pids() -> list[int]:
    try:
        return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]
    except OSError:
        return []


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError:  # gone, or not ours
        return b""


def parent_pid(pid: int) -> int | None:
    stat_line = _read(f"/proc/{pid}/stat")
    if not stat_line:
        return None
    # The command name may hold spaces and parentheses: the fields follow the last ")".
    return int(stat_line.rsplit(b")", 1)[1].split()[1])


def marked_processes(marker: bytes) -> list[int]:
    """Processes whose environment contains ``marker`` (Linux; none elsewhere)."""
    return [pid for pid in _pids() if marker in _read(f"/proc/{pid}/environ")]


def child_with_env(marker: bytes) -> int:
    """The child of this process whose environment contains ``marker``."""
    for pid in marked_processes(marker):
        if parent_pid(pid) == os.getpid():
            return pid
    raise LookupError(f"no child process with {marker!r} in its environment")


async def stop_leftovers(marker: bytes) -> int:
    """Stop the processes marked with ``marker`` (what a codex run left running).

    SIGTERM first so that shells run their exit traps, SIGKILL after 2 s. Returns how many
    processes were found. Only markers of runs this benchmark started are passed here.
    """
    found = marked_processes(marker)
    for pid in found:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    left = found
    for _ in range(40):  # up to 2 s
        left = marked_processes(marker)
        if not left:
            break
        await anyio.sleep(0.05)
    for pid in left:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return len(found)


@dataclass
class RssSampler:
    """The highest ``VmRSS`` of a process, sampled every ``interval`` seconds."""

    pid: int
    interval: float = 0.01
    peak: int = 0
    samples: int = 0

    def sample(self) -> None:
        with contextlib.suppress(OSError, KeyError):
            self.peak = max(self.peak, proc_status(self.pid)["VmRSS"])
            self.samples += 1

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[RssSampler]:
        async def loop() -> None:
            while True:
                self.sample()
                await anyio.sleep(self.interval)

        async with anyio.create_task_group() as group:
            group.start_soon(loop)
            try:
                yield self
            finally:
                group.cancel_scope.cancel()
        self.sample()


# ---------------------------------------------------------- the MCP server under test


def server_command(*flags: str) -> list[str]:
    return [sys.executable, "-m", "codex_mcp_server", "--log-level", "WARNING", *flags]


def server_environment(env: dict[str, str]) -> dict[str, str]:
    """The environment the stdio client gives the server for ``env`` (and so codex's base)."""
    return get_default_environment() | env


@dataclass
class McpServer:
    """A ``codex-mcp-server`` over stdio, the client connected to it and its pid."""

    client: Client
    pid: int
    env: dict[str, str]
    leftovers: int = 0
    statuses: list[dict[str, int]] = field(default_factory=list)

    def status(self) -> dict[str, int]:
        return proc_status(self.pid)

    def cpu(self) -> float:
        return proc_cpu(self.pid)

    async def call(
        self, tool: str, arguments: dict[str, Any], progress: Any = None
    ) -> dict[str, Any]:
        """Call ``tool``; its structured content, or an exception naming the error."""
        result = await self.client.call_tool(tool, arguments, progress_callback=progress)
        text = " ".join(getattr(part, "text", "") for part in result.content)
        if result.is_error or not result.structured_content:
            raise RuntimeError(f"{tool} failed: {text[:500]}")
        return dict(result.structured_content)

    async def stop_leftovers(self) -> int:
        """Stop what the server's codex runs left running (by the SDK's marker)."""
        found = await stop_leftovers(f"{MARKER_ENV}={self.pid}-".encode())
        self.leftovers += found
        return found


@contextlib.asynccontextmanager
async def mcp_server(
    flags: Sequence[str], env: dict[str, str], command: Sequence[str] | None = None
) -> AsyncIterator[McpServer]:
    """Start the server over stdio (``mcp.Client``, initialize handshake) and find its pid.

    ``command`` replaces ``python -m codex_mcp_server`` (the flags follow it).
    """
    marker = uuid.uuid4().hex
    command = [*command, *flags] if command else server_command(*flags)
    server_env = {**env, SERVER_MARKER_ENV: marker}
    params = StdioServerParameters(command=command[0], args=command[1:], env=server_env)
    async with Client(params, mode="legacy") as client:
        pid = child_with_env(f"{SERVER_MARKER_ENV}={marker}".encode())
        yield McpServer(client, pid, server_environment(server_env))
