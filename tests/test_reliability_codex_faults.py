"""Reliability: codex misbehaves; the server answers with a clear error and carries on.

Every fault must give an error result (``isError``) whose message names the problem, leave
no codex process behind, keep the thread usable (a next ``run_turn`` works, or
``resume_thread`` on a restarted server when the first turn broke after codex named the
thread) and keep the server answering. Faults the real binary can produce are produced
with it; the others come from a stand-in codex (``tests/faults.py``) that runs the real
binary for the calls around the faulty one.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.types import CallToolResult

from codex_mcp_server.sdk.locate import INSTALL_HINT
from codex_mcp_server.server import Settings
from codex_mcp_server.server.turns import MAX_STRUCTURED_DEPTH
from codex_mcp_server.testing import RecordedRequest, Reply, ScriptedModel, codex_env, replies

from .faults import (
    REAL,
    FaultyCodex,
    act,
    codex_runners,
    faulty_codex,
    relay,
    thread_started,
    turn_started,
    wait_for,
)
from .procs import codex_only, codex_processes, describe, turn_processes, wait_until_gone
from .server_support import exec_only, serve, structured, text
from .test_server_http import (
    StartServer,
    _connect,
    start_server,  # noqa: F401  (fixture)
)
from .test_server_tools import server_env  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("backend")

CALL_TIMEOUT = 60.0
"""Upper bound for one tool call on a loaded machine; only a hang comes near it."""


def _answer(request: RecordedRequest) -> Reply:
    return replies.message(f"answer to {request.last_user_text}")


@pytest.fixture
def answering(model: ScriptedModel) -> ScriptedModel:
    """The model answers every request nobody scripted: a request a fault cut short may or
    may not have reached it, so nothing depends on a queue staying in step."""
    model.respond_with(_answer)
    return model


@asynccontextmanager
async def _serving(workdir: Path, **settings: Any) -> AsyncIterator[Client]:
    config = Settings(cwd=workdir, heartbeat_interval=30.0, **settings)
    async with Client(serve(config)) as client:
        yield client


async def _call(client: Client, tool: str, arguments: dict[str, Any]) -> CallToolResult:
    with anyio.fail_after(CALL_TIMEOUT):
        return await client.call_tool(tool, arguments)


IDLE_STOP = "turn was stopped"
"""What an idle timeout says; see :func:`_call_healthy`."""


async def _call_healthy(
    client: Client, tool: str, arguments: dict[str, Any], *, idle: bool
) -> CallToolResult:
    """A call that should succeed. Under a 1 s idle timeout (``idle``), a loaded machine can
    hold codex's own start past it; only that failure is tried again, a few times."""
    for _ in range(4 if idle else 1):
        result = await _call(client, tool, arguments)
        if not (idle and result.is_error and IDLE_STOP in text(result)):
            break
    return result


async def _start(client: Client, *, idle: bool = False) -> str:
    result = await _call_healthy(client, "start_thread", {"prompt": "begin"}, idle=idle)
    assert not result.is_error, text(result)
    assert structured(result)["final_response"] == "answer to begin"
    thread_id: str = structured(result)["thread_id"]
    return thread_id


def _failed_turn(result: CallToolResult, *expected: str) -> dict[str, Any]:
    """The result is an error result for a failed turn whose message says ``expected``."""
    assert result.is_error, text(result)
    turn = structured(result)
    assert turn["status"] == "failed", turn
    for phrase in expected:
        assert phrase in turn["error"], turn["error"]
        assert phrase in text(result), text(result)
    return turn


async def _thread_is_usable(
    client: Client, thread_id: str, prompt: str = "go on", *, idle: bool = False
) -> None:
    arguments = {"thread_id": thread_id, "prompt": prompt}
    result = await _call_healthy(client, "run_turn", arguments, idle=idle)
    assert not result.is_error, text(result)
    assert structured(result)["status"] == "completed"
    assert structured(result)["final_response"] == f"answer to {prompt}"


async def _resumable(workdir: Path, thread_id: str, **settings: Any) -> None:
    """A restarted server takes the thread up again and runs a turn on it."""
    async with _serving(workdir, **settings) as client:
        result = await _call(
            client, "resume_thread", {"thread_id": thread_id, "prompt": "after restart"}
        )
        assert not result.is_error, text(result)
        assert structured(result)["final_response"] == "answer to after restart"


async def _server_is_up(client: Client, *idle_threads: str) -> None:
    listed = await _call(client, "list_threads", {})
    assert not listed.is_error, text(listed)
    statuses = {t["thread_id"]: t["status"] for t in structured(listed)["threads"]}
    for thread_id in idle_threads:
        assert statuses[thread_id] == "idle", statuses


async def _no_codex_left(home: Path, *, serving: bool = True) -> None:
    """No process of a turn is left; once the server is gone (``serving=False``), none at
    all (the app-server engine keeps its one process while the server runs)."""
    find = turn_processes if serving else codex_processes
    left = await anyio.to_thread.run_sync(wait_until_gone, home, 10.0, find)
    assert left == [], describe(left)


async def _kill_codex_when_asked(model: ScriptedModel, home: Path, requests: int) -> None:
    """SIGKILL the real codex once the model holds its request (a ``hang()`` reply)."""
    await anyio.to_thread.run_sync(model.wait_for_requests, requests, 30.0)
    pids = codex_runners(home)
    assert len(pids) == 1, describe(pids)
    os.kill(pids[0], signal.SIGKILL)


# ------------------------------------------------------------------ the real binary


def _running_command(home: Path, needle: bytes) -> bool:
    for pid in codex_processes(home):
        try:
            if needle in Path(f"/proc/{pid}/cmdline").read_bytes():
                return True
        except OSError:
            continue
    return False


_DETACHED = "setsid sleep 30 & wait"
"""A command whose child leaves codex's process group for a session of its own. Outside a
sandbox nothing else stops it when codex dies (bubblewrap's PID namespace would, where the
machine allows one; not every machine does)."""


@pytest.mark.parametrize(
    "moment", ["waiting for the model", "running a command", "running a detached command"]
)
async def test_codex_killed_mid_turn(
    server_env: Path,  # noqa: F811
    workdir: Path,
    answering: ScriptedModel,
    moment: str,
) -> None:
    detached = moment == "running a detached command"
    sandbox = {"max_sandbox": "danger-full-access", "default_sandbox": "danger-full-access"}
    async with _serving(workdir, **(sandbox if detached else {})) as client:
        thread_id = await _start(client)
        if moment != "waiting for the model":
            # Codex's command outlives a SIGKILLed codex unless the server stops it.
            cmd = _DETACHED if detached else "sleep 30"
            answering.add(replies.command(cmd, login=False))
        else:
            answering.add(replies.hang())
        outcome: dict[str, CallToolResult] = {}

        async def long_turn() -> None:
            outcome["result"] = await _call(
                client, "run_turn", {"thread_id": thread_id, "prompt": "long"}
            )

        async with anyio.create_task_group() as group:
            group.start_soon(long_turn)
            if moment != "waiting for the model":
                await anyio.to_thread.run_sync(answering.wait_for_requests, 2, 30.0)
                found = await anyio.to_thread.run_sync(
                    wait_for, lambda: _running_command(server_env, b"sleep 30"), 30.0
                )
                assert found, describe(codex_processes(server_env))
                pids = codex_runners(server_env)
                assert len(pids) == 1, describe(pids)
                os.kill(pids[0], signal.SIGKILL)
            else:
                await _kill_codex_when_asked(answering, server_env, 2)
        turn = _failed_turn(outcome["result"], "exited with signal 9")
        assert turn["turn_id"] == "turn-2"
        await _no_codex_left(server_env)
        await _server_is_up(client, thread_id)
        await _thread_is_usable(client, thread_id)


async def test_codex_killed_in_the_first_turn_after_naming_the_thread(
    server_env: Path,  # noqa: F811
    workdir: Path,
    answering: ScriptedModel,
) -> None:
    answering.add(replies.hang())
    async with _serving(workdir) as client:
        outcome: dict[str, CallToolResult] = {}

        async def first_turn() -> None:
            outcome["result"] = await _call(client, "start_thread", {"prompt": "long"})

        async with anyio.create_task_group() as group:
            group.start_soon(first_turn)
            await _kill_codex_when_asked(answering, server_env, 1)
        turn = _failed_turn(outcome["result"], "exited with signal 9")
        thread_id = turn["thread_id"]
        await _no_codex_left(server_env)
        await _server_is_up(client, thread_id)
        await _thread_is_usable(client, thread_id)
    await _resumable(workdir, thread_id)
    await _no_codex_left(server_env, serving=False)


async def test_codex_silent_past_the_idle_timeout(
    server_env: Path,  # noqa: F811
    workdir: Path,
    answering: ScriptedModel,
) -> None:
    async with _serving(workdir, idle_timeout=1) as client:
        thread_id = await _start(client, idle=True)
        answering.add(replies.hang())
        result = await _call(client, "run_turn", {"thread_id": thread_id, "prompt": "stall"})
        _failed_turn(result, "for 1 s", IDLE_STOP)
        await _no_codex_left(server_env)
        await _server_is_up(client, thread_id)
        await _thread_is_usable(client, thread_id, idle=True)


@exec_only
async def test_codex_exiting_non_zero_names_the_code_and_stderr(
    server_env: Path,  # noqa: F811
    workdir: Path,
    answering: ScriptedModel,
) -> None:
    # Codex 0.163 refuses approval_policy "untrusted": exit 1, reason on stderr.
    refused = {"approval_policy": "untrusted"}
    async with _serving(workdir) as client:
        result = await _call(client, "start_thread", {"prompt": "x", **refused})
        assert result.is_error
        for phrase in ("exited with code 1", 'approval_policy = "untrusted" is no longer'):
            assert phrase in text(result), text(result)
        await _server_is_up(client)
        thread_id = await _start(client)

        result = await _call(
            client, "resume_thread", {"thread_id": thread_id, "prompt": "x", **refused}
        )
        _failed_turn(result, "exited with code 1", "no longer supported")
        await _no_codex_left(server_env)
        await _server_is_up(client, thread_id)
        again = await _call(
            client, "resume_thread", {"thread_id": thread_id, "approval_policy": "never"}
        )
        assert not again.is_error, text(again)
        await _thread_is_usable(client, thread_id)
    assert answering.requests[-1].last_user_text == "go on"


# -------------------------------------------------------- a stand-in codex, later turn

LATER_TURN_FAULTS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "exit-3-with-stderr": (
        act(
            thread_started(),
            stderr="loading config\nError: config.toml:3: unknown key `modle`\n",
            code=3,
        ),
        ("Codex Exec exited with code 3", "config.toml:3: unknown key `modle`"),
    ),
    "exit-1-printing-nothing": (act(code=1), ("Codex Exec exited with code 1",)),
    "exit-0-printing-nothing": (act(), ("code 0",)),
    "exit-0-between-events": (act(thread_started() + turn_started()), ("code 0",)),
    "malformed-line": (
        act(thread_started() + turn_started() + "panicked at src/main.rs\n"),
        ("Failed to parse item: panicked at src/main.rs",),
    ),
    "truncated-line": (
        act(thread_started() + turn_started() + '{"type":"item.completed","item":{"id":'),
        ('Failed to parse item: {"type":"item.completed","item":{"id":',),
    ),
}


@pytest.mark.parametrize("fault", list(LATER_TURN_FAULTS))
@exec_only
async def test_a_faulty_later_turn_fails_clearly_and_the_thread_goes_on(
    server_env: Path,  # noqa: F811
    workdir: Path,
    tmp_path: Path,
    answering: ScriptedModel,
    fault: str,
) -> None:
    step, expected = LATER_TURN_FAULTS[fault]
    codex = faulty_codex(tmp_path / "fake", REAL, step)
    async with _serving(workdir, codex_path=str(codex.path)) as client:
        thread_id = await _start(client)
        result = await _call(client, "run_turn", {"thread_id": thread_id, "prompt": "break"})
        turn = _failed_turn(result, *expected)
        assert turn["turn_id"] == "turn-2"
        assert codex.calls[1][-2:] == ["resume", thread_id]
        await _no_codex_left(server_env)
        await _server_is_up(client, thread_id)
        await _thread_is_usable(client, thread_id)
    assert len(codex.calls) == 3


@exec_only
async def test_codex_hanging_silently_from_the_start(
    server_env: Path,  # noqa: F811
    workdir: Path,
    tmp_path: Path,
    answering: ScriptedModel,
) -> None:
    """Not even ``thread.started``: the idle timeout still ends the run."""
    codex = faulty_codex(tmp_path / "fake", act(hang=True))
    async with _serving(workdir, codex_path=str(codex.path), idle_timeout=1) as client:
        result = await _call(client, "start_thread", {"prompt": "stall"})
        assert result.is_error
        for phrase in ("for 1 s", IDLE_STOP):
            assert phrase in text(result), text(result)
        await _no_codex_left(server_env)
        await _server_is_up(client)
        # Every later call runs the real codex.
        thread_id = await _start(client, idle=True)
        await _thread_is_usable(client, thread_id, idle=True)


# ------------------------------------------------------- a stand-in codex, first turn

UNNAMED_FIRST_TURN_FAULTS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "exit-3-with-stderr": (
        act(stderr="Error: cannot open sqlite state: disk full\n", code=3),
        ("Codex Exec exited with code 3", "cannot open sqlite state: disk full"),
    ),
    "exit-1-printing-nothing": (act(code=1), ("Codex Exec exited with code 1",)),
    "exit-0-printing-nothing": (act(), ("code 0",)),
}


@pytest.mark.parametrize("fault", list(UNNAMED_FIRST_TURN_FAULTS))
@exec_only
async def test_a_first_turn_that_never_names_the_thread(
    server_env: Path,  # noqa: F811
    workdir: Path,
    tmp_path: Path,
    answering: ScriptedModel,
    fault: str,
) -> None:
    step, expected = UNNAMED_FIRST_TURN_FAULTS[fault]
    codex = faulty_codex(tmp_path / "fake", step)
    async with _serving(workdir, codex_path=str(codex.path)) as client:
        result = await _call(client, "start_thread", {"prompt": "x"})
        assert result.is_error
        message = text(result)
        assert "None" not in message, message
        for phrase in expected:
            assert phrase in message, message
        listed = structured(await _call(client, "list_threads", {}))
        assert listed["threads"] == []
        await _no_codex_left(server_env)
        thread_id = await _start(client)  # The next call runs the real codex.
        await _thread_is_usable(client, thread_id)


NAMED_FIRST_TURN_FAULTS: dict[str, tuple[str, str]] = {
    "malformed-line": ("Error: stream ended\n", "Failed to parse item: Error: stream ended"),
    "truncated-line": ('{"type":"item.sta', 'Failed to parse item: {"type":"item.sta'),
}


@pytest.mark.parametrize("fault", list(NAMED_FIRST_TURN_FAULTS))
@exec_only
async def test_a_first_turn_that_breaks_after_naming_the_thread(
    server_env: Path,  # noqa: F811
    workdir: Path,
    tmp_path: Path,
    answering: ScriptedModel,
    fault: str,
) -> None:
    """The real codex names the thread and starts the turn; then a bad line arrives."""
    inject, expected = NAMED_FIRST_TURN_FAULTS[fault]
    codex = faulty_codex(tmp_path / "fake", relay(inject, after="turn.started"))
    settings = {"codex_path": str(codex.path)}
    async with _serving(workdir, **settings) as client:
        result = await _call(client, "start_thread", {"prompt": "x"})
        turn = _failed_turn(result, expected)
        thread_id = turn["thread_id"]
        await _no_codex_left(server_env)
        await _server_is_up(client, thread_id)
        await _thread_is_usable(client, thread_id)
    await _resumable(workdir, thread_id, **settings)
    await _no_codex_left(server_env, serving=False)


@exec_only
async def test_a_first_turn_that_breaks_right_after_naming_the_thread(
    server_env: Path,  # noqa: F811
    workdir: Path,
    tmp_path: Path,
    answering: ScriptedModel,
) -> None:
    """Codex has named the thread but not saved it yet (it saves it a few tenths of a second
    later) when it dies. Codex cannot resume such a thread, so the server says so and does
    not keep it as if it could be continued."""
    step = relay("garbage\n", after="thread.started", kill=True)
    codex = faulty_codex(tmp_path / "fake", step)
    async with _serving(workdir, codex_path=str(codex.path)) as client:
        result = await _call(client, "start_thread", {"prompt": "x"})
        turn = _failed_turn(result, "Failed to parse item: garbage")
        assert "cannot be continued: start a new thread" in turn["error"]
        thread_id = turn["thread_id"]
        await _no_codex_left(server_env)
        await _server_is_up(client)
        gone = await _call(client, "run_turn", {"thread_id": thread_id, "prompt": "again"})
        assert gone.is_error and "Unknown thread_id" in text(gone)


# ----------------------------------------------------------------- a missing binary


@exec_only
async def test_a_missing_binary_says_how_to_install_and_the_server_stays_up(
    server_env: Path,  # noqa: F811
    workdir: Path,
    tmp_path: Path,
) -> None:
    async with _serving(workdir, codex_path=str(tmp_path / "no-such-codex")) as client:
        for _ in range(2):
            result = await _call(client, "start_thread", {"prompt": "x"})
            assert result.is_error
            assert "no-such-codex" in text(result)
            assert INSTALL_HINT in text(result), text(result)
            assert "pip install 'mcp-server-codex[bundled]'" in text(result)
        await _server_is_up(client)
        assert structured(await _call(client, "list_threads", {}))["threads"] == []


@exec_only
async def test_a_binary_gone_between_turns_says_how_to_install(
    server_env: Path,  # noqa: F811
    workdir: Path,
    tmp_path: Path,
    answering: ScriptedModel,
) -> None:
    """Codex uninstalled (or upgraded away) while the server runs, then put back."""
    codex = faulty_codex(tmp_path / "fake")
    async with _serving(workdir, codex_path=str(codex.path)) as client:
        thread_id = await _start(client)
        codex.path.rename(codex.path.with_name("moved-away"))
        result = await _call(client, "run_turn", {"thread_id": thread_id, "prompt": "x"})
        turn = _failed_turn(result, str(codex.path))
        assert "pip install 'mcp-server-codex[bundled]'" in turn["error"], turn["error"]
        await _server_is_up(client, thread_id)
        codex.path.with_name("moved-away").rename(codex.path)
        await _thread_is_usable(client, thread_id)


# --------------------------------------------------------------- the server over stdio


@exec_only
async def test_a_run_of_faults_over_stdio_leaves_the_server_up(
    codex_home: Path, workdir: Path, tmp_path: Path, answering: ScriptedModel
) -> None:
    """The server as hosts run it survives one fault after another on the same thread."""
    codex = faulty_codex(
        tmp_path / "fake",
        REAL,
        act(thread_started() + "garbage\n"),
        act(stderr="Error: killed by the OOM killer\n", code=137),
        act(thread_started() + '{"type":"turn', hang=False),
        act(code=1),
    )
    command = [
        sys.executable,
        "-m",
        "codex_mcp_server",
        "--cwd",
        str(workdir),
        "--codex-path",
        str(codex.path),
    ]
    params = StdioServerParameters(command=command[0], args=command[1:], env=codex_env(codex_home))
    async with Client(params) as client:
        thread_id = await _start(client)
        expected = [
            "Failed to parse item: garbage",
            "Codex Exec exited with code 137: Error: killed by the OOM killer",
            'Failed to parse item: {"type":"turn',
            "Codex Exec exited with code 1",
        ]
        for index, phrase in enumerate(expected):
            result = await _call(
                client, "run_turn", {"thread_id": thread_id, "prompt": f"fault {index}"}
            )
            _failed_turn(result, phrase)
            await _server_is_up(client, thread_id)
        await _thread_is_usable(client, thread_id)
        info = structured(await _call(client, "get_thread", {"thread_id": thread_id}))
        assert [t["status"] for t in info["turns"]] == ["completed"] + ["failed"] * 4 + [
            "completed"
        ]
    left = await anyio.to_thread.run_sync(wait_until_gone, codex_home, 10.0)
    assert left == [], describe(left)


# ------------------------------------------------------- whatever codex prints, over the wire


def _line(event: dict[str, Any]) -> str:
    # json.dumps escapes a lone surrogate as "\ud800", as a JSON writer that allows one does.
    return json.dumps(event) + "\n"


_USAGE = {"input_tokens": 1, "cached_input_tokens": 0, "output_tokens": 1}
_LONE_SURROGATE_TURN = act(
    thread_started()
    + turn_started()
    + _line({"type": "item.completed", "item": {"id": "i0", "type": "agent_message",
                                               "text": "odd \ud800 text"}})
    + _line({"type": "turn.completed", "usage": _USAGE})
)  # fmt: skip
_NUMBERED_THREAD = act(_line({"type": "thread.started", "thread_id": 7}) + turn_started())


async def _odd_output_keeps_the_server_up(client: Client) -> None:
    """The calls of ``_odd_codex``: a healthy thread, a turn whose answer holds a lone
    surrogate, a thread codex names with a number, then the healthy thread again."""
    thread_id = await _start(client)
    odd = await _call(client, "run_turn", {"thread_id": thread_id, "prompt": "odd"})
    assert not odd.is_error, text(odd)
    assert structured(odd)["final_response"] == "odd \ufffd text"
    assert "odd \ufffd text" in text(odd)

    numbered = await _call(client, "start_thread", {"prompt": "numbered"})
    assert numbered.is_error
    assert "Codex could not start the thread" in text(numbered), text(numbered)
    assert 'Failed to parse item: {"type": "thread.started", "thread_id": 7}' in text(numbered)

    await _server_is_up(client, thread_id)
    listed = structured(await _call(client, "list_threads", {}))["threads"]
    assert [t["thread_id"] for t in listed] == [thread_id]
    info = structured(await _call(client, "get_thread", {"thread_id": thread_id}))
    assert info["turns"][1]["final_response"] == "odd \ufffd text"
    resource = await client.read_resource(f"codex://threads/{thread_id}")
    assert "odd \ufffd text" in resource.model_dump_json()
    await _thread_is_usable(client, thread_id)


def _odd_codex(directory: Path) -> FaultyCodex:
    return faulty_codex(directory, REAL, _LONE_SURROGATE_TURN, _NUMBERED_THREAD)


@exec_only
async def test_odd_output_over_stdio_leaves_the_server_up(
    codex_home: Path, workdir: Path, tmp_path: Path, answering: ScriptedModel
) -> None:
    """A lone surrogate once made the stdio server exit 1 writing its answer; a thread id
    that is no string made list_threads fail for every client until a restart."""
    codex = _odd_codex(tmp_path / "fake")
    command = ["-m", "codex_mcp_server", "--cwd", str(workdir), "--codex-path", str(codex.path)]
    params = StdioServerParameters(command=sys.executable, args=command, env=codex_env(codex_home))
    async with Client(params) as client:
        await _odd_output_keeps_the_server_up(client)
    await _no_codex_left(codex_home, serving=False)


@exec_only
async def test_odd_output_over_http_leaves_the_server_up(
    start_server: StartServer,  # noqa: F811
    codex_home: Path,
    tmp_path: Path,
    answering: ScriptedModel,
) -> None:
    """Over HTTP the lone surrogate gave an empty 200 instead of the result."""
    codex = _odd_codex(tmp_path / "fake")
    server = start_server(extra=["--codex-path", str(codex.path)])
    async with AsyncExitStack() as stack:
        client = await _connect(stack, server.url)
        await _odd_output_keeps_the_server_up(client)
    left = await anyio.to_thread.run_sync(wait_until_gone, codex_home, 10.0, codex_only)
    assert left == [], describe(left)
    assert server.process.poll() is None, server.log()


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"a": value}
    return value


async def test_an_answer_nested_too_deep_leaves_the_turn_readable(
    server_env: Path,  # noqa: F811
    workdir: Path,
    model: ScriptedModel,
) -> None:
    """A structured answer 300 levels deep once made the completed turn unreadable through
    every tool and the resource ("Maximum serialization depth exceeded")."""
    schema = {"type": "object", "properties": {"a": {}}, "required": ["a"]}
    deep, kept = _nested(300), _nested(MAX_STRUCTURED_DEPTH)
    odd = {"a": "lone \ud800"}  # The answer's JSON text escapes a lone surrogate.
    model.add(replies.structured(deep), replies.structured(kept), replies.structured(odd))
    async with _serving(workdir) as client:
        result = await _call(client, "start_thread", {"prompt": "x", "output_schema": schema})
        assert not result.is_error, text(result)
        turn = structured(result)
        assert turn["status"] == "completed"
        assert turn["structured_output"] is None
        assert json.loads(turn["final_response"]) == deep
        assert f"deeper than {MAX_STRUCTURED_DEPTH} levels" in turn["error"]
        assert f"deeper than {MAX_STRUCTURED_DEPTH} levels" in text(result)
        thread_id = turn["thread_id"]

        for tool in ("wait_turn", "get_thread"):
            shown = await _call(client, tool, {"thread_id": thread_id})
            assert not shown.is_error, text(shown)
        resource = await client.read_resource(f"codex://threads/{thread_id}")
        assert json.loads(resource.contents[0].text)["turns"][0]["structured_output"] is None  # type: ignore[union-attr]
        await _server_is_up(client, thread_id)

        again = await _call(
            client, "run_turn", {"thread_id": thread_id, "prompt": "y", "output_schema": schema}
        )
        assert structured(again)["structured_output"] == kept
        assert structured(again)["error"] is None
        info = await _call(client, "get_thread", {"thread_id": thread_id})
        assert structured(info)["turns"][1]["structured_output"] == kept

        third = await _call(
            client, "run_turn", {"thread_id": thread_id, "prompt": "z", "output_schema": schema}
        )
        assert structured(third)["structured_output"] == {"a": "lone \ufffd"}
        resource = await client.read_resource(f"codex://threads/{thread_id}")
        assert "lone \ufffd" in resource.model_dump_json()
