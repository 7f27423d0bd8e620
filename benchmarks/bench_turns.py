"""Turn overhead: a one-message turn through the SDK and through the MCP server, against
``codex exec`` run directly with the same arguments and environment.

The real codex binary answers from the scripted model. All three sides run in one loop, in
rounds whose order rotates (direct, SDK, MCP; SDK, MCP, direct; MCP, direct, SDK), so that
drift (other load, ``CODEX_HOME`` growing with each session) hits every side alike.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest.mock import patch

from support import (
    CHUNK,
    MARKER_ENV,
    PROMPT,
    REPLY,
    McpServer,
    Row,
    Settings,
    mcp_server,
    percentile,
    scripted_codex,
    stop_leftovers,
    summary_ms,
)

from codex_mcp_server.sdk.engine import TurnInput
from codex_mcp_server.sdk.exec_engine import ExecEngine
from codex_mcp_server.server.models import StartThreadInput
from codex_mcp_server.server.settings import parse_settings
from codex_mcp_server.server.threads import ThreadService

RATIO_TARGET = 1.05
SIDES = ("direct", "sdk", "mcp")
ARGUMENTS = {"prompt": PROMPT, "skip_git_repo_check": True}
LABELS = {
    "direct": "codex exec, direct",
    "sdk": "SDK Thread.run",
    "mcp": "MCP start_thread (stdio, exec backend)",
}


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
    if returncode != 0 or f'"text":"{REPLY}"'.encode() not in output:
        raise RuntimeError(f"direct codex run failed ({returncode}): {output[-500:]!r}")


async def measure(turn: Awaitable[None]) -> tuple[float, float]:
    """Wall-clock and CPU seconds (this process only, not codex or the server) of one turn."""
    cpu, start = time.process_time(), time.perf_counter()
    await turn
    return time.perf_counter() - start, time.process_time() - cpu


@dataclass
class Sides:
    """How to run one turn on each side, and how to find what each leaves running."""

    argv: list[str]
    bodies: dict[str, Callable[[], Awaitable[None]]]
    markers: dict[str, bytes]
    server_cpu: list[float] = field(default_factory=list)
    """CPU seconds of the server process per MCP call."""


def make_sides(server: McpServer, flags: list[str]) -> Sides:
    # What the server builds for this call, by its own code: thread options and the Codex
    # client (binary, config overrides, environment, idle timeout). _prepare reads the
    # server's os.environ, so it runs with ours set to the server's for the moment.
    with patch.dict(os.environ, server.env, clear=True):
        service = ThreadService(parse_settings(flags))
        options, _ = service._prepare(StartThreadInput.model_validate(ARGUMENTS))
    sdk = service.codex
    engine = sdk.engine
    assert isinstance(engine, ExecEngine), "the turn benchmark measures the exec engine"
    binary = sdk.exec.binary
    args = engine.exec_args(None, options, TurnInput(PROMPT), None, {})
    argv = sdk.exec.build_args(args)
    env = sdk.exec.build_env(args, binary.path_dirs)
    direct_prefix = f"bench-direct-{os.getpid()}-"

    async def direct_run() -> None:
        marker = f"{direct_prefix}{uuid.uuid4().hex}"
        await direct_turn(binary.path, argv, {**env, MARKER_ENV: marker})

    async def sdk_run() -> None:
        turn = await sdk.start_thread(options).run(PROMPT)
        if turn.final_response != REPLY:
            raise RuntimeError(f"SDK turn answered {turn.final_response!r}")

    async def mcp_run() -> None:
        cpu = server.cpu()
        result = await server.call("start_thread", ARGUMENTS, progress=_ignore)
        sides.server_cpu.append(server.cpu() - cpu)
        if result["final_response"] != REPLY:
            raise RuntimeError(f"MCP turn answered {result['final_response']!r}")

    sides = Sides(
        argv,
        {"direct": direct_run, "sdk": sdk_run, "mcp": mcp_run},
        {
            "direct": f"{MARKER_ENV}={direct_prefix}".encode(),
            "sdk": f"{MARKER_ENV}={os.getpid()}-".encode(),
            "mcp": f"{MARKER_ENV}={server.pid}-".encode(),
        },
    )
    return sides


async def run_rounds(
    settings: Settings, sides: Sides
) -> tuple[dict[str, list[tuple[float, float]]], dict[str, int]]:
    """Timings (wall, CPU) of each side after the warm-up, and leftover processes."""
    timings: dict[str, list[tuple[float, float]]] = {side: [] for side in SIDES}
    leftovers = dict.fromkeys(SIDES, 0)
    for index in range(settings.warmup + settings.rounds):
        for side in SIDES[index % 3 :] + SIDES[: index % 3]:
            timing = await measure(sides.bodies[side]())
            # What codex left running is stopped outside the timing, for every side.
            leftovers[side] += await stop_leftovers(sides.markers[side])
            if index >= settings.warmup:
                timings[side].append(timing)
        if index >= settings.warmup:
            last = "   ".join(f"{side} {timings[side][-1][0] * 1000:6.1f} ms" for side in SIDES)
            print(f"  round {index - settings.warmup + 1:>2}: {last}", flush=True)
    return timings, leftovers


async def bench_turns(settings: Settings, work: Path) -> dict[str, Any]:
    runs = settings.warmup + settings.rounds
    print(
        f"Turn overhead ({settings.warmup} warm-up + {settings.rounds} rounds of direct, "
        f"SDK and MCP: {3 * runs} codex runs)",
        flush=True,
    )
    with scripted_codex(work, "turn") as scripted:
        flags = ["--cwd", str(scripted.project), "--backend", "exec"]
        async with mcp_server(flags, scripted.env) as server:
            sides = make_sides(server, flags)
            timings, leftovers = await run_rounds(settings, sides)
        requests = len(scripted.model.requests)
    if requests != 3 * runs:
        raise AssertionError(f"the scripted model saw {requests} requests, expected {3 * runs}")
    result = report(settings, timings, sides.argv, leftovers)
    per_turn = sum(sides.server_cpu[settings.warmup :]) / settings.rounds * 1000
    result["server_cpu_ms_per_turn"] = {
        "description": (
            "CPU time of the server process per start_thread call (mean; /proc/<pid>/stat, "
            "its codex child excluded)"
        ),
        "mean": round(per_turn, 2),
    }
    result["rows"].append(
        Row("turn overhead", "server CPU per start_thread call (mean)", f"{per_turn:.1f} ms")
    )
    return result


async def _ignore(progress: float, total: float | None, message: str | None) -> None:
    """A progress callback, as hosts pass one (so the server sends progress)."""


def report(
    settings: Settings,
    timings: dict[str, list[tuple[float, float]]],
    argv: list[str],
    leftovers: dict[str, int],
) -> dict[str, Any]:
    wall = {side: [w for w, _ in timings[side]] for side in SIDES}
    cpu = {side: percentile([c for _, c in timings[side]], 50) * 1000 for side in SIDES}
    median = {side: percentile(wall[side], 50) for side in SIDES}
    result: dict[str, Any] = {
        "prompt": PROMPT,
        "reply": f"replies.message({REPLY!r})",
        "warmup_rounds": settings.warmup,
        "rounds": settings.rounds,
        "order": "rotating: (direct, sdk, mcp), (sdk, mcp, direct), (mcp, direct, sdk), ...",
        "direct_method": (
            "asyncio.create_subprocess_exec in the same event loop; the argv and env the "
            "server builds (ThreadService._prepare, CodexExec.build_args / build_env), "
            "start_new_session=True, stderr to /dev/null, stdout read in 256 KiB chunks to "
            "EOF, not parsed"
        ),
        "sdk_method": "the Codex client and options ThreadService._prepare built: Thread.run()",
        "mcp_method": (
            "mcp.Client over stdio (initialize handshake), one server for all calls, "
            "call_tool('start_thread') with a progress callback"
        ),
        "argv": argv,
        "leftover_processes": {
            "description": (
                "processes still running after a turn (found by the SDK's marker variable), "
                "stopped after the timing, for every side"
            ),
            **leftovers,
        },
    }
    for side in SIDES:
        result[side] = summary_ms(wall[side])
    rows = []
    for side in ("sdk", "mcp"):
        ratio = median[side] / median["direct"]
        pairs = list(zip(wall["direct"], wall[side], strict=True))
        difference = percentile([s - d for d, s in pairs], 50) * 1000
        paired_ratio = percentile([s / d for d, s in pairs], 50)
        met = ratio <= RATIO_TARGET
        result[f"{side}_vs_direct"] = {
            "ratio_of_medians": round(ratio, 4),
            "median_paired_difference_ms": round(difference, 2),
            "median_of_paired_ratios": round(paired_ratio, 4),
            "target_ratio": RATIO_TARGET,
            "target_met": met,
        }
        rows.append(
            Row(
                "turn overhead",
                f"{LABELS[side]} / direct (median {median[side] * 1000:.0f} ms)",
                f"{ratio:.3f} ({(median[side] - median['direct']) * 1000:+.1f} ms)",
                f"≤ {RATIO_TARGET}",
                met,
                f"{ratio - 1:+.1%} vs ≤ {RATIO_TARGET - 1:+.0%} allowed; per round: median "
                f"ratio {paired_ratio:.3f}, difference {difference:+.1f} ms",
            )
        )
    result["parent_cpu_median_ms"] = {
        "description": (
            "CPU time of the benchmark process per turn (not codex's, not the server's); "
            "includes the scripted model's server thread, the same for every side"
        ),
        **{side: round(cpu[side], 2) for side in SIDES},
    }
    rows.insert(
        0,
        Row(
            "turn overhead",
            f"{LABELS['direct']} (median)",
            f"{median['direct'] * 1000:.1f} ms",
        ),
    )
    result["rows"] = rows
    return result
