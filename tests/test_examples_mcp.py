"""The MCP examples: host configuration files and the demo client, run for real."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from codex_mcp_server.testing import ScriptedModel, codex_env, replies

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .server_support import structured

EXAMPLES = Path(__file__).parent.parent / "examples"
HOSTS = EXAMPLES / "hosts"


def _server_entry(path: Path) -> dict[str, Any]:
    """The server's entry of a host's configuration file (every file names it ``codex``)."""
    if path.suffix == ".toml":
        servers = tomllib.loads(path.read_text(encoding="utf-8"))["mcp_servers"]
    else:
        config = json.loads(path.read_text(encoding="utf-8"))
        servers = config.get("mcpServers") or config["servers"]
    assert list(servers) == ["codex"]
    return dict(servers["codex"])


@pytest.mark.parametrize("config", sorted(HOSTS.iterdir()), ids=lambda p: p.name)
async def test_host_configuration_starts_a_working_server(
    config: Path, codex_home: Path, workdir: Path, model: ScriptedModel
) -> None:
    entry = _server_entry(config)
    assert entry["command"] == "mcp-server-codex"
    assert entry.get("type", "stdio") == "stdio"
    # The installed commands are proven by test_packaging; here the arguments, as shipped (a
    # placeholder left in them would stop the server at start).
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "codex_mcp_server", *entry["args"]],
        env={**codex_env(codex_home), **entry.get("env", {})},
        cwd=workdir,
    )
    model.add(replies.message("configured"))
    async with Client(params) as client:
        tools = [tool.name for tool in (await client.list_tools()).tools]
        if entry["args"] == ["mcp-server"]:  # In place of the removed `codex mcp-server`.
            assert tools == ["codex", "codex-reply"]
            result = await client.call_tool("codex", {"prompt": "hello"})
            assert structured(result)["content"] == "configured"
        else:
            assert "start_thread" in tools
            result = await client.call_tool("start_thread", {"prompt": "hello"})
            assert structured(result)["final_response"] == "configured"


def _offline_demo(codex_home: Path, tmp_path: Path, cwd: Path) -> str:
    env = codex_env(codex_home)  # No credentials in this environment: the demo goes offline.
    env["CODEX_HOME"] = str(tmp_path / "no-login-here")
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "mcp_demo.py"), "--cwd", str(cwd)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_offline_demo_prints_progress_and_both_turns(codex_home: Path, tmp_path: Path) -> None:
    out = _offline_demo(codex_home, tmp_path, EXAMPLES)
    assert "skip_git_repo_check" not in out  # A Git repository: no detour.
    assert "offline demo" in out
    assert "[  1] thinking: Looking around before answering" in out
    assert "✓ $ ls -1 | head -n 8 (exit 0)" in out
    assert "This directory holds 8 entries" in out
    assert "turn-1, completed" in out and "turn-2, completed" in out


def test_offline_demo_outside_git_shows_the_error_and_acts_on_it(
    codex_home: Path, tmp_path: Path
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    out = _offline_demo(codex_home, tmp_path, plain)
    refused, _, rest = out.partition("start_thread again, with skip_git_repo_check: true")
    assert f"Codex refused to work in {plain.resolve()}: it is not inside a Git" in refused
    assert "This directory holds 0 entries" in rest
    assert "turn-1, completed" in rest and "turn-2, completed" in rest


def _demo_at_a_terminal(codex_home: Path, tmp_path: Path, answer: str) -> str:
    """The offline demo run as a person runs it, on a terminal (a pty), answering the
    approval question with ``answer``; everything it wrote."""
    env = codex_env(codex_home)
    env["CODEX_HOME"] = str(tmp_path / "no-login-here")
    controller, terminal = pty.openpty()
    errors = (tmp_path / "demo-stderr.txt").open("w+")  # A file: a pipe nobody reads fills up.
    demo = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "mcp_demo.py"), "--cwd", str(EXAMPLES)],
        env=env,
        stdin=terminal,
        stdout=terminal,
        stderr=errors,
    )
    os.close(terminal)
    out = b""
    answered = False
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the demo closed the terminal (it exited).
                break
            if not chunk:
                break
            out += chunk
            if not answered and b"your choice" in out:
                os.write(controller, answer.encode() + b"\n")
                answered = True
        assert demo.wait(timeout=30) == 0, (tmp_path / "demo-stderr.txt").read_text()
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        errors.close()
        os.close(controller)
    assert answered, out.decode(errors="replace")
    return out.decode(errors="replace").replace("\r\n", "\n")


def test_the_demo_at_a_terminal_asks_the_person_and_does_as_they_say(
    codex_home: Path, tmp_path: Path
) -> None:
    yes = _demo_at_a_terminal(codex_home, tmp_path, "1")
    assert "turn-2, completed" in yes  # The usual demo first.
    question = yes.partition("--- the server asks you (MCP elicitation) ---")[2]
    assert "Codex wants to run a command outside its sandbox" in question
    assert "echo hello > approved-by-you.txt" in question
    assert "Create the file you asked for" in question
    assert "1. " in question and "2. " in question
    assert "approved-by-you.txt is written." in yes
    assert "approved-by-you.txt exists in" in yes
    no = _demo_at_a_terminal(codex_home, tmp_path, "")
    assert "you declined the command" in no
    assert "approved-by-you.txt does not exist in" in no


def test_the_demo_without_a_terminal_asks_nobody(codex_home: Path, tmp_path: Path) -> None:
    out = _offline_demo(codex_home, tmp_path, EXAMPLES)
    assert "the server asks you" not in out and "approved-by-you.txt" not in out
