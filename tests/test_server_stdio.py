"""The server as hosts run it: a subprocess speaking MCP over stdio, on the real binary."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
from mcp import Client, StdioServerParameters

from codex_mcp_server import __version__
from codex_mcp_server.testing import ScriptedModel, codex_env, replies

from .procs import codex_only, describe, wait_until_gone
from .server_support import ProgressLog, cancel_a_hanging_turn, structured, text

pytestmark = pytest.mark.usefixtures("backend")


def _server_command(workdir: Path, *flags: str) -> list[str]:
    return [sys.executable, "-m", "codex_mcp_server", "--cwd", str(workdir), *flags]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_turn_with_progress_and_a_cancel_over_stdio(
    codex_home: Path, workdir: Path, model: ScriptedModel, mode: Literal["auto", "legacy"]
) -> None:
    command = _server_command(workdir)
    params = StdioServerParameters(command=command[0], args=command[1:], env=codex_env(codex_home))
    model.add(replies.command("echo hi"), replies.message("done"))
    progress = ProgressLog()
    async with Client(params, mode=mode) as client:
        result = await client.call_tool(
            "start_thread", {"prompt": "run echo hi"}, progress_callback=progress
        )
        assert not result.is_error, text(result)
        thread_id = structured(result)["thread_id"]
        assert progress.messages == ["$ echo hi", "✓ $ echo hi (exit 0)", "message: done"]

        await cancel_a_hanging_turn(client, model, codex_home, thread_id, 3)
    assert wait_until_gone(codex_home, timeout=5.0) == []


class RawServer:
    """The server run by hand, to control its stdin and signals and read its raw stdout."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self._next_id = 0

    def send(self, method: str, params: dict[str, Any], *, notify: bool = False) -> int:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
        if not notify:
            self._next_id += 1
            message["id"] = self._next_id
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        self.process.stdin.flush()
        return self._next_id

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, "the server closed its stdout"
        message: dict[str, Any] = json.loads(line)  # Nothing but protocol on stdout.
        return message

    def initialize(self) -> None:
        self.send(
            "initialize",
            {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "raw-test", "version": "0"},
            },
        )
        assert "result" in self.read()
        self.send("notifications/initialized", {}, notify=True)

    def start_hanging_turn(self, model: ScriptedModel) -> None:
        model.add(replies.hang())
        self.send(
            "tools/call",
            {
                "name": "start_thread",
                "arguments": {"prompt": "long"},
                "_meta": {"progressToken": "p1"},
            },
        )
        model.wait_for_requests(1, 20.0)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)


@pytest.fixture
def raw_server(backend: str, codex_home: Path, workdir: Path) -> Iterator[RawServer]:
    server = RawServer(_server_command(workdir), codex_env(codex_home))
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()


def test_closing_stdin_mid_turn_stops_codex_and_the_server(
    raw_server: RawServer, codex_home: Path, model: ScriptedModel
) -> None:
    raw_server.initialize()
    raw_server.start_hanging_turn(model)
    assert codex_only(codex_home) != []
    assert raw_server.process.stdin is not None
    raw_server.process.stdin.close()
    assert raw_server.wait(timeout=10) == 0
    left = wait_until_gone(codex_home, timeout=1.0)
    assert left == [], describe(left)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_turn_stops_codex_and_the_server(
    raw_server: RawServer, codex_home: Path, model: ScriptedModel, signum: int
) -> None:
    raw_server.initialize()
    raw_server.start_hanging_turn(model)
    assert codex_only(codex_home) != []
    raw_server.process.send_signal(signum)
    raw_server.wait(timeout=10)
    left = wait_until_gone(codex_home, timeout=1.0)
    assert left == [], describe(left)
    assert raw_server.process.stderr is not None
    assert "Traceback" not in raw_server.process.stderr.read().decode()


def test_stdout_carries_only_the_protocol(
    raw_server: RawServer, model: ScriptedModel, codex_home: Path
) -> None:
    raw_server.initialize()
    model.add(replies.command("echo to-stdout"), replies.message("done"))
    call = raw_server.send(
        "tools/call",
        {
            "name": "start_thread",
            "arguments": {"prompt": "x"},
            "_meta": {"progressToken": "tok"},
        },
    )
    notes = []
    while True:
        message = raw_server.read()  # Fails on any line that is not JSON.
        if message.get("id") == call:
            break
        notes.append(message)
    assert message["result"]["structuredContent"]["final_response"] == "done"
    progress = [n["params"] for n in notes if n["method"] == "notifications/progress"]
    assert [p["progressToken"] for p in progress] == ["tok"] * len(progress)
    assert [p["message"] for p in progress] == [
        "$ echo to-stdout",
        "✓ $ echo to-stdout (exit 0)",
        "message: done",
    ]
    assert [p["progress"] for p in progress] == [1, 2, 3]


def test_stderr_says_what_the_server_serves_and_each_turn(
    raw_server: RawServer, model: ScriptedModel, backend: str
) -> None:
    raw_server.initialize()
    model.add(replies.message("done"), replies.failure("model overloaded"))

    def call(tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        sent = raw_server.send("tools/call", {"name": tool, "arguments": arguments})
        while (message := raw_server.read()).get("id") != sent:
            pass
        result: dict[str, Any] = message["result"]["structuredContent"]
        return result

    thread_id = call("start_thread", {"prompt": "x"})["thread_id"]
    call("run_turn", {"thread_id": thread_id, "prompt": "y"})
    assert raw_server.process.stdin is not None
    raw_server.process.stdin.close()
    assert raw_server.wait(timeout=10) == 0
    assert raw_server.process.stderr is not None
    stderr = raw_server.process.stderr.read().decode()
    lines = [line.split(": ", 1)[1] for line in stderr.splitlines()]
    assert lines[0].startswith(
        f"codex-mcp-server 0.1.0 serving MCP over stdio; engine: codex {backend}; "
    )
    assert re.fullmatch(r".*; codex-cli \d+\.\d+\.\d+ at /\S*codex", lines[0]), lines[0]
    turns = [line for line in lines if line.startswith("thread ")]
    # The app-server names a thread before its first turn starts; exec as it starts.
    assert turns[0] == f"thread {thread_id if backend == 'app-server' else '(new)'} turn-1 started"
    assert re.fullmatch(rf"thread {thread_id} turn-1 completed after \d+\.\d s", turns[1])
    assert turns[2] == f"thread {thread_id} turn-2 started"
    assert re.fullmatch(
        rf"thread {thread_id} turn-2 failed after \d+\.\d s: .*model overloaded.*", turns[3]
    ), turns[3]


@pytest.mark.slow  # Starts the server as a subprocess.
def test_version_names_the_package_and_codex(workdir: Path, tmp_path: Path) -> None:
    def version(*flags: str) -> list[str]:
        result = subprocess.run(
            [sys.executable, "-m", "codex_mcp_server", "--version", *flags],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.splitlines()

    package, codex = version()
    assert package == f"codex-mcp-server {__version__}"
    assert re.fullmatch(r"codex-cli \d+\.\d+\.\d+ at /\S*codex", codex), codex
    package, missing = version("--codex-path", str(tmp_path / "gone"))
    assert missing.startswith("codex not found. Install it with")


@pytest.mark.slow  # Starts the server as a subprocess.
@pytest.mark.parametrize(
    ("flags", "env", "message"),
    [
        (["--max-sandbox", "bogus"], {}, "invalid choice: 'bogus'"),
        ([], {"CODEX_MCP_DEFAULT_SANDBOX": "everything"}, "CODEX_MCP_DEFAULT_SANDBOX"),
        (["--default-sandbox", "danger-full-access"], {}, "is above --max-sandbox"),
        (["--allowed-root", "/nonexistent-root"], {}, "is not an existing directory"),
        (["--config", "novalue"], {}, "expected KEY=VALUE"),
        (["--idle-timeout", "soon"], {}, "invalid float value"),
        (["--codex-path", "/nonexistent"], {}, "--codex-path /nonexistent: no executable file"),
    ],
)
def test_bad_settings_fail_at_start_with_a_clear_message(
    workdir: Path, flags: list[str], env: dict[str, str], message: str
) -> None:
    result = subprocess.run(
        _server_command(workdir, *flags),
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_stdin_from_dev_null_ends_at_once_and_cleanly(codex_home: Path, workdir: Path) -> None:
    # /dev/null cannot be waited on by the event loop (epoll refuses it); it used to print an
    # asyncio traceback and hang until SIGTERM.
    with open(os.devnull, "rb") as null:
        result = subprocess.run(
            _server_command(workdir),
            env=codex_env(codex_home),
            stdin=null,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_requests_from_a_regular_file_are_answered(
    codex_home: Path, workdir: Path, tmp_path: Path
) -> None:
    requests = tmp_path / "requests.jsonl"
    requests.write_text('{"jsonrpc": "2.0", "id": 1, "method": "ping"}\nnot json\n')
    with requests.open("rb") as stdin:
        result = subprocess.run(
            _server_command(workdir),
            env=codex_env(codex_home),
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    # The error is written at once, the ping's answer once the session handled it.
    assert {"jsonrpc": "2.0", "id": 1, "result": {}} in answers
    assert [a["error"]["code"] for a in answers if "error" in a] == [-32700]
    assert len(answers) == 2


@pytest.mark.parametrize("mid_turn", [False, True])
def test_a_host_that_closes_stdout_ends_the_server_cleanly(
    raw_server: RawServer, codex_home: Path, model: ScriptedModel, mid_turn: bool
) -> None:
    raw_server.initialize()
    if mid_turn:
        raw_server.start_hanging_turn(model)
    assert raw_server.process.stdout is not None
    raw_server.process.stdout.close()
    # Something to answer, which used to fail the write and exit 1 with a traceback.
    raw_server.send("ping", {})
    assert raw_server.wait(timeout=15) == 0
    assert raw_server.process.stderr is not None
    log = raw_server.process.stderr.read().decode()
    assert "Traceback" not in log
    assert "the host closed stdout" in log
    left = wait_until_gone(codex_home, timeout=1.0)
    assert left == [], describe(left)


def test_malformed_lines_and_batches_get_json_rpc_errors(raw_server: RawServer) -> None:
    raw_server.initialize()
    assert raw_server.process.stdin is not None
    for line in [
        b"not json at all",
        b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list"',  # cut off
        b'[{"jsonrpc": "2.0", "id": 2, "method": "ping"}]',
        b'{"jsonrpc": "2.0", "id": 3, "method": 42}',
        b'{"jsonrpc": "2.0", "id": "x", "method": "ping", "params": "no"}',
        b'{"id": 4, "method": "ping"}',
        b'{"jsonrpc": "2.0", "id": 5, "bogus": true}',  # no method: not echoed
        b"   ",
        b'{"jsonrpc": "2.0", "id": 6, "method": "ping"}',
    ]:
        raw_server.process.stdin.write(line + b"\n")
    raw_server.process.stdin.flush()
    answers = [raw_server.read() for _ in range(8)]
    errors = [(a["id"], a["error"]["code"]) for a in answers[:7]]
    assert errors == [
        (None, -32700),
        (None, -32700),
        (None, -32600),
        (3, -32600),
        ("x", -32600),
        (4, -32600),
        (None, -32600),
    ]
    assert "batches are not supported" in answers[2]["error"]["message"]
    assert answers[7] == {"jsonrpc": "2.0", "id": 6, "result": {}}  # Still serving.
