"""Reliability under load: 200 turns over 20 threads, 8 at a time, some cancelled.

Every turn ends in a final state, the counts add up, and nothing leaks: no codex process,
no output-schema directory, no file descriptor beyond the baseline. The schedule (which
turns are cancelled, when, which carry an output schema) comes from a seeded generator;
the seed is printed, and ``CODEX_MCP_FAULT_SEED`` replays it.
"""

from __future__ import annotations

import random
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from codex_mcp_server.server import Settings
from codex_mcp_server.testing import RecordedRequest, Reply, ScriptedModel, replies

from .faults import open_fds, schema_dirs, seeded, until
from .procs import codex_processes, describe, wait_until_gone
from .server_support import serve, structured, text
from .test_server_tools import server_env  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("backend")

THREADS = 20
TURNS_PER_THREAD = 10
CONCURRENCY = 8
CANCEL_SHARE = 0.15
SCHEMA_SHARE = 0.25
FD_SLACK = 4
TIMEOUT = 120.0
"""For the whole run; it takes well under a minute."""

SCHEMA = {
    "type": "object",
    "properties": {"prompt": {"type": "string"}},
    "required": ["prompt"],
    "additionalProperties": False,
}


class _Model:
    """Answers every request after a short random delay; in JSON when a schema is asked."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._lock = threading.Lock()  # The scripted server answers in many threads.

    def __call__(self, request: RecordedRequest) -> Reply:
        with self._lock:
            delay = self._rng.uniform(0.0, 0.05)
        text_format = request.body.get("text", {}).get("format", {})
        if text_format.get("type") == "json_schema":
            return replies.structured({"prompt": request.last_user_text}, delay=delay)
        return replies.message(f"answer to {request.last_user_text}", delay=delay)


@dataclass(frozen=True)
class _Turn:
    prompt: str
    schema: bool
    cancel_after: float | None
    """Seconds after the server took the turn on to cancel its call; ``None``: not cancelled."""


def _plan(rng: random.Random) -> list[list[_Turn]]:
    plan = []
    for thread in range(THREADS):
        turns = []
        for index in range(TURNS_PER_THREAD):
            # The first turn names the thread: cancelling it could leave no thread to count.
            cancel = index > 0 and rng.random() < CANCEL_SHARE
            turns.append(
                _Turn(
                    prompt=f"thread {thread} turn {index}",
                    schema=rng.random() < SCHEMA_SHARE,
                    cancel_after=rng.uniform(0.0, 0.5) if cancel else None,
                )
            )
        plan.append(turns)
    return plan


def _check_answer(turn: _Turn, result: dict[str, Any]) -> None:
    if turn.schema:
        assert result["structured_output"] == {"prompt": turn.prompt}, result
    else:
        assert result["final_response"] == f"answer to {turn.prompt}", result


async def _turns_recorded(client: Client, thread_id: str) -> int:
    info = structured(await client.call_tool("get_thread", {"thread_id": thread_id}))
    return len(info["turns"])


async def _idle(client: Client, thread_id: str) -> None:
    while True:
        info = structured(await client.call_tool("get_thread", {"thread_id": thread_id}))
        if info["status"] == "idle":
            return
        await anyio.sleep(0.05)


async def _cancelled_call(
    client: Client, thread_id: str, index: int, arguments: dict[str, Any], delay: float
) -> bool:
    """Run the turn and cancel its call ``delay`` s after the server took it on (queued or
    running, so that it counts); whether the cancel came before the result."""
    scope = anyio.CancelScope()

    async def call(group_scope: anyio.CancelScope) -> None:
        with scope:
            await client.call_tool("run_turn", arguments)
        group_scope.cancel()

    async def strike() -> None:
        while True:
            if await _turns_recorded(client, thread_id) > index:
                break
            await anyio.sleep(0.02)
        await anyio.sleep(delay)
        scope.cancel()

    async with anyio.create_task_group() as group:
        group.start_soon(call, group.cancel_scope)
        group.start_soon(strike)
    return scope.cancelled_caught


async def _run_thread(client: Client, turns: list[_Turn], cancelled: list[tuple[str, str]]) -> str:
    thread_id = ""
    for index, turn in enumerate(turns):
        arguments: dict[str, Any] = {"prompt": turn.prompt}
        if turn.schema:
            arguments["output_schema"] = SCHEMA
        if index == 0:
            result = await client.call_tool("start_thread", arguments)
            assert not result.is_error, text(result)
            thread_id = structured(result)["thread_id"]
            _check_answer(turn, structured(result))
            continue
        arguments["thread_id"] = thread_id
        if turn.cancel_after is None:
            result = await client.call_tool("run_turn", arguments)
            assert not result.is_error, text(result)
            assert structured(result)["status"] == "completed"
            _check_answer(turn, structured(result))
            continue

        if await _cancelled_call(client, thread_id, index, arguments, turn.cancel_after):
            cancelled.append((thread_id, f"turn-{index + 1}"))
        # A cancelled call returns at once; the server ends the turn a moment later.
        await _idle(client, thread_id)
    return thread_id


async def test_200_turns_over_20_threads_with_random_cancels(
    server_env: Path,  # noqa: F811
    workdir: Path,
    model: ScriptedModel,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seed, rng = seeded()
    # A temporary directory of our own, so that other test runs cannot blur the count.
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    model.respond_with(_Model(seed))
    plan = _plan(rng)
    fds_before = open_fds()
    settings = Settings(cwd=workdir, max_concurrent_turns=CONCURRENCY, heartbeat_interval=30.0)
    thread_ids: list[str] = [""] * THREADS
    cancelled: list[tuple[str, str]] = []

    async with Client(serve(settings)) as client:
        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as group:

                async def worker(number: int) -> None:
                    thread_ids[number] = await _run_thread(client, plan[number], cancelled)

                for number in range(THREADS):
                    group.start_soon(worker, number)

        statuses: Counter[str] = Counter()
        listed = structured(await client.call_tool("list_threads", {}))["threads"]
        assert sorted(t["thread_id"] for t in listed) == sorted(thread_ids)
        assert all(t["status"] == "idle" for t in listed), listed
        assert schema_dirs(server_env) == set()  # Each turn removed its own, while serving.
        for thread_id, turns in zip(thread_ids, plan, strict=True):
            info = structured(await client.call_tool("get_thread", {"thread_id": thread_id}))
            assert len(info["turns"]) == TURNS_PER_THREAD, (seed, thread_id)
            assert [t["prompt"] for t in info["turns"]] == [t.prompt for t in turns]
            for planned, recorded in zip(turns, info["turns"], strict=True):
                statuses[recorded["status"]] += 1
                if (thread_id, recorded["turn_id"]) in cancelled:
                    assert recorded["status"] in ("interrupted", "completed"), (seed, recorded)
                else:
                    assert recorded["status"] == "completed", (seed, recorded)
                if recorded["status"] == "completed":
                    _check_answer(planned, recorded)
        print(f"seed {seed}: {dict(statuses)}, {len(cancelled)} calls cancelled")
        assert sum(statuses.values()) == THREADS * TURNS_PER_THREAD
        assert set(statuses) <= {"completed", "interrupted", "failed"}
        assert statuses["interrupted"] <= len(cancelled)

    left = await anyio.to_thread.run_sync(wait_until_gone, server_env, 10.0)
    assert left == [], describe(left)
    assert codex_processes(server_env) == []
    assert schema_dirs(server_env) == set()
    # Codex's connections to the model and its pipes close a moment after it exits.
    with anyio.move_on_after(10.0):
        await until(lambda: open_fds() <= fds_before + FD_SLACK)
    assert open_fds() <= fds_before + FD_SLACK, (
        f"{open_fds()} file descriptors open, {fds_before} before the run"
    )
