"""Reliability: the host cancels, closes stdin or stops the server at random moments.

Whatever moment it hits (before codex names the thread, while a command runs, while the
final message is on its way, or any time at all), no codex process is left and no turn
stays ``running``. Each test runs ``CODEX_MCP_FAULT_ROUNDS`` rounds (default 20) of a
schedule drawn from a seeded generator; the seed is printed, and ``CODEX_MCP_FAULT_SEED``
replays it.

Every turn is the same: the model asks for ``sleep 0.3``, then answers "done" after 0.2 s.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.types import CallToolResult

from codex_mcp_server.server import Settings
from codex_mcp_server.testing import RecordedRequest, Reply, ScriptedModel, codex_env, replies

from .faults import fault_rounds, seeded, until, wait_for
from .procs import codex_only, codex_processes, describe, turn_processes, wait_until_gone
from .server_support import ProgressLog, exec_only, serve, structured, text
from .test_server_http import (
    MCP_HEADERS,
    HttpServer,
    StartServer,
    _connect,
    _http,
    start_server,  # noqa: F401  (fixture)
)
from .test_server_stdio import RawServer, _server_command
from .test_server_tools import server_env  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("backend")

PHASES = ("before-thread-started", "mid-command", "final-message", "any-time")
FINAL = {"completed", "interrupted", "failed"}
ROUND_TIMEOUT = 60.0
SETTLE_TIMEOUT = 15.0


def _command_then_message(request: RecordedRequest) -> Reply:
    if request.input and request.input[-1].get("type") == "function_call_output":
        return replies.message("done", delay=0.2)
    return replies.command("sleep 0.3", login=False)


@pytest.fixture
def scripted(model: ScriptedModel) -> ScriptedModel:
    model.respond_with(_command_then_message)
    return model


@dataclass
class Schedule:
    """The seeded draws of a test, and a tally of what the rounds met."""

    seed: int
    rng: random.Random
    outcomes: dict[str, int] = field(default_factory=dict)

    def count(self, what: str) -> None:
        self.outcomes[what] = self.outcomes.get(what, 0) + 1

    def report(self) -> None:
        print(f"seed {self.seed}: {dict(sorted(self.outcomes.items()))}")


@pytest.fixture
def schedule() -> Schedule:
    seed, rng = seeded()
    return Schedule(seed, rng)


def _draw_delay(rng: random.Random, phase: str) -> float:
    """How long after the phase begins to strike."""
    if phase == "before-thread-started":
        return rng.uniform(0.0, 0.15)  # Codex takes longer than this to name the thread.
    if phase == "mid-command":
        return rng.uniform(0.0, 0.25)  # The command sleeps 0.3 s.
    if phase == "final-message":
        return rng.uniform(0.0, 0.15)  # The message comes 0.2 s after codex asks.
    return rng.uniform(0.0, 1.5)  # The whole turn takes about a second.


# ---------------------------------------------------------------- cancelled calls


async def _settled(client: Client, where: str) -> list[dict[str, Any]]:
    """Every thread once none is running; fails if one stays running."""
    with anyio.move_on_after(SETTLE_TIMEOUT):
        while True:
            threads = structured(await client.call_tool("list_threads", {}))["threads"]
            if all(t["status"] == "idle" for t in threads):
                return list(threads)
            await anyio.sleep(0.02)
    pytest.fail(f"{where}: a turn is still running {SETTLE_TIMEOUT} s after the cancel")


async def _cancel_round(
    client: Client,
    model: ScriptedModel,
    schedule: Schedule,
    index: int,
    base_thread: str,
    find: Callable[[Path], list[int]],
    home: Path,
) -> None:
    rng = schedule.rng
    kind = rng.choice(["start_thread", "run_turn", "background start_thread"])
    phase = rng.choice(PHASES)
    delay = _draw_delay(rng, phase)
    where = f"seed {schedule.seed} round {index}: {kind}, cancel {phase} +{delay:.3f} s"
    print(where)
    # Cancelling a background start before codex names the thread stops the turn (the host
    # has no id for it); once named, the call has returned and the turn runs on.
    background = kind.startswith("background")
    tool = kind.removeprefix("background ")
    arguments: dict[str, Any] = {"prompt": f"round {index}", "background": background}
    if tool == "run_turn":
        arguments["thread_id"] = base_thread
    before = {t["thread_id"] for t in await _settled(client, where)}
    asked = len(model.requests)
    progress = ProgressLog()
    outcome: dict[str, CallToolResult] = {}
    call_scope = anyio.CancelScope()

    async def call(group_scope: anyio.CancelScope) -> None:
        with call_scope:
            outcome["result"] = await client.call_tool(tool, arguments, progress_callback=progress)
        group_scope.cancel()

    async def strike() -> None:
        if phase == "mid-command":
            await until(lambda: any(m.startswith("$ ") for m in progress.messages))
        elif phase == "final-message":
            await until(lambda: len(model.requests) >= asked + 2)
        await anyio.sleep(delay)
        call_scope.cancel()

    with anyio.fail_after(ROUND_TIMEOUT):
        async with anyio.create_task_group() as group:
            group.start_soon(call, group.cancel_scope)
            group.start_soon(strike)

    left = await anyio.to_thread.run_sync(wait_until_gone, home, 10.0, find)
    assert left == [], f"{where}: codex left behind\n{describe(left)}"
    threads = await _settled(client, where)
    new = [t["thread_id"] for t in threads if t["thread_id"] not in before]
    assert len(new) <= 1, (where, new)
    thread_id = base_thread if tool == "run_turn" else (new[0] if new else None)
    if "result" in outcome:
        result = outcome["result"]
        assert not result.is_error, f"{where}: {text(result)}"
        answered = structured(result)["status"]
        assert answered == ("running" if background else "completed"), (where, answered)
    if thread_id is None:
        schedule.count(f"{kind}, {phase}: cancelled before codex named the thread")
        return
    info = structured(await client.call_tool("get_thread", {"thread_id": thread_id}))
    statuses = [t["status"] for t in info["turns"]]
    assert set(statuses) <= FINAL, (where, statuses)
    last = info["turns"][-1]
    assert last["prompt"] == arguments["prompt"], where
    if background or "result" in outcome:
        assert last["status"] == "completed", (where, last)
    else:
        assert last["status"] in ("interrupted", "completed"), (where, last)
    cancelled = "" if "result" in outcome else "cancelled, "
    schedule.count(f"{kind}, {phase}: {cancelled}{last['status']}")


async def _cancel_rounds(
    client: Client,
    model: ScriptedModel,
    schedule: Schedule,
    home: Path,
    find: Callable[[Path], list[int]],
) -> None:
    started = await client.call_tool("start_thread", {"prompt": "base"})
    assert not started.is_error, text(started)
    base_thread = structured(started)["thread_id"]
    for index in range(fault_rounds()):
        await _cancel_round(client, model, schedule, index, base_thread, find, home)
    schedule.report()
    # The server still works, and so does the thread every run_turn round went to.
    final = await client.call_tool("run_turn", {"thread_id": base_thread, "prompt": "last"})
    assert not final.is_error, text(final)
    assert structured(final)["final_response"] == "done"
    for thread in await _settled(client, f"seed {schedule.seed}, the end"):
        info = structured(await client.call_tool("get_thread", {"thread_id": thread["thread_id"]}))
        assert {t["status"] for t in info["turns"]} <= FINAL, info["turns"]


async def test_cancelling_in_memory_calls_at_random_moments(
    server_env: Path,  # noqa: F811
    workdir: Path,
    scripted: ScriptedModel,
    schedule: Schedule,
) -> None:
    settings = Settings(cwd=workdir, heartbeat_interval=30.0)
    async with Client(serve(settings)) as client:
        await _cancel_rounds(client, scripted, schedule, server_env, turn_processes)
    left = await anyio.to_thread.run_sync(wait_until_gone, server_env, 10.0)
    assert left == [], describe(left)


@asynccontextmanager
async def _stdio_client(home: Path, workdir: Path) -> AsyncIterator[Client]:
    command = _server_command(workdir, "--heartbeat-interval", "30")
    params = StdioServerParameters(command=command[0], args=command[1:], env=codex_env(home))
    async with Client(params) as client:
        yield client


async def test_cancelling_stdio_calls_at_random_moments(
    codex_home: Path, workdir: Path, scripted: ScriptedModel, schedule: Schedule
) -> None:
    async with _stdio_client(codex_home, workdir) as client:
        await _cancel_rounds(client, scripted, schedule, codex_home, turn_processes)
    left = await anyio.to_thread.run_sync(wait_until_gone, codex_home, 10.0)
    assert left == [], describe(left)


async def test_interrupting_a_first_turn_as_soon_as_it_starts_keeps_the_thread(
    server_env: Path,  # noqa: F811
    workdir: Path,
    scripted: ScriptedModel,
) -> None:
    """A host starts a thread in the background and stops it at once (it changed its mind):
    interrupt_turn promises the thread stays usable. Codex saves a thread only a moment
    after naming it, so a few tries meet that moment."""
    settings = Settings(cwd=workdir, heartbeat_interval=30.0)
    async with Client(serve(settings)) as client:
        broken = []
        for attempt in range(3):
            started = await client.call_tool(
                "start_thread", {"prompt": f"attempt {attempt}", "background": True}
            )
            assert not started.is_error, text(started)
            thread_id = structured(started)["thread_id"]
            stopped = await client.call_tool("interrupt_turn", {"thread_id": thread_id})
            assert structured(stopped)["status"] in ("interrupted", "idle")
            left = await anyio.to_thread.run_sync(wait_until_gone, server_env, 10.0, turn_processes)
            assert left == [], describe(left)
            again = await client.call_tool("run_turn", {"thread_id": thread_id, "prompt": "go"})
            if again.is_error:
                broken.append(f"{thread_id}: {text(again)}")
        assert broken == [], "\n\n".join(broken)


# ------------------------------------------------------- the host goes away mid-turn


class _Servers:
    """Servers started ahead of their round: importing ``mcp`` takes a couple of seconds of
    CPU, which the rounds before would otherwise not overlap with."""

    AHEAD = 2

    def __init__(self, home: Path, workdir: Path, count: int) -> None:
        self._command = _server_command(workdir, "--heartbeat-interval", "30")
        self._env = codex_env(home)
        self._left = count  # Servers still to hand out, the ready ones included.
        self._ready: list[RawServer] = []
        self._top_up()

    def _top_up(self) -> None:
        while len(self._ready) < min(self.AHEAD, self._left):
            self._ready.append(RawServer(self._command, self._env))

    def take(self) -> RawServer:
        server = self._ready.pop(0)
        self._left -= 1
        self._top_up()
        return server

    def close(self) -> None:
        for server in self._ready:
            server.process.kill()
            server.process.wait()


def _stop_round(
    server: RawServer, home: Path, model: ScriptedModel, schedule: Schedule, index: int
) -> None:
    rng = schedule.rng
    how = rng.choice(["close stdin", "SIGTERM"])
    tool = rng.choice(["start_thread", "background start_thread"])
    phase = rng.choice(PHASES)
    delay = _draw_delay(rng, phase)
    where = f"seed {schedule.seed} round {index}: {how} during {tool}, {phase} +{delay:.3f} s"
    print(where)
    # RawServer reads without a timeout: a server stuck for good is killed, which ends the
    # read (and the round, with a failure) instead of hanging the run.
    watchdog = threading.Timer(2 * ROUND_TIMEOUT, server.process.kill)
    watchdog.start()
    try:
        server.initialize()
        asked = len(model.requests)
        arguments = {"prompt": f"round {index}", "background": tool.startswith("background")}
        server.send(
            "tools/call",
            {"name": "start_thread", "arguments": arguments, "_meta": {"progressToken": index}},
        )
        # The model is in this process, so its requests tell how far codex has got.
        if phase == "mid-command":
            model.wait_for_requests(asked + 1, ROUND_TIMEOUT)
            delay += 0.05  # The command starts once codex has the reply.
        elif phase == "final-message":
            model.wait_for_requests(asked + 2, ROUND_TIMEOUT)
        time.sleep(delay)
        assert server.process.stdin is not None
        if how == "close stdin":
            server.process.stdin.close()
        else:
            server.process.send_signal(signal.SIGTERM)
        code = server.wait(timeout=30)
    finally:
        watchdog.cancel()
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()
    # The servers of later rounds share the home: count codex and its commands only.
    left = wait_until_gone(home, timeout=10.0, find=codex_only)
    assert left == [], f"{where}: codex left behind\n{describe(left)}"
    assert code == 0, f"{where}: the server exited with {code}"
    assert server.process.stdout is not None and server.process.stderr is not None
    for line in server.process.stdout.read().splitlines():
        json.loads(line)  # Nothing but the protocol on stdout, even while stopping.
    stderr = server.process.stderr.read().decode()
    assert "Traceback" not in stderr, f"{where}\n{stderr}"
    schedule.count(f"{how}, {phase}")


def test_closing_stdin_or_sigterm_at_random_moments(
    codex_home: Path, workdir: Path, scripted: ScriptedModel, schedule: Schedule
) -> None:
    rounds = fault_rounds()
    servers = _Servers(codex_home, workdir, rounds)
    try:
        for index in range(rounds):
            _stop_round(servers.take(), codex_home, scripted, schedule, index)
    finally:
        servers.close()
    schedule.report()
    assert wait_for(lambda: codex_processes(codex_home) == [], 5.0)


# ------------------------------------------------------------ cancelled while queued


def _answer(request: RecordedRequest) -> Reply:
    return replies.message(f"answer to {request.last_user_text}")


@exec_only  # The app-server names the thread at once: the call returns before it queues.
async def test_a_background_start_cancelled_in_the_queue_never_runs(
    server_env: Path,  # noqa: F811
    workdir: Path,
    model: ScriptedModel,
) -> None:
    """The host gives up on a background start_thread while its turn waits for a slot. It
    never got a thread id, so codex must not run the prompt later as a thread nobody knows."""
    model.add(replies.hang())
    model.respond_with(_answer)
    settings = Settings(cwd=workdir, max_concurrent_turns=1, heartbeat_interval=30.0)
    async with Client(serve(settings)) as client:
        first = await client.call_tool("start_thread", {"prompt": "first", "background": True})
        first_id = structured(first)["thread_id"]
        await anyio.to_thread.run_sync(model.wait_for_requests, 1, 20.0)

        progress = ProgressLog()
        with anyio.fail_after(ROUND_TIMEOUT), anyio.CancelScope() as host:

            async def second() -> None:
                await client.call_tool(
                    "start_thread",
                    {"prompt": "second", "background": True},
                    progress_callback=progress,
                )
                raise AssertionError("the second start returned while the first held the slot")

            async with anyio.create_task_group() as group:
                group.start_soon(second)
                await progress.seen.wait()
                assert progress.messages == [
                    "queued: waiting for a free slot (1 turn running, at most 1)"
                ]
                host.cancel()

        stopped = await client.call_tool("interrupt_turn", {"thread_id": first_id})
        assert structured(stopped)["status"] == "interrupted"
        # The queue is first come, first served: had the second turn stayed in it, it would
        # run before this one.
        third = await client.call_tool("start_thread", {"prompt": "third"})
        assert structured(third)["final_response"] == "answer to third"
        prompts = [request.last_user_text for request in model.requests]
        assert "second" not in prompts, prompts
        listed = structured(await client.call_tool("list_threads", {}))["threads"]
        assert sorted(t["thread_id"] for t in listed) == sorted(
            [first_id, structured(third)["thread_id"]]
        )
    left = await anyio.to_thread.run_sync(wait_until_gone, server_env, 10.0)
    assert left == [], describe(left)


# ------------------------------------------------------ a client that stops reading


def _stop_reading_after_first_progress(
    server: HttpServer, session: str, thread_id: str
) -> socket.socket:
    """A raw HTTP client that calls wait_turn with a progress token, reads up to the first
    progress notification, then reads no more (its window kept small so the server's writes
    back up soon). The caller closes the socket."""
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 7,
            "method": "tools/call",
            "params": {
                "name": "wait_turn",
                "arguments": {"thread_id": thread_id, "timeout_s": 110},
                "_meta": {"progressToken": "stalled"},
            },
        }
    ).encode()
    head = (
        f"POST /mcp HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n"
        "Accept: application/json, text/event-stream\r\nContent-Type: application/json\r\n"
        f"Mcp-Session-Id: {session}\r\nMcp-Protocol-Version: 2025-06-18\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(30)
    raw.connect((server.host, server.port))
    raw.sendall(head + body)
    seen = b""
    while b"notifications/progress" not in seen:
        chunk = raw.recv(1024)
        assert chunk, seen
        seen += chunk
    return raw


async def test_a_client_that_stops_reading_holds_up_no_other_turn(
    start_server: StartServer,  # noqa: F811
    model: ScriptedModel,
    codex_home: Path,
) -> None:
    """Over HTTP, a client that called wait_turn and stopped reading its socket once kept
    another client's turn running after codex had finished, holding its queue slot."""
    release = threading.Event()
    chatty = replies.reply(
        # Four bytes a character: more than the socket buffers hold (a few MB) in fewer lines.
        *(replies.reasoning_item(f"step {i}: " + "\U0001f600" * 190) for i in range(8000)),
        replies.assistant_item("all steps done"),
    )

    def answer(request: RecordedRequest) -> Reply:
        if request.last_user_text == "many steps":
            release.wait(60)
            return chatty
        return replies.message(f"answer to {request.last_user_text}")

    model.respond_with(answer)
    server = start_server(extra=["--max-concurrent-turns", "1", "--heartbeat-interval", "0.2"])
    with anyio.fail_after(120):
        async with AsyncExitStack() as stack:
            client = await _connect(stack, server.url)
            started = await client.call_tool(
                "start_thread", {"prompt": "many steps", "background": True}
            )
            thread_id = structured(started)["thread_id"]

            async with _http() as http:
                initialized = await server.initialize(http)
                session = initialized.headers["mcp-session-id"]
                notice = {"jsonrpc": "2.0", "method": "notifications/initialized"}
                headers = {**MCP_HEADERS, "Mcp-Session-Id": session}
                await http.post(server.url, json=notice, headers=headers)
            stalled = await anyio.to_thread.run_sync(
                _stop_reading_after_first_progress, server, session, thread_id
            )
            try:
                release.set()
                waited = await client.call_tool(
                    "wait_turn", {"thread_id": thread_id, "timeout_s": 60}
                )
                assert structured(waited)["status"] == "completed", text(waited)
                assert structured(waited)["final_response"] == "all steps done"
                # The slot is free: with one turn at a time, this one runs.
                again = await client.call_tool(
                    "run_turn", {"thread_id": thread_id, "prompt": "and now?"}
                )
                assert structured(again)["final_response"] == "answer to and now?"
            finally:
                stalled.close()
    left = await anyio.to_thread.run_sync(wait_until_gone, codex_home, 10.0, turn_processes)
    assert left == [], describe(left)


# ------------------------------------------- commands that escape group and marker alike


_ESCAPEE = b"299.4217"
"""A sleep's argument, to tell the escaped command from every other process."""


def _escapees(argument: bytes = _ESCAPEE) -> list[int]:
    """Live (not zombie) processes running ``sleep 299.4217`` (or another ``argument``)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if (entry / "cmdline").read_bytes() != b"sleep\0" + argument + b"\0":
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            found.append(int(entry.name))
    return found


def _environ(pid: int) -> bytes:
    return Path(f"/proc/{pid}/environ").read_bytes()


@pytest.mark.parametrize("stop", ["interrupt_turn", "server exit"])
async def test_a_command_that_escapes_the_group_and_the_marker_is_stopped_too(
    codex_home: Path, workdir: Path, model: ScriptedModel, stop: str
) -> None:
    """Under danger-full-access, ``env -i setsid cmd &`` leaves codex's process group and
    drops the environment marker; it once outlived interrupt_turn and the server."""
    escape = f"env -i setsid sleep {_ESCAPEE.decode()} >/dev/null 2>&1 &"
    model.add(replies.command(escape, login=False), replies.hang())
    command = _server_command(workdir, "--max-sandbox", "danger-full-access")
    params = StdioServerParameters(command=command[0], args=command[1:], env=codex_env(codex_home))
    escaped: list[int] = []
    try:
        with anyio.fail_after(ROUND_TIMEOUT):
            async with Client(params) as client:
                arguments = {
                    "prompt": "escape",
                    "sandbox_mode": "danger-full-access",
                    "background": True,
                }
                started = await client.call_tool("start_thread", arguments)
                thread_id = structured(started)["thread_id"]
                await anyio.to_thread.run_sync(model.wait_for_requests, 2, 30.0)
                assert await anyio.to_thread.run_sync(wait_for, _escapees, 10.0)
                escaped = _escapees()
                assert len(escaped) == 1, describe(escaped)
                assert b"CODEX_HOME" not in _environ(escaped[0])  # The marker's gone too.
                if stop == "interrupt_turn":
                    stopped = await client.call_tool("interrupt_turn", {"thread_id": thread_id})
                    assert structured(stopped)["status"] == "interrupted"
                    # Gone, and reaped: no zombie is left in the process table either.
                    gone = await anyio.to_thread.run_sync(
                        wait_for, lambda: not Path(f"/proc/{escaped[0]}").exists(), 5.0
                    )
                    assert gone, describe(escaped)
        gone = await anyio.to_thread.run_sync(wait_for, lambda: not _escapees(), 5.0)
        assert gone, describe(_escapees())
    finally:
        for pid in _escapees():
            os.kill(pid, signal.SIGKILL)


async def test_ending_a_turn_leaves_the_escapees_of_a_running_turn_alone(
    codex_home: Path, workdir: Path, model: ScriptedModel
) -> None:
    """An orphan says only when it started: a turn that ends stops those that started after
    it began, but not while another turn that may own them is still running."""
    first, second = b"299.4218", b"299.4219"
    for argument in (first, second):
        escape = f"env -i setsid sleep {argument.decode()} >/dev/null 2>&1 &"
        model.add(replies.command(escape, login=False), replies.hang())
    command = _server_command(workdir, "--max-sandbox", "danger-full-access")
    params = StdioServerParameters(command=command[0], args=command[1:], env=codex_env(codex_home))
    try:
        with anyio.fail_after(ROUND_TIMEOUT):
            async with Client(params) as client:
                threads = []
                for index, argument in enumerate((first, second)):
                    arguments = {
                        "prompt": f"escape {index}",
                        "sandbox_mode": "danger-full-access",
                        "background": True,
                    }
                    started = await client.call_tool("start_thread", arguments)
                    threads.append(structured(started)["thread_id"])
                    await anyio.to_thread.run_sync(model.wait_for_requests, 2 * index + 2, 30.0)
                    assert await anyio.to_thread.run_sync(
                        wait_for, partial(_escapees, argument), 10.0
                    )

                await client.call_tool("interrupt_turn", {"thread_id": threads[0]})
                gone = await anyio.to_thread.run_sync(wait_for, lambda: not _escapees(first), 5.0)
                assert gone, describe(_escapees(first))
                assert _escapees(second), "the running turn's command was stopped"

                await client.call_tool("interrupt_turn", {"thread_id": threads[1]})
                gone = await anyio.to_thread.run_sync(wait_for, lambda: not _escapees(second), 5.0)
                assert gone, describe(_escapees(second))
    finally:
        for pid in _escapees(first) + _escapees(second):
            os.kill(pid, signal.SIGKILL)
