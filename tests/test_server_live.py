"""What only a live thread can do, through the MCP client on the real codex binary: steering a
running turn, forking a thread (also one another Codex process holds), and approvals that reach
the host (elicitation, answer_approval, timeouts)."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from codex_mcp_server.sdk import Codex
from codex_mcp_server.server import Settings
from codex_mcp_server.testing import ScriptedModel, codex_env, replies

from .server_support import exec_only, serve, structured, text


@pytest.fixture
def server_env(monkeypatch: pytest.MonkeyPatch, codex_home: Path) -> Path:
    """The server passes its own environment to codex: point it at the scripted home."""
    env = codex_env(codex_home)
    for name in set(os.environ) - set(env):
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return codex_home


@pytest.fixture
def settings(server_env: Path, workdir: Path) -> Settings:
    return Settings(cwd=workdir, heartbeat_interval=30.0, backend="app-server")


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with Client(serve(settings)) as connected:
        yield connected


async def _call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, text(result)
    return structured(result)


async def _requests(model: ScriptedModel, count: int) -> None:
    await anyio.to_thread.run_sync(model.wait_for_requests, count, 30.0)


# ------------------------------------------------------------------ steering


async def test_a_steer_reaches_the_models_next_request(
    client: Client, model: ScriptedModel
) -> None:
    # The first answer is held back a while: the steer arrives while the model "thinks".
    model.add(replies.command("echo one", delay=4.0), replies.message("done"))
    started = await _call(client, "start_thread", prompt="begin", background=True)
    thread_id = started["thread_id"]
    await _requests(model, 1)
    steered = await _call(client, "steer_turn", thread_id=thread_id, prompt="focus on the tests")
    assert (steered["turn_id"], steered["status"]) == ("turn-1", "running")
    result = await _call(client, "wait_turn", thread_id=thread_id)
    assert (result["status"], result["final_response"]) == ("completed", "done")
    assert "focus on the tests" not in json.dumps(model.requests[0].input)
    assert "focus on the tests" in json.dumps(model.requests[1].input)
    info = await _call(client, "get_thread", thread_id=thread_id)
    assert "[steered] focus on the tests" in info["turns"][0]["prompt"]


async def test_steering_an_idle_thread_names_run_turn(client: Client, model: ScriptedModel) -> None:
    model.add(replies.message("hi"))
    started = await _call(client, "start_thread", prompt="begin")
    result = await client.call_tool(
        "steer_turn", {"thread_id": started["thread_id"], "prompt": "more"}
    )
    assert result.is_error
    assert "no running turn" in text(result) and "run_turn" in text(result)
    assert started["thread_id"] in text(result)


@exec_only
async def test_steering_and_forking_on_exec_say_they_need_the_app_server(
    server_env: Path, workdir: Path, model: ScriptedModel, backend: str
) -> None:
    async with Client(serve(Settings(cwd=workdir, backend="exec"))) as client:
        model.add(replies.message("hi"))
        started = await _call(client, "start_thread", prompt="begin")
        for tool, arguments in (
            ("steer_turn", {"prompt": "more"}),
            ("fork_thread", {}),
        ):
            result = await client.call_tool(tool, {"thread_id": started["thread_id"], **arguments})
            assert result.is_error
            assert "--backend app-server" in text(result), text(result)


# ------------------------------------------------------------------ forks


async def test_a_fork_copies_the_history_into_a_new_thread(
    client: Client, model: ScriptedModel
) -> None:
    model.add(replies.message("the original answer"), replies.message("forked answer"))
    source = await _call(client, "start_thread", prompt="remember 42")
    fork = await _call(client, "fork_thread", thread_id=source["thread_id"], prompt="and now?")
    assert fork["thread_id"] != source["thread_id"]
    assert (fork["turn_id"], fork["final_response"]) == ("turn-1", "forked answer")
    history = json.dumps(model.requests[-1].input)
    assert "remember 42" in history and "the original answer" in history
    listed = await _call(client, "list_threads")
    assert {t["thread_id"] for t in listed["threads"]} == {
        source["thread_id"],
        fork["thread_id"],
    }
    # The fork keeps the source's options; the source goes on unchanged.
    info = await _call(client, "get_thread", thread_id=fork["thread_id"])
    assert (
        info["working_directory"]
        == (await _call(client, "get_thread", thread_id=source["thread_id"]))["working_directory"]
    )
    model.add(replies.message("source again"))
    again = await _call(client, "run_turn", thread_id=source["thread_id"], prompt="x")
    assert again["turn_id"] == "turn-2"
    assert "and now?" not in json.dumps(model.requests[-1].input)


async def test_a_thread_held_by_another_app_server_can_be_forked(
    client: Client, model: ScriptedModel, codex_home: Path, workdir: Path
) -> None:
    async with Codex({"env": codex_env(codex_home)}, engine="app-server") as other:
        model.add(replies.message("held elsewhere"))
        held = other.start_thread({"working_directory": str(workdir)})
        await held.run("remember 7")
        assert held.id is not None
        refused = await client.call_tool("run_turn", {"thread_id": held.id, "prompt": "x"})
        assert refused.is_error
        assert "fork_thread" in text(refused), text(refused)
        fork = await _call(client, "fork_thread", thread_id=held.id)
        assert fork["status"] == "idle" and fork["thread_id"] != held.id
        model.add(replies.message("on the fork"))
        turn = await _call(client, "run_turn", thread_id=fork["thread_id"], prompt="go on")
        assert turn["final_response"] == "on the fork"
        assert "remember 7" in json.dumps(model.requests[-1].input)


async def test_forking_an_unknown_thread_is_a_clear_error(client: Client) -> None:
    result = await client.call_tool(
        "fork_thread", {"thread_id": "0199a213-81c0-7800-8aa1-bbab2a035a53"}
    )
    assert result.is_error
    assert "No Codex session" in text(result)
