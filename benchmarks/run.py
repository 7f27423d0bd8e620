"""The benchmark suite of the SDK and the MCP server, in one command.

Run from the repository root::

    python benchmarks/run.py                # everything, about 12 minutes (9 of fault rounds)
    python benchmarks/run.py --quick        # smaller sizes, under 2 minutes
    python benchmarks/run.py --json PATH    # results elsewhere (default results/latest.json)
    python benchmarks/run.py --only turn,event-path

It prints one results table and writes it, with every figure behind it and the machine's
description, as JSON. Everything runs offline: the real codex binary (openai-codex-cli-bin)
answers from the scripted model of ``codex_mcp_server.testing``, or a fake codex
(``fake_codex.py``) writes the stream a benchmark needs. Timings are informative only: no
test asserts them. See README.md in this directory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from bench_faults import bench_faults
from bench_sdk import bench_events, bench_parse_render
from bench_server import bench_big_line, bench_cold_start, bench_concurrency, bench_event_path
from bench_turns import bench_turns
from bench_warm import bench_warm
from support import RESULTS_DIR, Row, Settings, codex_binary, load_average, machine_info

Benchmark = Callable[[Settings, Path], Awaitable[dict[str, Any]]]

BENCHMARKS: dict[str, tuple[str, Benchmark]] = {
    "events": ("SDK cost per event (bench_sdk.py)", bench_events),
    "parse-render": ("parse_event and render_event throughput", bench_parse_render),
    "turn": ("turn overhead: direct, SDK, MCP", bench_turns),
    "warm": ("warm turns: app-server backend against codex exec", bench_warm),
    "event-path": ("event path latency at 1,000 events/s", bench_event_path),
    "cold-start": ("cold start to tools/list", bench_cold_start),
    "concurrency": ("1 to 32 simultaneous threads", bench_concurrency),
    "big-line": ("a 50 MB line of command output", bench_big_line),
    "faults": ("random host faults, 100 rounds (reliability suite)", bench_faults),
}
DEFAULT_JSON = RESULTS_DIR / "latest.json"
DEFAULT_SCRATCH = RESULTS_DIR / ".scratch"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer rounds")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write results")
    parser.add_argument(
        "--only",
        help=f"comma-separated benchmarks to run, of: {', '.join(BENCHMARKS)} (default: all)",
    )
    parser.add_argument("--events", type=int, help="events in the stream (200000; quick 50000)")
    parser.add_argument("--repeats", type=int, help="timed runs per event case (5; quick 2)")
    parser.add_argument("--pairs", type=int, help="timed turn rounds (15; quick 5)")
    parser.add_argument("--warm-rounds", type=int, help="timed warm-turn rounds (60; quick 15)")
    parser.add_argument(
        "--scratch",
        type=Path,
        default=DEFAULT_SCRATCH,
        help="where CODEX_HOMEs, projects and fake codexes go (kept out of /tmp)",
    )
    parser.add_argument("--keep-scratch", action="store_true", help="do not delete it")
    options = parser.parse_args(argv)
    names = options.only.split(",") if options.only else list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    options.names = names
    return options


def print_table(rows: list[Row]) -> None:
    def mark(row: Row) -> str:
        return "" if row.met is None else ("met" if row.met else "MISSED")

    header = ("benchmark", "measure", "result", "target", "", "note")
    cells = [header] + [
        (row.benchmark, row.measure, row.value, row.target, mark(row), row.note) for row in rows
    ]
    widths = [max(len(cell[i]) for cell in cells) for i in range(len(header))]
    for index, cell in enumerate(cells):
        print(
            "  ".join(text.ljust(width) for text, width in zip(cell, widths, strict=True)).rstrip()
        )
        if index == 0:
            print("  ".join("-" * width for width in widths))


async def run_all(settings: Settings, names: list[str], work: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name in names:
        title, benchmark = BENCHMARKS[name]
        directory = work / name
        directory.mkdir()
        start = time.perf_counter()
        try:
            result = await benchmark(settings, directory)
        except Exception as exc:  # one failing benchmark must not lose the others
            traceback.print_exc()
            result = {"error": f"{type(exc).__name__}: {exc}", "rows": [Row(name, "ERROR", "")]}
        result["title"] = title
        result["duration_s"] = round(time.perf_counter() - start, 1)
        results[name] = result
        print(f"  ({result['duration_s']} s)\n", flush=True)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    settings = Settings.for_mode(
        options.quick,
        events=options.events,
        repeats=options.repeats,
        rounds=options.pairs,
        warm_rounds=options.warm_rounds,
    )
    binary = codex_binary()
    machine = machine_info(binary)
    print(
        f"{machine['platform']}, {machine['cpu_count']} CPUs ({machine['cpu_model']}), "
        f"Python {machine['python']}, {machine['codex_version']}, load "
        f"{machine['load_average_at_start']}\n",
        flush=True,
    )
    options.scratch.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=options.scratch))
    started = time.perf_counter()
    try:
        results = asyncio.run(run_all(settings, options.names, work))
    finally:
        if not options.keep_scratch:
            shutil.rmtree(work, ignore_errors=True)
            with contextlib.suppress(OSError):
                options.scratch.rmdir()  # only if empty
    machine["load_average_at_end"] = load_average()
    rows = [row for result in results.values() for row in result.pop("rows")]
    report = {
        "suite": "codex-mcp-server benchmarks",
        "mode": "quick" if settings.quick else "full",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "duration_s": round(time.perf_counter() - started, 1),
        "machine": machine,
        "settings": {key: getattr(settings, key) for key in settings.__dataclass_fields__},
        "summary": [row.to_json() for row in rows],
        "benchmarks": results,
    }
    print(
        f"Results ({report['mode']} mode, {report['duration_s']} s; {machine['codex_version']}, "
        f"Python {machine['python']}, {machine['cpu_count']} CPUs, load "
        f"{machine['load_average_at_start']} → {machine['load_average_at_end']})\n"
    )
    print_table(rows)
    options.json.parent.mkdir(parents=True, exist_ok=True)
    options.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"\nWrote {options.json}")
    return 1 if any("error" in result for result in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
