"""Codex as the MCP host: a real outer ``codex exec`` whose model calls this server's tools.

The outer codex has its own CODEX_HOME whose config.toml holds the entry of
``examples/hosts/codex.config.toml`` as shipped, but for the command (this interpreter running
this checkout) and the environment it passes on (the inner codex's own CODEX_HOME). Both
codexes talk to the same scripted model, which answers in the order the requests arrive:
outer model -> our tool -> inner model -> outer model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from codex_mcp_server.sdk.locate import find_codex
from codex_mcp_server.testing import ScriptedModel, codex_env, make_codex_home, replies

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SHIPPED = Path(__file__).parent.parent / "examples" / "hosts" / "codex.config.toml"

pytestmark = pytest.mark.slow


def _outer_home(tmp_path: Path, model: ScriptedModel, inner_home: Path) -> Path:
    servers = tomllib.loads(SHIPPED.read_text(encoding="utf-8"))["mcp_servers"]
    (name,) = servers
    entry = dict(servers[name])
    entry["command"] = sys.executable
    entry["args"] = ["-m", "codex_mcp_server", *entry["args"]]
    # Codex hands an MCP server only a few variables of its own environment.
    entry["env"] = {
        "CODEX_HOME": str(inner_home),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "NO_PROXY": "127.0.0.1,localhost,::1",
        "no_proxy": "127.0.0.1,localhost,::1",
    }
    return make_codex_home(tmp_path / "outer-home", model.url, extra={"mcp_servers": {name: entry}})


def _outer_exec(home: Path, workdir: Path, prompt: str) -> list[dict[str, Any]]:
    """One ``codex exec`` of the outer codex; its JSON events."""
    result = subprocess.run(
        [find_codex().path, "exec", "--experimental-json", "-C", str(workdir), prompt],
        env=codex_env(home),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert result.returncode == 0, (result.stdout, result.stderr[-3000:])
    return events


def _tool_call(events: list[dict[str, Any]], model: ScriptedModel) -> dict[str, Any]:
    calls = [
        e["item"]
        for e in events
        if e["type"] == "item.completed" and e["item"]["type"] == "mcp_tool_call"
    ]
    assert len(calls) == 1, (events, model.requests[-1].function_call_outputs)
    return dict(calls[0])


def _tool_output(model: ScriptedModel, index: int) -> dict[str, Any]:
    """What the outer model was handed as the result of its tool call."""
    (output,) = model.requests[index].function_call_outputs
    # Codex prefixes the tool's structuredContent with "Wall time: … seconds\nOutput:\n".
    return dict(json.loads(output.partition("Output:\n")[2]))


def test_shipped_codex_entry_works_under_codex_exec(
    tmp_path: Path, model: ScriptedModel, workdir: Path
) -> None:
    inner_home = make_codex_home(tmp_path / "inner-home", model.url)
    outer_home = _outer_home(tmp_path, model, inner_home)
    (name,) = tomllib.loads(SHIPPED.read_text(encoding="utf-8"))["mcp_servers"]

    def call(tool: str, arguments: dict[str, Any]) -> replies.Reply:
        item = replies.function_call_item(tool, arguments, namespace=f"mcp__{name}")
        return replies.reply(item)

    # First outer exec: its model starts a thread in our server.
    model.add(
        call("start_thread", {"prompt": "inner task", "working_directory": str(workdir)}),
        replies.message("inner answer"),
        replies.message("outer done"),
    )
    events = _outer_exec(outer_home, workdir, "ask codex")
    assert events[-1]["type"] == "turn.completed"
    tool_call = _tool_call(events, model)
    assert (tool_call["server"], tool_call["tool"], tool_call["status"]) == (
        name,
        "start_thread",
        "completed",
    ), tool_call
    assert model.requests[1].last_user_text == "inner task"  # Our inner codex ran it.
    first = _tool_output(model, 2)
    assert (first["status"], first["final_response"]) == ("completed", "inner answer"), first
    thread_id = first["thread_id"]

    # Codex starts a fresh server for each exec: the next one continues the thread anyway.
    model.add(
        call("run_turn", {"thread_id": thread_id, "prompt": "inner follow-up"}),
        replies.message("inner again"),
        replies.message("outer done again"),
    )
    events = _outer_exec(outer_home, workdir, "ask codex again")
    assert _tool_call(events, model)["status"] == "completed"
    assert model.requests[4].last_user_text == "inner follow-up"
    assert "inner task" in json.dumps(model.requests[4].input)  # With the thread's history.
    second = _tool_output(model, 5)
    assert (second["thread_id"], second["status"], second["final_response"]) == (
        thread_id,
        "completed",
        "inner again",
    ), second
    # Numbered after the turn the thread ran before; usage of this turn only (each request
    # of the scripted model uses 42 input tokens), though codex reports the thread's sum.
    assert second["turn_id"] == "turn-2"
    assert second["usage"]["input_tokens"] == replies.DEFAULT_USAGE["input_tokens"], second
