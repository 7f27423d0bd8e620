"""Benchmarks of the Python Codex SDK (``codex_mcp_server.sdk``).

Run from the repository root::

    python benchmarks/bench_sdk.py            # full run, about two minutes
    python benchmarks/bench_sdk.py --quick    # smaller stream, fewer turns
    python benchmarks/bench_sdk.py --json out.json

Two benchmarks:

1. **Cost per event.** A realistic ``codex exec --experimental-json`` stream (generated
   here, deterministically) goes through the SDK's own code: the line reader
   (``exec._read_lines``), ``parse_event`` and ``Thread.run``. Once from memory (no
   process: a stand-in for ``CodexExec`` feeds the stream in 256 KiB chunks) and once end
   to end, with a tiny fake ``codex`` executable that writes the whole stream to stdout.
2. **Turn overhead.** A one-message turn against the scripted model: ``Thread.run``
   versus running the same ``codex exec --experimental-json`` command directly.

The results table is printed and written as JSON (default ``benchmarks/results/sdk.json``).
Timings are informative only: no test asserts them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import gc
import json
import os
import platform
import random
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import ByteReceiveStream

from codex_mcp_server.sdk import Codex
from codex_mcp_server.sdk.events import parse_event
from codex_mcp_server.sdk.exec import CodexExec, ExecArgs, Watchdog, _read_lines
from codex_mcp_server.sdk.options import CodexOptions
from codex_mcp_server.sdk.thread import Thread
from codex_mcp_server.testing import ScriptedModel, codex_env, make_codex_home, replies

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_JSON = BENCH_DIR / "results" / "sdk.json"
DEFAULT_SCRATCH = BENCH_DIR / "results" / ".scratch"
CHUNK = 256 * 1024  # the SDK's read size (exec._CHUNK)
PROMPT = "Say hi."
EVENTS_TARGET_PER_S = 100_000
RATIO_TARGET = 1.05


@dataclass(frozen=True)
class Settings:
    quick: bool
    events: int
    repeats: int
    warmup: int
    pairs: int
    json_path: Path
    scratch: Path
    keep_scratch: bool


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


def summary_ms(seconds: Sequence[float]) -> dict[str, Any]:
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "median_ms": round(percentile(ms, 50), 2),
        "p90_ms": round(percentile(ms, 90), 2),
        "min_ms": round(min(ms), 2),
        "max_ms": round(max(ms), 2),
        "mean_ms": round(sum(ms) / len(ms), 2),
        "samples_ms": [round(v, 2) for v in ms],
    }


# ------------------------------------------------------------------- machine info


def codex_binary() -> str:
    import codex_cli_bin  # type: ignore[import-not-found,unused-ignore]

    return str(codex_cli_bin.bundled_codex_path())


def machine_info(codex: str) -> dict[str, Any]:
    try:
        version = subprocess.run(
            [codex, "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        version = f"unknown ({exc})"
    try:
        commit = subprocess.run(
            ["git", "-C", str(BENCH_DIR), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = None
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(affinity) if affinity is not None else None,
        "codex_version": version,
        "codex_path": codex,
        "anyio_version": anyio.__version__ if hasattr(anyio, "__version__") else _dist("anyio"),
        "git_commit": commit,
    }


def _dist(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


# ------------------------------------------------------- a realistic JSONL stream

_COMMANDS = [
    'rg -n "parse_event" codex_mcp_server',
    "ls -la",
    "git status --short",
    "sed -n '1,80p' codex_mcp_server/sdk/thread.py",
    "python -m pytest -q tests/test_events.py",
    "cat pyproject.toml",
    "git diff --stat",
    "find . -name '*.py' -newer setup.cfg",
    "ruff check .",
    "grep -rn 'TODO' src/ | head -20",
]
_OUTPUTS = [
    "",
    "OK\n",
    " M codex_mcp_server/sdk/thread.py\n?? benchmarks/\n",
    "codex_mcp_server/sdk/events.py:203:def parse_event(line: bytes | bytearray | str) -> "
    "ThreadEvent:\ncodex_mcp_server/sdk/thread.py:148:                    event = "
    "parse_event(line)\n",
    "total 48\ndrwxr-xr-x  7 dev dev 4096 Jan  2 10:00 .\ndrwxr-xr-x 12 dev dev 4096 "
    "Jan  2 09:58 ..\n-rw-r--r--  1 dev dev 1843 Jan  2 10:00 pyproject.toml\n"
    "drwxr-xr-x  4 dev dev 4096 Jan  2 10:00 tests\n",
    "........................................                                 [100%]\n"
    "40 passed in 0.81s\n",
    "All checks passed!\n",
    " 3 files changed, 41 insertions(+), 7 deletions(-)\n",
    "src/app.py:12:    # TODO: handle the “résumé” case\tlater\nsrc/db.py:88:    "
    '# TODO: retry on "database is locked"\n',
    'Traceback (most recent call last):\n  File "<stdin>", line 1, in <module>\n'
    "ModuleNotFoundError: No module named 'yaml'\n",
]
_MESSAGES = [
    "I'll look at the failing test first.",
    "The parser keeps unknown fields, so newer CLIs still work.",
    "Running the test suite to confirm the fix.",
    "Found it: the watchdog was reset by warning events. Fixing that now.",
    "Everything passes. Summary:\n\n- fixed the reader\n- added a test for long lines",
]
_REASONING = [
    "**Inspecting the repository**\n\nI need to find where events are parsed.",
    "**Planning the fix**",
    "**Checking test coverage** for the line reader and the idle timeout.",
]


@dataclass
class Stream:
    data: bytes
    lines: list[bytes]
    counts: Counter[str] = field(default_factory=Counter)
    completed_items: int = 0
    final_response: str = ""

    def describe(self) -> dict[str, Any]:
        return {
            "events": len(self.lines),
            "bytes": len(self.data),
            "mean_line_bytes": round(len(self.data) / len(self.lines), 1),
            "event_kinds": dict(sorted(self.counts.items())),
        }


def build_stream(n_events: int, seed: int = 20240601) -> Stream:
    """A ``codex exec --experimental-json`` stream of about ``n_events`` events.

    Shaped like codex 0.163's output for a long agentic turn: mostly shell commands
    (``item.started`` + ``item.completed``), some reasoning and agent messages, a few
    todo-list updates and file changes, framed by thread/turn events. Compact JSON with
    raw UTF-8, as codex writes it.
    """
    rng = random.Random(seed)
    events: list[dict[str, Any]] = [
        {"type": "thread.started", "thread_id": "0199a2b3-c4d5-7e6f-8a9b-0c1d2e3f4a5b"},
        {"type": "turn.started"},
    ]
    next_id = 0

    def item_id() -> str:
        nonlocal next_id
        next_id += 1
        return f"item_{next_id}"

    while len(events) < n_events - 2:
        roll = rng.random()
        if roll < 0.62:
            ident = item_id()
            command = f"/bin/bash -lc {json.dumps(rng.choice(_COMMANDS))}"
            exit_code = 0 if rng.random() < 0.9 else 1
            started = {
                "id": ident,
                "type": "command_execution",
                "command": command,
                "aggregated_output": "",
                "exit_code": None,
                "status": "in_progress",
            }
            completed = dict(
                started,
                aggregated_output=rng.choice(_OUTPUTS),
                exit_code=exit_code,
                status="completed" if exit_code == 0 else "failed",
            )
            events.append({"type": "item.started", "item": started})
            events.append({"type": "item.completed", "item": completed})
        elif roll < 0.80:
            text = rng.choice(_REASONING)
            events.append(
                {
                    "type": "item.completed",
                    "item": {"id": item_id(), "type": "reasoning", "text": text},
                }
            )
        elif roll < 0.92:
            text = rng.choice(_MESSAGES)
            item: dict[str, Any] = {"id": item_id(), "type": "agent_message", "text": text}
            events.append({"type": "item.completed", "item": item})
        elif roll < 0.97:
            todos = [
                {"text": "Reproduce the failure", "completed": True},
                {"text": "Fix the reader", "completed": rng.random() < 0.5},
                {"text": "Add a regression test", "completed": False},
            ]
            item = {"id": item_id(), "type": "todo_list", "items": todos}
            events.append({"type": "item.updated", "item": item})
        else:
            changes = [{"path": "codex_mcp_server/sdk/exec.py", "kind": "update"}]
            item = {
                "id": item_id(),
                "type": "file_change",
                "changes": changes,
                "status": "completed",
            }
            events.append({"type": "item.completed", "item": item})
    final_response = "Done: the reader is fixed and covered by a regression test."
    events.append(
        {
            "type": "item.completed",
            "item": {"id": item_id(), "type": "agent_message", "text": final_response},
        }
    )
    events.append(
        {
            "type": "turn.completed",
            "usage": {
                "input_tokens": 1_234_567,
                "cached_input_tokens": 1_000_000,
                "cache_write_input_tokens": 0,
                "output_tokens": 45_678,
                "reasoning_output_tokens": 12_345,
            },
        }
    )
    lines = [
        json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode() for event in events
    ]
    stream = Stream(data=b"\n".join(lines) + b"\n", lines=lines)
    stream.counts.update(event["type"] for event in events)
    stream.completed_items = stream.counts["item.completed"]
    stream.final_response = final_response
    return stream


# ------------------------------------------------------ benchmark 1a: in memory


class MemoryStream(ByteReceiveStream):
    """Gives out a byte string in chunks of at most ``max_bytes``, like a pipe would."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if self._pos >= len(self._data):
            raise anyio.EndOfStream
        chunk = self._data[self._pos : self._pos + max_bytes]
        self._pos += len(chunk)
        return chunk

    async def aclose(self) -> None:
        self._pos = len(self._data)


class MemoryExec(CodexExec):
    """``CodexExec`` minus the process: its lines come from memory via ``_read_lines``."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self._data = data

    async def run(
        self,
        args: ExecArgs,
        *,
        cancel_event: Any = None,
        watchdog: Watchdog | None = None,
    ) -> AsyncGenerator[bytes | bytearray, None]:
        async for line in _read_lines(MemoryStream(self._data), watchdog):
            yield line


async def loads_floor(stream: Stream) -> int:
    """Reference: ``json.loads`` on pre-split lines, no SDK code at all."""
    loads = json.loads
    for line in stream.lines:
        loads(line)
    return len(stream.lines)


async def read_lines_only(stream: Stream) -> int:
    count = 0
    async for _line in _read_lines(MemoryStream(stream.data), None):
        count += 1
    return count


async def read_and_parse(stream: Stream) -> int:
    count = 0
    async for line in _read_lines(MemoryStream(stream.data), None):
        parse_event(line)
        count += 1
    return count


def thread_run_in_memory(idle_timeout: float | None) -> Callable[[Stream], Awaitable[int]]:
    async def run(stream: Stream) -> int:
        options: CodexOptions = {"idle_timeout": idle_timeout} if idle_timeout else {}
        thread = Thread(MemoryExec(stream.data), options, {})
        turn = await thread.run(PROMPT)
        check_turn(stream, turn.items, turn.final_response)
        return len(stream.lines)

    return run


def check_turn(stream: Stream, items: Sequence[Any], final_response: str) -> None:
    if len(items) != stream.completed_items or final_response != stream.final_response:
        raise AssertionError(
            f"Thread.run returned {len(items)} items and {final_response!r}; expected "
            f"{stream.completed_items} and {stream.final_response!r}"
        )


# ------------------------------------------- benchmark 1b: through a fake codex

FAKE_CODEX = """#!{python} -S
# A stand-in for codex: reads the prompt, writes a recorded JSONL stream, exits.
import sys
with open({data!r}, "rb") as f:
    data = f.read()
sys.stdin.buffer.read()
sys.stdout.buffer.write(data)
sys.stdout.buffer.flush()
"""


def write_fake_codex(directory: Path, stream: Stream) -> Path:
    data_path = directory / "stream.jsonl"
    data_path.write_bytes(stream.data)
    fake = directory / "fake-codex"
    fake.write_text(FAKE_CODEX.format(python=sys.executable, data=str(data_path)))
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return fake


def fake_to_devnull(fake: Path) -> Callable[[Stream], Awaitable[int]]:
    """The fake's own cost: startup, reading its file, writing to /dev/null."""

    async def run(stream: Stream) -> int:
        process = await asyncio.create_subprocess_exec(
            str(fake), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL
        )
        await process.communicate(PROMPT.encode())
        if process.returncode != 0:
            raise RuntimeError(f"fake codex exited {process.returncode}")
        return len(stream.lines)

    return run


def fake_drained(fake: Path) -> Callable[[Stream], Awaitable[int]]:
    """The transport floor: spawned like the SDK spawns codex, stdout read and discarded."""

    async def run(stream: Stream) -> int:
        with tempfile.TemporaryFile() as stderr:
            process = await anyio.open_process(
                [str(fake)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                start_new_session=True,
            )
            async with process:
                assert process.stdin is not None and process.stdout is not None
                await process.stdin.send(PROMPT.encode())
                await process.stdin.aclose()
                size = 0
                with contextlib.suppress(anyio.EndOfStream):
                    while True:
                        size += len(await process.stdout.receive(CHUNK))
                await process.wait()
        if size != len(stream.data):
            raise AssertionError(f"read {size} bytes, expected {len(stream.data)}")
        return len(stream.lines)

    return run


def fake_through_sdk(fake: Path) -> Callable[[Stream], Awaitable[int]]:
    async def run(stream: Stream) -> int:
        codex = Codex({"codex_path_override": str(fake)})
        turn = await codex.start_thread().run(PROMPT)
        check_turn(stream, turn.items, turn.final_response)
        return len(stream.lines)

    return run


@dataclass
class EventResult:
    name: str
    description: str
    events: int
    wall: list[float]
    """Wall-clock seconds of each timed run."""
    cpu: list[float]
    """CPU seconds of this (the parent) process in each run: the SDK's share only."""

    @property
    def best(self) -> float:
        return min(self.wall)

    def to_json(self) -> dict[str, Any]:
        best, median, cpu = min(self.wall), percentile(self.wall, 50), min(self.cpu)
        return {
            "description": self.description,
            "events": self.events,
            "runs": len(self.wall),
            "events_per_s": round(self.events / best),
            "us_per_event": round(best / self.events * 1e6, 3),
            "events_per_s_median": round(self.events / median),
            "us_per_event_median": round(median / self.events * 1e6, 3),
            "cpu_us_per_event": round(cpu / self.events * 1e6, 3),
            "wall_best_s": round(best, 4),
            "wall_median_s": round(median, 4),
            "cpu_best_s": round(cpu, 4),
            "wall_samples_s": [round(v, 4) for v in self.wall],
        }


async def time_events(
    name: str,
    description: str,
    body: Callable[[Stream], Awaitable[int]],
    stream: Stream,
    repeats: int,
) -> EventResult:
    await body(stream)  # warm-up (imports, caches, first process start)
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(repeats):
        gc.collect()
        cpu_start, start = time.process_time(), time.perf_counter()
        count = await body(stream)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
        if count != len(stream.lines):
            raise AssertionError(f"{name}: saw {count} events, expected {len(stream.lines)}")
    result = EventResult(name, description, len(stream.lines), wall, cpu)
    print(
        f"  {name:<34} {result.events / result.best:>10,.0f} ev/s "
        f"{result.best / result.events * 1e6:>8.3f} µs/ev (best) "
        f"{percentile(wall, 50) / result.events * 1e6:>8.3f} µs/ev (median)",
        flush=True,
    )
    return result


async def bench_events(settings: Settings, work: Path) -> dict[str, Any]:
    stream = build_stream(settings.events)
    print(
        f"Benchmark 1: cost per event ({len(stream.lines):,} events, "
        f"{len(stream.data) / 1e6:.1f} MB, {settings.repeats} runs each)",
        flush=True,
    )
    fake = write_fake_codex(work, stream)
    cases: list[tuple[str, str, Callable[[Stream], Awaitable[int]]]] = [
        ("json.loads floor", "json.loads on pre-split lines (no SDK code)", loads_floor),
        ("_read_lines", "line reader only, 256 KiB chunks from memory", read_lines_only),
        ("_read_lines + parse_event", "line reader and parser, from memory", read_and_parse),
        (
            "Thread.run (memory)",
            "real Thread.run, CodexExec.run replaced by _read_lines over memory",
            thread_run_in_memory(None),
        ),
        (
            "Thread.run + idle_timeout (memory)",
            "as above with idle_timeout set (Watchdog per read and per event)",
            thread_run_in_memory(3600.0),
        ),
        (
            "fake codex > /dev/null",
            "fake codex's own cost: start, read file, write to /dev/null",
            fake_to_devnull(fake),
        ),
        (
            "fake codex, raw pipe drain",
            "fake spawned like the SDK does; stdout read in 256 KiB and discarded",
            fake_drained(fake),
        ),
        (
            "Thread.run (fake codex)",
            "real Thread.run end to end: spawn, pipe, read, parse, dispatch",
            fake_through_sdk(fake),
        ),
    ]
    results = {}
    for name, description, body in cases:
        results[name] = await time_events(name, description, body, stream, settings.repeats)
    sdk, drain = results["Thread.run (fake codex)"], results["fake codex, raw pipe drain"]
    events = len(stream.lines)
    net = sdk.best - drain.best
    memory, floor = results["Thread.run (memory)"], results["json.loads floor"]
    return {
        "stream": stream.describe(),
        "chunk_bytes": CHUNK,
        "statistic": (
            "events_per_s / us_per_event: best of the timed runs (wall clock); *_median: "
            "median run; cpu_us_per_event: CPU time of this process only (for the fake "
            "codex cases, the SDK's side without the child)"
        ),
        "results": {name: result.to_json() for name, result in results.items()},
        "sdk_net_of_pipe_drain": {
            "description": "best Thread.run (fake codex) minus best raw pipe drain",
            "seconds": round(net, 4),
            "events_per_s": round(events / net) if net > 0 else None,
            "us_per_event": round(net / events * 1e6, 3),
        },
        "sdk_overhead_over_json_loads": {
            "description": (
                "Thread.run (memory) minus the json.loads floor: what the SDK's own code "
                "costs per event on top of the stdlib parser"
            ),
            "us_per_event": round((memory.best - floor.best) / events * 1e6, 3),
            "cpu_us_per_event": round((min(memory.cpu) - min(floor.cpu)) / events * 1e6, 3),
        },
        "target_events_per_s": EVENTS_TARGET_PER_S,
        "target_met": events / memory.best >= EVENTS_TARGET_PER_S,
    }


# ------------------------------------------------------ benchmark 2: turn overhead


async def direct_turn(binary: str, argv: list[str], env: dict[str, str]) -> None:
    """``codex exec`` run directly: prompt on stdin, stdout read to EOF, nothing parsed."""
    process = await asyncio.create_subprocess_exec(
        binary,
        *argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(PROMPT.encode())
    await process.stdin.drain()
    process.stdin.close()
    output = bytearray()
    while chunk := await process.stdout.read(CHUNK):
        output += chunk
    returncode = await process.wait()
    if returncode != 0 or b'"text":"Hi!"' not in output:
        raise RuntimeError(f"direct codex run failed ({returncode}): {output[-500:]!r}")


# The variable the SDK marks codex's environment with (exec._MARKER_ENV), so that it can find
# and stop what codex leaves running. The direct runs carry it too (with their own value),
# so that both sides give codex the same environment, and so that their leftovers can be
# stopped after the timing, as the SDK does inside it.
MARKER_ENV = "CODEX_SDK_PY_RUN"


def marked_processes(marker: bytes) -> list[int]:
    """Processes whose environment contains ``marker`` (Linux; none elsewhere)."""
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
            except OSError:
                continue
    return found


async def stop_leftovers(marker: bytes) -> int:
    """Stop what a direct run left behind (e.g. the login shell's background jobs).

    SIGTERM first so that shells run their exit traps (``pyenv rehash`` removes its lock
    file in one), SIGKILL after 2 s. Returns how many processes were found.
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
        await asyncio.sleep(0.05)
    for pid in left:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return len(found)


async def sdk_turn(codex: Codex, project: Path) -> None:
    thread = codex.start_thread({"working_directory": str(project), "skip_git_repo_check": True})
    turn = await thread.run(PROMPT)
    if turn.final_response != "Hi!":
        raise RuntimeError(f"SDK turn answered {turn.final_response!r}")


async def measure(turn: Awaitable[None]) -> tuple[float, float]:
    """Wall-clock and CPU seconds (this process only, not codex) of one turn."""
    cpu, start = time.process_time(), time.perf_counter()
    await turn
    return time.perf_counter() - start, time.process_time() - cpu


async def bench_turns(settings: Settings, work: Path, binary: str) -> dict[str, Any]:
    total = 2 * (settings.warmup + settings.pairs)
    print(
        f"Benchmark 2: turn overhead ({settings.warmup} warm-up + {settings.pairs} "
        f"pairs, {total} codex runs)",
        flush=True,
    )
    project = work / "project"
    with ScriptedModel() as model:
        model.respond_with(lambda request: replies.message("Hi!"))
        home = make_codex_home(work / "codex-home", model.url)
        codex = Codex({"env": codex_env(home), "codex_path_override": binary})
        exec_ = codex.exec
        args = ExecArgs(input=PROMPT, working_directory=str(project), skip_git_repo_check=True)
        argv = exec_.build_args(args)
        env = exec_.build_env(args, exec_.binary.path_dirs)
        probe = Thread(exec_, {}, {"working_directory": str(project), "skip_git_repo_check": True})
        if exec_.build_args(probe._exec_args(PROMPT, [], None, {})) != argv:
            raise AssertionError("direct and SDK runs would not get the same arguments")
        leftovers = 0

        async def direct_run() -> tuple[float, float]:
            nonlocal leftovers
            marker = f"bench-direct-{uuid.uuid4().hex}"
            timing = await measure(direct_turn(binary, argv, {**env, MARKER_ENV: marker}))
            leftovers += await stop_leftovers(f"{MARKER_ENV}={marker}".encode())
            return timing

        for _ in range(settings.warmup):
            await direct_run()
            await sdk_turn(codex, project)
        direct: list[tuple[float, float]] = []
        sdk: list[tuple[float, float]] = []
        for index in range(settings.pairs):
            direct.append(await direct_run())
            sdk.append(await measure(sdk_turn(codex, project)))
            print(
                f"  pair {index + 1:>2}: direct {direct[-1][0] * 1000:7.1f} ms   "
                f"sdk {sdk[-1][0] * 1000:7.1f} ms",
                flush=True,
            )
        requests = len(model.requests)
    if requests != total:
        raise AssertionError(f"the scripted model saw {requests} requests, expected {total}")
    direct_wall, sdk_wall = [w for w, _ in direct], [w for w, _ in sdk]
    ratio = percentile(sdk_wall, 50) / percentile(direct_wall, 50)
    differences = [s - d for d, s in zip(direct_wall, sdk_wall, strict=True)]
    direct_cpu = percentile([c for _, c in direct], 50) * 1000
    sdk_cpu = percentile([c for _, c in sdk], 50) * 1000
    return {
        "prompt": PROMPT,
        "reply": 'replies.message("Hi!")',
        "warmup_pairs": settings.warmup,
        "pairs": settings.pairs,
        "order": "alternating: direct then sdk in each pair",
        "direct_method": (
            "asyncio.create_subprocess_exec in the same event loop; same argv and env "
            "(CodexExec.build_args / build_env), start_new_session=True, stderr to "
            "/dev/null, stdout read in 256 KiB chunks to EOF, not parsed; what codex "
            "leaves running is stopped after the timing (SIGTERM, then SIGKILL)"
        ),
        "argv": argv,
        "direct_leftover_processes": {
            "description": (
                "processes still running after a direct codex run (found by the marker "
                "variable, stopped after the timing); the SDK stops its own inside the turn"
            ),
            "total": leftovers,
            "runs": settings.warmup + settings.pairs,
        },
        "direct": summary_ms(direct_wall),
        "sdk": summary_ms(sdk_wall),
        "ratio_of_medians": round(ratio, 4),
        "median_paired_difference_ms": round(percentile(differences, 50) * 1000, 2),
        "parent_cpu_median_ms": {
            "description": (
                "CPU time of this Python process per turn (not codex's); includes the "
                "scripted model's server thread, the same for both sides"
            ),
            "direct": round(direct_cpu, 2),
            "sdk": round(sdk_cpu, 2),
            "sdk_extra": round(sdk_cpu - direct_cpu, 2),
        },
        "target_ratio": RATIO_TARGET,
        "target_met": ratio <= RATIO_TARGET,
    }


# ------------------------------------------------------------------------ main


def print_table(report: dict[str, Any]) -> None:
    events = report["events"]
    print()
    print(
        f"Results ({report['mode']} mode; {report['machine']['codex_version']}, "
        f"Python {report['machine']['python']}, {report['machine']['cpu_count']} CPUs)"
    )
    print()
    print(
        f"{'per event (best of runs)':<36} {'events/s':>10} {'µs/event':>9} "
        f"{'median µs':>10} {'CPU µs':>8}"
    )
    print("-" * 77)
    for name, row in events["results"].items():
        print(
            f"{name:<36} {row['events_per_s']:>10,} {row['us_per_event']:>9.3f} "
            f"{row['us_per_event_median']:>10.3f} {row['cpu_us_per_event']:>8.3f}"
        )
    net = events["sdk_net_of_pipe_drain"]
    rate = f"{net['events_per_s']:,}" if net["events_per_s"] else "n/a"
    print(f"{'Thread.run net of raw pipe drain':<36} {rate:>10} {net['us_per_event']:>9.3f}")
    over = events["sdk_overhead_over_json_loads"]
    print(
        f"{'SDK code on top of json.loads':<36} {'':>10} {over['us_per_event']:>9.3f} "
        f"{'':>10} {over['cpu_us_per_event']:>8.3f}"
    )
    turn = report["turn"]
    print()
    print(f"{'one-message turn':<36} {'median ms':>10} {'p90 ms':>9} {'min ms':>10}")
    print("-" * 77)
    for side in ("direct", "sdk"):
        row = turn[side]
        label = "codex exec, direct" if side == "direct" else "Thread.run"
        print(f"{label:<36} {row['median_ms']:>10.1f} {row['p90_ms']:>9.1f} {row['min_ms']:>10.1f}")
    print(
        f"ratio of medians (sdk/direct): {turn['ratio_of_medians']:.3f} "
        f"(target ≤ {RATIO_TARGET}); median paired difference "
        f"{turn['median_paired_difference_ms']:+.1f} ms"
    )
    cpu = turn["parent_cpu_median_ms"]
    print(
        f"CPU of this process per turn (median): direct {cpu['direct']:.2f} ms, "
        f"sdk {cpu['sdk']:.2f} ms ({cpu['sdk_extra']:+.2f} ms)"
    )
    memory = events["results"]["Thread.run (memory)"]
    print(
        f"parse + dispatch (Thread.run from memory): {memory['events_per_s']:,} events/s "
        f"(target ≥ {EVENTS_TARGET_PER_S:,})"
    )


async def run_all(settings: Settings, binary: str, work: Path) -> dict[str, Any]:
    events_dir = work / "events"
    events_dir.mkdir()
    events = await bench_events(settings, events_dir)
    turn = await bench_turns(settings, work, binary)
    return {"events": events, "turn": turn}


def parse_settings(argv: Sequence[str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller stream, fewer turns")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write results")
    parser.add_argument("--events", type=int, help="events in the stream (200000; quick 50000)")
    parser.add_argument("--repeats", type=int, help="timed runs per event case (5; quick 2)")
    parser.add_argument("--pairs", type=int, help="timed turn pairs (15; quick 5)")
    parser.add_argument(
        "--scratch",
        type=Path,
        default=DEFAULT_SCRATCH,
        help="where CODEX_HOME, the project and the fake codex go (kept out of /tmp)",
    )
    parser.add_argument("--keep-scratch", action="store_true", help="do not delete it")
    options = parser.parse_args(argv)
    quick = bool(options.quick)
    return Settings(
        quick=quick,
        events=options.events or (50_000 if quick else 200_000),
        repeats=options.repeats or (2 if quick else 5),
        warmup=2,
        pairs=options.pairs or (5 if quick else 15),
        json_path=options.json,
        scratch=options.scratch,
        keep_scratch=bool(options.keep_scratch),
    )


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_settings(argv)
    binary = codex_binary()
    machine = machine_info(binary)
    print(
        f"{machine['platform']}, Python {machine['python']}, {machine['cpu_count']} CPUs, "
        f"{machine['codex_version']}",
        flush=True,
    )
    settings.scratch.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="sdk-", dir=settings.scratch))
    started = time.perf_counter()
    try:
        # Its own repository, so codex does not look at the (changing) repository around it.
        (work / "project").mkdir()
        subprocess.run(["git", "init", "-q", str(work / "project")], check=True)
        results = asyncio.run(run_all(settings, binary, work))
    finally:
        if not settings.keep_scratch:
            shutil.rmtree(work, ignore_errors=True)
            with contextlib.suppress(OSError):
                settings.scratch.rmdir()  # only if empty
    report = {
        "benchmark": "sdk",
        "mode": "quick" if settings.quick else "full",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "duration_s": round(time.perf_counter() - started, 1),
        "machine": machine,
        **results,
    }
    print_table(report)
    settings.json_path.parent.mkdir(parents=True, exist_ok=True)
    settings.json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"\nWrote {settings.json_path} ({report['duration_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
