"""The SDK's cost per event, and the parse and render throughput of SDK and server.

Both run a realistic ``codex exec --experimental-json`` stream (:mod:`stream`) through the
project's own code, from memory and, for the cost per event, end to end through a fake
codex that replays it. ``python benchmarks/run.py`` runs them with the other benchmarks;
``python benchmarks/bench_sdk.py [run.py options]`` runs only the SDK's own (this file's
cost per event and the turn overhead).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import ByteReceiveStream
from stream import Stream, build_stream
from support import (
    CHUNK,
    PROMPT,
    Row,
    Settings,
    fake_orders,
    percentile,
    versus,
    write_fake_codex,
)

from codex_mcp_server.sdk import Codex
from codex_mcp_server.sdk.events import parse_event
from codex_mcp_server.sdk.exec import CodexExec, ExecArgs, Watchdog
from codex_mcp_server.sdk.exec_engine import ExecEngine
from codex_mcp_server.sdk.options import CodexOptions
from codex_mcp_server.sdk.processes import read_lines
from codex_mcp_server.sdk.thread import Thread
from codex_mcp_server.server.progress import render_event

EVENTS_TARGET_PER_S = 100_000
RENDER_CWD = "/home/dev/project"

Body = Callable[[Stream], Awaitable[int]]


# ------------------------------------------------------------------ timing harness


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

    @property
    def rate(self) -> float:
        return self.events / self.best

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
    name: str, description: str, body: Body, stream: Stream, repeats: int
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
        f"  {name:<34} {result.rate:>10,.0f} ev/s "
        f"{result.best / result.events * 1e6:>8.3f} µs/ev (best) "
        f"{percentile(wall, 50) / result.events * 1e6:>8.3f} µs/ev (median)",
        flush=True,
    )
    return result


async def time_cases(
    cases: Sequence[tuple[str, str, Body]], stream: Stream, repeats: int
) -> dict[str, EventResult]:
    results = {}
    for name, description, body in cases:
        results[name] = await time_events(name, description, body, stream, repeats)
    return results


STATISTIC = (
    "events_per_s / us_per_event: best of the timed runs (wall clock); *_median: median "
    "run; cpu_us_per_event: CPU time of this process only (for the fake codex cases, the "
    "SDK's side without the child)"
)

# ------------------------------------------------------------- in memory: the SDK


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
    """``CodexExec`` minus the process: its lines come from memory via ``read_lines``."""

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
        async for line in read_lines(MemoryStream(self._data), watchdog):
            yield line


async def loads_floor(stream: Stream) -> int:
    """Reference: ``json.loads`` on pre-split lines, no SDK code at all."""
    loads = json.loads
    for line in stream.lines:
        loads(line)
    return len(stream.lines)


async def read_lines_only(stream: Stream) -> int:
    count = 0
    async for _line in read_lines(MemoryStream(stream.data)):
        count += 1
    return count


async def read_and_parse(stream: Stream) -> int:
    count = 0
    async for line in read_lines(MemoryStream(stream.data)):
        parse_event(line)
        count += 1
    return count


def thread_run_in_memory(idle_timeout: float | None) -> Body:
    async def run(stream: Stream) -> int:
        options: CodexOptions = {"idle_timeout": idle_timeout} if idle_timeout else {}
        engine = ExecEngine(options)
        engine.exec = MemoryExec(stream.data)
        thread = Thread(engine, {})
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


# ------------------------------------------------------ end to end: a fake codex


def fake_to_devnull(fake: Path, orders: str) -> Body:
    """The fake's own cost: startup, reading its file, writing to /dev/null."""

    async def run(stream: Stream) -> int:
        process = await asyncio.create_subprocess_exec(
            str(fake), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL
        )
        await process.communicate(orders.encode())
        if process.returncode != 0:
            raise RuntimeError(f"fake codex exited {process.returncode}")
        return len(stream.lines)

    return run


def fake_drained(fake: Path, orders: str) -> Body:
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
                await process.stdin.send(orders.encode())
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


def fake_through_sdk(fake: Path, orders: str) -> Body:
    async def run(stream: Stream) -> int:
        codex = Codex({"codex_path_override": str(fake)})
        turn = await codex.start_thread().run(orders)
        check_turn(stream, turn.items, turn.final_response)
        return len(stream.lines)

    return run


# --------------------------------------------------------- benchmark: cost per event


def announce_stream(title: str, settings: Settings, events: int) -> Stream:
    stream = build_stream(events)
    size = f"{len(stream.lines):,} events, {len(stream.data) / 1e6:.1f} MB"
    print(f"{title} ({size}, {settings.repeats} runs each)", flush=True)
    return stream


async def bench_events(settings: Settings, work: Path) -> dict[str, Any]:
    stream = announce_stream("SDK cost per event", settings, settings.events)
    data_path = work / "stream.jsonl"
    data_path.write_bytes(stream.data)
    fake, orders = write_fake_codex(work), fake_orders("replay", file=str(data_path))
    results = await time_cases(
        [
            ("json.loads floor", "json.loads on pre-split lines (no SDK code)", loads_floor),
            ("read_lines", "line reader only, 256 KiB chunks from memory", read_lines_only),
            ("read_lines + parse_event", "line reader and parser, from memory", read_and_parse),
            (
                "Thread.run (memory)",
                "real Thread.run, CodexExec.run replaced by read_lines over memory",
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
                fake_to_devnull(fake, orders),
            ),
            (
                "fake codex, raw pipe drain",
                "fake spawned like the SDK does; stdout read in 256 KiB and discarded",
                fake_drained(fake, orders),
            ),
            (
                "Thread.run (fake codex)",
                "real Thread.run end to end: spawn, pipe, read, parse, dispatch",
                fake_through_sdk(fake, orders),
            ),
        ],
        stream,
        settings.repeats,
    )
    sdk, drain = results["Thread.run (fake codex)"], results["fake codex, raw pipe drain"]
    events = len(stream.lines)
    net = sdk.best - drain.best
    memory, floor = results["Thread.run (memory)"], results["json.loads floor"]
    met, change = versus(memory.rate, EVENTS_TARGET_PER_S, at_most=False)
    return {
        "stream": stream.describe(),
        "chunk_bytes": CHUNK,
        "statistic": STATISTIC,
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
        "target_met": met,
        "rows": [
            Row(
                "SDK per event",
                "Thread.run from memory (parse + dispatch)",
                f"{memory.rate:,.0f} ev/s",
                f"≥ {EVENTS_TARGET_PER_S:,} ev/s",
                met,
                change,
            ),
            Row("SDK per event", "json.loads alone (floor)", f"{floor.rate:,.0f} ev/s"),
            Row(
                "SDK per event",
                "Thread.run + idle_timeout (memory)",
                f"{results['Thread.run + idle_timeout (memory)'].rate:,.0f} ev/s",
            ),
            Row("SDK per event", "Thread.run end to end (fake codex)", f"{sdk.rate:,.0f} ev/s"),
        ],
    }


# ------------------------------------------------- benchmark: parse and render alone


def parse_only(stream: Stream) -> Body:
    async def run(_: Stream) -> int:
        for line in stream.lines:
            parse_event(line)
        return len(stream.lines)

    return run


def render_only(events: list[Any]) -> Body:
    async def run(_: Stream) -> int:
        for event in events:
            render_event(event, cwd=RENDER_CWD)
        return len(events)

    return run


def parse_and_render(stream: Stream) -> Body:
    async def run(_: Stream) -> int:
        for line in stream.lines:
            render_event(parse_event(line), cwd=RENDER_CWD)
        return len(stream.lines)

    return run


async def bench_parse_render(settings: Settings, work: Path) -> dict[str, Any]:
    stream = announce_stream("Parse and render throughput", settings, settings.render_events)
    events = [parse_event(line) for line in stream.lines]
    rendered = sum(render_event(event, cwd=RENDER_CWD) is not None for event in events)
    results = await time_cases(
        [
            ("parse_event", "sdk.parse_event on pre-split lines", parse_only(stream)),
            ("render_event", "server.progress.render_event on parsed events", render_only(events)),
            ("parse_event + render_event", "both, per line", parse_and_render(stream)),
        ],
        stream,
        settings.repeats,
    )
    rows = []
    for name, result in results.items():
        target = name == "parse_event + render_event"
        met, change = versus(result.rate, EVENTS_TARGET_PER_S, at_most=False)
        rows.append(
            Row(
                "parse/render",
                name,
                f"{result.rate:,.0f} ev/s",
                f"≥ {EVENTS_TARGET_PER_S:,} ev/s" if target else "",
                met if target else None,
                change if target else "",
            )
        )
    return {
        "stream": stream.describe(),
        "lines_rendered": rendered,
        "render_cwd": RENDER_CWD,
        "statistic": STATISTIC,
        "results": {name: result.to_json() for name, result in results.items()},
        "target_events_per_s": EVENTS_TARGET_PER_S,
        "rows": rows,
    }


if __name__ == "__main__":
    from run import main

    sys.exit(main(["--only", "events,turn", *sys.argv[1:]]))
