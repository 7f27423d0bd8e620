"""Warm turns: the app-server backend against ``codex exec`` run directly.

Side by side in one loop, in rotating order, with the real codex binary and the scripted model:

* ``direct``: ``codex exec`` started for a new thread, as the exec backend does per turn;
* ``run_turn``: the next turn of one warm thread, through the MCP server (app-server backend);
* ``start_thread``: a new thread on the warm server (its app-server already running);
* ``floor``: the same warm turn asked of a ``codex app-server`` of its own in bare JSON-RPC
  (no SDK, no MCP): what codex itself takes, so that what the server adds is known.

Also measured: the first ``start_thread`` of a fresh server (cold: it starts the app-server),
and the memory of the server and its app-server with 32 threads loaded.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from subprocess import DEVNULL, PIPE
from typing import Any

import anyio
import anyio.abc
from bench_turns import direct_turn, measure
from support import (
    MARKER_ENV,
    MIB,
    PROMPT,
    REPLY,
    Row,
    Settings,
    children_rss,
    mcp_server,
    percentile,
    proc_status,
    scripted_codex,
    stop_leftovers,
    summary_ms,
)

from codex_mcp_server.sdk.engine import TurnInput
from codex_mcp_server.sdk.exec_engine import ExecEngine

RATIO_TARGET = 0.35
SIDES = ("direct", "run_turn", "start_thread", "floor")
LOADED_THREADS = 32
ARGUMENTS = {"prompt": PROMPT, "skip_git_repo_check": True}


class _BareAppServer:
    """``codex app-server`` spoken to in bare JSON-RPC, one request at a time."""

    def __init__(self, process: anyio.abc.Process) -> None:
        assert process.stdin is not None and process.stdout is not None
        self._stdin = process.stdin
        self._lines = _lines(process.stdout)
        self._next_id = 0

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        self._next_id += 1
        await self._send({"id": self._next_id, "method": method, "params": params})
        while True:
            message = await self._receive()
            if message.get("id") == self._next_id and "method" not in message:
                if "error" in message:
                    raise RuntimeError(f"{method} failed: {message['error']}")
                return message["result"]

    async def notify(self, method: str) -> None:
        await self._send({"method": method})

    async def turn(self, thread_id: str) -> None:
        text = {"type": "text", "text": PROMPT}
        await self.call("turn/start", {"threadId": thread_id, "input": [text]})
        while (await self._receive()).get("method") != "turn/completed":
            pass

    async def _send(self, message: dict[str, Any]) -> None:
        await self._stdin.send(json.dumps(message).encode() + b"\n")

    async def _receive(self) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(await self._lines.__anext__())
        return message


async def _lines(stream: anyio.abc.ByteReceiveStream) -> AsyncIterator[bytes]:
    buffer = bytearray()  # Appended to in place: a long line costs no copies per chunk.
    async for chunk in stream:
        start = len(buffer)
        buffer += chunk
        while (end := buffer.find(b"\n", start)) >= 0:
            yield bytes(buffer[:end])
            del buffer[: end + 1]
            start = 0


@asynccontextmanager
async def bare_app_server(binary: str, env: dict[str, str]) -> AsyncIterator[_BareAppServer]:
    """A ``codex app-server`` of its own, initialized; killed and reaped on exit."""
    command = [binary, "app-server", "--listen", "stdio://"]
    async with await anyio.open_process(
        command, stdin=PIPE, stdout=PIPE, stderr=DEVNULL, env=env, start_new_session=True
    ) as process:
        try:
            server = _BareAppServer(process)
            info = {"name": "bench_warm", "version": "1"}
            await server.call("initialize", {"clientInfo": info, "capabilities": {}})
            await server.notify("initialized")
            yield server
        finally:
            # It and what it started (its own session: start_new_session).
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)


async def bench_warm(settings: Settings, work: Path) -> dict[str, Any]:
    runs = settings.warmup + settings.warm_rounds
    print(
        f"Warm turns ({settings.warmup} warm-up + {settings.warm_rounds} rounds of codex exec, "
        "run_turn and start_thread on the app-server backend, and a bare app-server's turn)",
        flush=True,
    )
    with scripted_codex(work, "warm") as scripted:
        engine = ExecEngine({"env": scripted.env})
        options = {"working_directory": str(scripted.project), "skip_git_repo_check": True}
        args = engine.exec_args(None, options, TurnInput(PROMPT), None, {})  # type: ignore[arg-type]
        argv = engine.exec.build_args(args)
        env = engine.exec.build_env(args, engine.exec.binary.path_dirs)
        flags = ["--cwd", str(scripted.project), "--backend", "app-server"]
        bare_env = {**scripted.env, MARKER_ENV: f"bench-warm-floor-{os.getpid()}"}
        async with mcp_server(flags, scripted.env) as server:
            cold_started = time.perf_counter()
            first = await server.call("start_thread", ARGUMENTS)
            cold = time.perf_counter() - cold_started
            thread_id = first["thread_id"]

            async def run_turn() -> None:
                turn = await server.call("run_turn", {"thread_id": thread_id, "prompt": PROMPT})
                if turn["final_response"] != REPLY:
                    raise RuntimeError(f"run_turn answered {turn['final_response']!r}")

            async def start_thread() -> None:
                await server.call("start_thread", ARGUMENTS)

            direct_marker = f"bench-warm-direct-{os.getpid()}-"

            async def direct() -> None:
                marker = {MARKER_ENV: f"{direct_marker}{uuid.uuid4().hex}"}
                await direct_turn(engine.exec.binary.path, argv, {**env, **marker})

            timings: dict[str, list[float]] = {side: [] for side in SIDES}
            async with bare_app_server(engine.exec.binary.path, bare_env) as bare:
                # The settings codex gets from the server, bare: cwd, read-only, never ask.
                bare_options = {"sandbox": "read-only", "approvalPolicy": "never"}
                bare_thread = await bare.call(
                    "thread/start", {"cwd": str(scripted.project), **bare_options}
                )

                async def floor() -> None:
                    await bare.turn(bare_thread["thread"]["id"])

                bodies = {
                    "direct": direct,
                    "run_turn": run_turn,
                    "start_thread": start_thread,
                    "floor": floor,
                }
                for index in range(runs):
                    shift = index % len(SIDES)
                    for side in SIDES[shift:] + SIDES[:shift]:
                        wall, _ = await measure(bodies[side]())
                        # What codex exec left running (its login shell's jobs) is stopped
                        # outside the timing, so that it does not slow the next side down.
                        await stop_leftovers(f"{MARKER_ENV}={direct_marker}".encode())
                        if index >= settings.warmup:
                            timings[side].append(wall)
        # On a server of its own: the rounds' start_thread calls load more threads than that.
        async with mcp_server(flags, scripted.env) as server:
            for _ in range(LOADED_THREADS):
                await server.call("start_thread", ARGUMENTS)
            server_rss = proc_status(server.pid)["VmRSS"]
            app_server_rss = children_rss(server.pid)
    median = {side: percentile(timings[side], 50) for side in SIDES}
    ratio = median["run_turn"] / median["direct"]
    start_ratio = median["start_thread"] / median["direct"]
    floor_ratio = median["floor"] / median["direct"]
    added = median["run_turn"] - median["floor"]
    met = ratio <= RATIO_TARGET
    print(
        "  medians: "
        + ", ".join(f"{side} {median[side] * 1000:.1f} ms" for side in SIDES)
        + f"; cold start_thread {cold * 1000:.0f} ms",
        flush=True,
    )
    rows = [
        Row("warm turns", "codex exec, direct (median)", f"{median['direct'] * 1000:.1f} ms"),
        Row(
            "warm turns",
            f"MCP run_turn on a warm thread / direct (median {median['run_turn'] * 1000:.0f} ms)",
            f"{ratio:.3f}",
            f"≤ {RATIO_TARGET}",
            met,
        ),
        Row(
            "warm turns",
            f"MCP start_thread on a warm server / direct "
            f"(median {median['start_thread'] * 1000:.0f} ms)",
            f"{start_ratio:.3f}",
        ),
        Row(
            "warm turns",
            "codex app-server alone, bare JSON-RPC / direct "
            f"(median {median['floor'] * 1000:.0f} ms)",
            f"{floor_ratio:.3f}",
        ),
        Row(
            "warm turns",
            "what the SDK and the MCP server add: run_turn − bare",
            f"{added * 1000:.1f} ms",
        ),
        Row("warm turns", "first start_thread of a fresh server (cold)", f"{cold * 1000:.0f} ms"),
        Row(
            "warm turns",
            f"RSS with {LOADED_THREADS} threads loaded: server + app-server",
            f"{server_rss / MIB:.1f} + {app_server_rss / MIB:.1f} MiB",
        ),
    ]
    return {
        "method": (
            "rotating rounds of: codex exec direct (a new thread, the argv and env of the exec "
            "engine), MCP run_turn on one warm thread, MCP start_thread (stdio, "
            "--backend app-server), and a warm turn on a codex app-server of its own in bare "
            "JSON-RPC (floor); the scripted model answers at once"
        ),
        "rounds": settings.warm_rounds,
        "warmup_rounds": settings.warmup,
        **{side: summary_ms(timings[side]) for side in SIDES},
        "run_turn_vs_direct": {
            "ratio_of_medians": round(ratio, 4),
            "target_ratio": RATIO_TARGET,
            "target_met": met,
        },
        "start_thread_vs_direct": {"ratio_of_medians": round(start_ratio, 4)},
        "floor_vs_direct": {"ratio_of_medians": round(floor_ratio, 4)},
        "run_turn_minus_floor_ms": round(added * 1000, 2),
        "cold_start_thread_ms": round(cold * 1000, 1),
        "rss_mib_with_loaded_threads": {
            "threads": LOADED_THREADS,
            "server": round(server_rss / MIB, 1),
            "app_server_and_children": round(app_server_rss / MIB, 1),
        },
        "rows": rows,
    }
