"""The MCP tools through the SDK's in-memory client, on the real codex binary."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from codex_mcp_server.server import Settings
from codex_mcp_server.testing import ScriptedModel, codex_env, replies

from .procs import codex_processes, describe, turn_processes, wait_until_gone
from .server_support import ProgressLog, exec_only, serve, settled_thread, structured, text
from .test_sdk_codex import RECONNECTING_FOREVER, _fake_codex, png

pytestmark = pytest.mark.usefixtures("backend")

SNAPSHOT = Path(__file__).parent / "snapshots" / "tools_list.json"


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
    return Settings(cwd=workdir, heartbeat_interval=30.0)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with Client(serve(settings)) as connected:
        yield connected


async def _start(client: Client, model: ScriptedModel, **arguments: Any) -> dict[str, Any]:
    model.add(replies.message("started"))
    result = await client.call_tool("start_thread", {"prompt": "begin", **arguments})
    assert not result.is_error, text(result)
    return structured(result)


async def test_tools_list_matches_the_snapshot(client: Client) -> None:
    listed = await client.list_tools()
    tools = [
        tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in listed.tools
    ]
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(
            json.dumps(tools, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    assert tools == json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    names = [tool["name"] for tool in tools]
    assert names == [
        "start_thread",
        "run_turn",
        "resume_thread",
        "wait_turn",
        "get_thread",
        "list_threads",
        "interrupt_turn",
        "steer_turn",
        "fork_thread",
        "answer_approval",
        "review",
    ]
    for tool in tools:
        assert tool["outputSchema"]["type"] == "object"
        assert tool["description"]
    by_name = {tool["name"]: tool for tool in tools}
    assert by_name["get_thread"]["annotations"]["readOnlyHint"] is True
    assert by_name["wait_turn"]["annotations"]["readOnlyHint"] is True
    assert by_name["list_threads"]["annotations"]["readOnlyHint"] is True
    assert by_name["start_thread"]["annotations"]["readOnlyHint"] is False
    assert by_name["start_thread"]["inputSchema"]["required"] == ["prompt"]
    assert by_name["run_turn"]["inputSchema"]["required"] == ["thread_id", "prompt"]


async def test_start_thread_streams_progress_for_a_command_turn(
    client: Client, model: ScriptedModel
) -> None:
    model.add(replies.command("echo hi"), replies.message("done"))
    progress = ProgressLog()
    result = await client.call_tool(
        "start_thread", {"prompt": "run echo hi"}, progress_callback=progress
    )
    assert not result.is_error, text(result)
    turn = structured(result)
    assert turn["status"] == "completed"
    assert turn["turn_id"] == "turn-1"
    assert turn["final_response"] == "done"
    assert turn["actions"]["commands"] == [
        {"command": "echo hi", "exit_code": 0, "status": "completed"}
    ]
    assert turn["usage"] == {
        "input_tokens": 84,
        "cached_input_tokens": 24,
        "output_tokens": 10,
        "reasoning_output_tokens": 6,
    }
    assert progress.messages == ["$ echo hi", "✓ $ echo hi (exit 0)", "message: done"]
    assert progress.values == sorted(set(progress.values))
    assert text(result).startswith("done")
    assert turn["thread_id"] in text(result)


async def test_run_turn_carries_history_and_reports_this_turns_usage(
    client: Client, model: ScriptedModel
) -> None:
    first = await _start(client, model)
    model.add(replies.message("second answer"))
    result = await client.call_tool(
        "run_turn", {"thread_id": first["thread_id"], "prompt": "and then?"}
    )
    turn = structured(result)
    assert turn["turn_id"] == "turn-2"
    assert turn["final_response"] == "second answer"
    assert turn["usage"]["input_tokens"] == 42  # codex reports 84 for the thread so far
    assert "started" in json.dumps(model.requests[1].input)
    assert model.requests[1].last_user_text == "and then?"


async def test_structured_output(client: Client, model: ScriptedModel) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "integer"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    model.add(replies.structured({"answer": 42}))
    result = await client.call_tool("start_thread", {"prompt": "x", "output_schema": schema})
    turn = structured(result)
    assert turn["structured_output"] == {"answer": 42}
    assert model.requests[0].body["text"]["format"]["schema"] == schema


async def test_images_are_resolved_against_the_working_directory(
    client: Client, model: ScriptedModel, workdir: Path
) -> None:
    (workdir / "shot.png").write_bytes(png())
    model.add(replies.message("seen"))
    result = await client.call_tool("start_thread", {"prompt": "look", "images": ["shot.png"]})
    assert structured(result)["final_response"] == "seen"
    parts = model.requests[0].input[-1]["content"]
    assert [p["type"] for p in parts].count("input_image") == 1


async def test_get_thread_and_list_threads(client: Client, model: ScriptedModel) -> None:
    first = await _start(client, model)
    model.add(replies.command("echo hi"), replies.message("ran it"))
    await client.call_tool("run_turn", {"thread_id": first["thread_id"], "prompt": "run"})
    second = await _start(client, model, skip_git_repo_check=True)

    info = structured(await client.call_tool("get_thread", {"thread_id": first["thread_id"]}))
    assert info["status"] == "idle"
    assert [t["turn_id"] for t in info["turns"]] == ["turn-1", "turn-2"]
    assert [t["prompt"] for t in info["turns"]] == ["begin", "run"]
    items = info["turns"][1]["items"]
    assert [i["type"] for i in items] == ["command_execution", "agent_message"]
    assert items[0]["aggregated_output"].endswith("hi\n")
    assert info["options"] == {"skip_git_repo_check": False}

    listed = await client.call_tool("list_threads", {})
    threads = structured(listed)["threads"]
    assert [t["thread_id"] for t in threads] == [second["thread_id"], first["thread_id"]]
    assert threads[1]["turns"] == 2
    assert len(text(listed).splitlines()) == 2


async def test_a_long_answer_is_cut_in_results_and_whole_in_the_resource(
    client: Client, model: ScriptedModel
) -> None:
    answer = "word " * 250_000  # 1.25 MB
    model.add(replies.message(answer))
    result = await client.call_tool("start_thread", {"prompt": "write a lot"})
    turn = structured(result)
    thread_id = turn["thread_id"]
    uri = f"codex://threads/{thread_id}"
    # Hosts show their model only this JSON: compact, and what it acts on comes first.
    assert len(json.dumps(turn)) < 50_000
    assert list(turn)[:6] == [
        "thread_id",
        "turn_id",
        "status",
        "final_response",
        "error",
        "next_step",
    ]
    assert turn["final_response"].startswith("word word")
    assert f"more characters: read {uri}]" in turn["final_response"]
    assert f"run_turn(thread_id={thread_id!r}" in turn["next_step"]
    assert len(text(result)) < 50_000

    model.add(replies.message(answer))
    await client.call_tool("run_turn", {"thread_id": thread_id, "prompt": "again"})
    info = structured(await client.call_tool("get_thread", {"thread_id": thread_id}))
    assert len(json.dumps(info)) < 100_000
    assert info["resource"] == uri and uri in info["next_step"]
    assert [t["turn_id"] for t in info["turns"]] == ["turn-1", "turn-2"]

    whole = await client.read_resource(uri)
    turns = json.loads(whole.contents[0].text)["turns"]  # type: ignore[union-attr]
    assert [t["final_response"] for t in turns] == [answer, answer]


async def test_resume_after_a_server_restart(
    settings: Settings, model: ScriptedModel, server_env: Path
) -> None:
    async with Client(serve(settings)) as first_server:
        first = await _start(first_server, model)

    async with Client(serve(settings)) as second_server:
        model.add(replies.message("I remember"))
        result = await second_server.call_tool(
            "resume_thread", {"thread_id": first["thread_id"], "prompt": "do you remember?"}
        )
        turn = structured(result)
        assert turn["status"] == "completed"
        assert turn["final_response"] == "I remember"
        assert "started" in json.dumps(model.requests[1].input)
        # Numbered after the thread's earlier turn; codex reports the thread's usage summed
        # over both turns, this is the second's alone.
        assert turn["turn_id"] == "turn-2"
        assert turn["usage"] == first["usage"]

        model.add(replies.message("still here"))
        again = await second_server.call_tool(
            "run_turn", {"thread_id": first["thread_id"], "prompt": "next"}
        )
        assert structured(again)["turn_id"] == "turn-3"


async def test_run_turn_continues_a_thread_saved_by_an_earlier_server(
    settings: Settings, model: ScriptedModel, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()  # Not a git repository: the thread skipped the check.
    async with Client(serve(settings)) as first_server:
        first = await _start(
            first_server, model, working_directory=str(elsewhere), skip_git_repo_check=True
        )
        model.add(replies.message("second"))
        await first_server.call_tool("run_turn", {"thread_id": first["thread_id"], "prompt": "2"})

    # Hosts such as `codex exec` start a new server for each of their sessions.
    async with Client(serve(settings)) as second_server:
        thread = {"thread_id": first["thread_id"]}
        for tool in ("wait_turn", "get_thread", "interrupt_turn"):
            result = await second_server.call_tool(tool, thread)
            assert result.is_error
            assert "did not run in this server" in text(result), text(result)
            assert "run_turn continues it" in text(result)

        model.add(replies.message("third"))
        result = await second_server.call_tool("run_turn", {**thread, "prompt": "3"})
        turn = structured(result)
        assert (turn["status"], turn["final_response"]) == ("completed", "third"), text(result)
        assert turn["turn_id"] == "turn-3"
        assert turn["usage"] == first["usage"]
        assert "second" in json.dumps(model.requests[-1].input)  # The thread's history.
        info = structured(await second_server.call_tool("get_thread", thread))
        assert info["working_directory"] == str(elsewhere)
        assert [t["turn_id"] for t in info["turns"]] == ["turn-3"]


async def test_resume_without_prompt_registers_the_thread(
    settings: Settings, model: ScriptedModel
) -> None:
    async with Client(serve(settings)) as first_server:
        first = await _start(first_server, model)
    async with Client(serve(settings)) as second_server:
        result = await second_server.call_tool("resume_thread", {"thread_id": first["thread_id"]})
        assert not result.is_error
        assert structured(result)["thread_id"] == first["thread_id"]
        info = await second_server.call_tool("get_thread", {"thread_id": first["thread_id"]})
        assert structured(info)["turns"] == []


async def _wait_for_request(model: ScriptedModel, count: int) -> None:
    await anyio.to_thread.run_sync(model.wait_for_requests, count, 20.0)


async def test_busy_thread_and_interrupt_turn(
    client: Client, model: ScriptedModel, server_env: Path
) -> None:
    first = await _start(client, model)
    thread_id = first["thread_id"]
    model.add(replies.hang())
    outcome: dict[str, Any] = {}

    async def long_turn() -> None:
        outcome["result"] = await client.call_tool(
            "run_turn", {"thread_id": thread_id, "prompt": "long"}
        )

    async with anyio.create_task_group() as group:
        group.start_soon(long_turn)
        await _wait_for_request(model, 2)
        busy = await client.call_tool("run_turn", {"thread_id": thread_id, "prompt": "again"})
        assert busy.is_error
        assert "busy" in text(busy) and "interrupt_turn" in text(busy)
        running = structured(await client.call_tool("get_thread", {"thread_id": thread_id}))
        assert running["status"] == "running"

        stopped = await client.call_tool("interrupt_turn", {"thread_id": thread_id})
        assert structured(stopped) == {
            "thread_id": thread_id,
            "turn_id": "turn-2",
            "status": "interrupted",
            "next_step": f"Continue the thread with run_turn(thread_id={thread_id!r}, prompt=...).",
        }
        left = wait_until_gone(server_env, find=turn_processes)
        assert left == [], describe(left)
    result = outcome["result"]
    assert result.is_error
    assert structured(result)["status"] == "interrupted"
    idle = await client.call_tool("interrupt_turn", {"thread_id": thread_id})
    assert structured(idle)["status"] == "idle"

    model.add(replies.message("usable again"))
    again = await client.call_tool("run_turn", {"thread_id": thread_id, "prompt": "go on"})
    assert structured(again)["final_response"] == "usable again"


async def test_client_cancellation_stops_the_turn(
    client: Client, model: ScriptedModel, server_env: Path
) -> None:
    first = await _start(client, model)
    model.add(replies.hang())
    async with anyio.create_task_group() as group:

        async def call() -> None:
            await client.call_tool("run_turn", {"thread_id": first["thread_id"], "prompt": "x"})

        group.start_soon(call)
        await _wait_for_request(model, 2)
        assert codex_processes(server_env) != []
        group.cancel_scope.cancel()
    left = wait_until_gone(server_env, find=turn_processes)
    assert left == [], describe(left)
    info = await settled_thread(client, first["thread_id"])
    assert info["turns"][-1]["status"] == "interrupted"


async def test_heartbeat_while_codex_is_silent(
    server_env: Path, workdir: Path, model: ScriptedModel
) -> None:
    model.add(replies.message("late", delay=1.0))
    progress = ProgressLog()
    async with Client(serve(Settings(cwd=workdir, heartbeat_interval=0.2))) as client:
        result = await client.call_tool("start_thread", {"prompt": "x"}, progress_callback=progress)
    assert structured(result)["final_response"] == "late"
    beats = [m for m in progress.messages if m.startswith("working…")]
    assert len(beats) >= 2
    assert progress.values == sorted(set(progress.values))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"working_directory": "/does/not/exist"}, "does not exist"),
        ({"sandbox_mode": "danger-full-access"}, "above this server's ceiling"),
        ({"images": ["missing.png"]}, "image missing.png not found"),
        ({"output_schema": {"type": "array"}}, '"type": "object"'),
        ({"config": {"model": None}}, "cannot be null"),
        ({"sandbox_mode": "everything"}, "sandbox_mode"),
        ({"prompt": ""}, "prompt"),
        ({"unknown_option": 1}, "unknown_option"),
        ({"additional_directories": ["/nope"]}, "additional directory /nope does not exist"),
    ],
)
async def test_bad_arguments_are_clear_errors(
    client: Client, model: ScriptedModel, arguments: dict[str, Any], message: str
) -> None:
    result = await client.call_tool("start_thread", {"prompt": "x", **arguments})
    assert result.is_error
    assert message in text(result)
    assert model.requests == []
    listed = await client.call_tool("list_threads", {})
    assert structured(listed)["threads"] == []


@pytest.mark.parametrize(
    ("tool", "arguments", "lines"),
    [
        ("start_thread", {}, ["- prompt: required but missing: what Codex should do"]),
        ("start_thread", {"prompt": 3}, ["- prompt: should be a valid string; got 3."]),
        ("run_turn", {"prompt": "x"}, ["- thread_id: required but missing: the Codex thread id"]),
        (
            "start_thread",
            {"prompt": "x", "sandbox_mode": "bogus", "images": [1]},
            [
                "- sandbox_mode: should be 'read-only', 'workspace-write' or "
                "'danger-full-access'; got \"bogus\".",
                "- images.0: should be a valid string; got 1.",
            ],
        ),
        (
            "start_thread",
            {"prompt": "x", "cwd": "/tmp"},
            ["- cwd: start_thread has no such field.", "start_thread takes: working_directory"],
        ),
        ("wait_turn", {"thread_id": "t", "timeout_s": 1e6}, ["- timeout_s: should be less than"]),
        ("codex", {"prompt": "x" * 100, "sandbox": {}}, ["- sandbox: should be 'read-only'"]),
    ],
)
async def test_invalid_arguments_read_alike(
    tmp_path: Path, tool: str, arguments: dict[str, Any], lines: list[str]
) -> None:
    """Field, what is wrong and what to send, in the server's words: no pydantic report."""
    async with Client(serve(Settings(cwd=tmp_path, tool_set="all"))) as client:
        result = await client.call_tool(tool, arguments)
    assert result.is_error
    message = text(result)
    assert f"Invalid arguments for {tool}:" in message
    for line in lines:
        assert line in message, message
    assert message.endswith("Send the call again with these fields corrected.")
    for pydantic_words in ("pydantic", "http", "type=", "input_value", "validation error"):
        assert pydantic_words not in message, message


async def test_paths_outside_the_allowed_roots_are_refused(
    server_env: Path, workdir: Path, tmp_path: Path, model: ScriptedModel
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(png())
    (workdir / "escape").symlink_to(outside)
    settings = Settings(cwd=workdir, allowed_roots=(workdir,))
    async with Client(serve(settings)) as client:
        for arguments in (
            {"working_directory": str(outside)},
            {"working_directory": "escape"},
            {"working_directory": "../outside"},
            {"images": ["escape/secret.png"]},
            {"images": ["../outside/secret.png"]},
            {"additional_directories": ["escape"]},
        ):
            result = await client.call_tool("start_thread", {"prompt": "x", **arguments})
            assert result.is_error, arguments
            assert "outside the directories this server allows" in text(result)
    assert model.requests == []


@pytest.mark.parametrize(
    ("tool", "arguments", "message"),
    [
        ("run_turn", {"thread_id": "nope", "prompt": "x"}, "call resume_thread"),
        ("get_thread", {"thread_id": "nope"}, "Unknown thread_id"),
        ("interrupt_turn", {"thread_id": "nope"}, "Unknown thread_id"),
        ("resume_thread", {"thread_id": "0199-not-a-thread"}, "No Codex session"),
        ("resume_thread", {"thread_id": "../../etc/passwd"}, "No Codex session"),
    ],
)
async def test_unknown_threads(
    client: Client, tool: str, arguments: dict[str, Any], message: str
) -> None:
    result = await client.call_tool(tool, arguments)
    assert result.is_error
    assert message in text(result)
    assert arguments["thread_id"] in text(result)


async def test_an_error_about_a_thread_names_it(client: Client, model: ScriptedModel) -> None:
    # The text is all a host shows its model of an error result: it says which thread.
    thread_id = (await _start(client, model))["thread_id"]
    result = await client.call_tool(
        "run_turn", {"thread_id": thread_id, "prompt": "x", "images": ["missing.png"]}
    )
    assert result.is_error
    assert "missing.png" in text(result) and thread_id in text(result)


async def test_turn_failed_is_an_error_result_that_keeps_the_thread(
    client: Client, model: ScriptedModel
) -> None:
    first = await _start(client, model)
    model.add(replies.failure("model overloaded"))
    result = await client.call_tool("run_turn", {"thread_id": first["thread_id"], "prompt": "x"})
    assert result.is_error
    turn = structured(result)
    assert turn["status"] == "failed"
    assert "model overloaded" in turn["error"]
    # Claude Code shows its model only the text of an error result: it leads with the cause,
    # the thread and what to do next.
    first_line, next_line = text(result).splitlines()[:2]
    assert first_line.startswith(f"Turn turn-2 of thread {first['thread_id']} failed: ")
    assert "model overloaded" in first_line
    assert next_line.startswith("Next: ") and "run_turn" in next_line

    model.add(replies.message("recovered"))
    again = await client.call_tool("run_turn", {"thread_id": first["thread_id"], "prompt": "y"})
    assert structured(again)["final_response"] == "recovered"


@exec_only
async def test_codex_exiting_non_zero_names_code_and_stderr(
    client: Client, model: ScriptedModel
) -> None:
    result = await client.call_tool("start_thread", {"prompt": "x", "approval_policy": "untrusted"})
    assert result.is_error
    assert "exited with code 1" in text(result)
    assert "no longer supported" in text(result)


async def test_a_directory_outside_git_names_skip_git_repo_check(
    client: Client, model: ScriptedModel, tmp_path: Path
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    arguments: dict[str, Any] = {"prompt": "x", "working_directory": str(plain)}
    result = await client.call_tool("start_thread", arguments)
    assert result.is_error
    message = text(result).removeprefix("Error executing tool start_thread: ")
    assert message.startswith(
        f"Codex could not start the thread: Codex refused to work in {plain.resolve()}: it is "
        "not inside a Git repository"
    ), message
    assert "skip_git_repo_check: true" in message
    # Codex's own words follow (exec's; the app-server engine applies exec's rule in its
    # words), the cause before unrelated warnings.
    assert "Not inside a trusted directory" in message
    assert model.requests == []

    model.add(replies.message("ok"))
    again = await client.call_tool("start_thread", {**arguments, "skip_git_repo_check": True})
    assert structured(again)["final_response"] == "ok"


async def test_missing_codex_binary_says_how_to_install(
    server_env: Path, workdir: Path, tmp_path: Path
) -> None:
    settings = Settings(cwd=workdir, codex_path=str(tmp_path / "missing-codex"))
    async with Client(serve(settings)) as client:
        result = await client.call_tool("start_thread", {"prompt": "x"})
    assert result.is_error
    assert "pip install 'mcp-server-codex[bundled]'" in text(result)


@exec_only
async def test_a_turn_that_only_reconnects_fails_with_the_warning(
    server_env: Path, workdir: Path, tmp_path: Path
) -> None:
    fake = _fake_codex(tmp_path, RECONNECTING_FOREVER)
    settings = Settings(cwd=workdir, codex_path=fake, idle_timeout=1.0)
    progress = ProgressLog()
    async with Client(serve(settings)) as client:
        result = await client.call_tool("start_thread", {"prompt": "x"}, progress_callback=progress)
        assert result.is_error
        turn = structured(result)
        assert turn["status"] == "failed"
        assert "made no progress for 1 s" in turn["error"]
        assert "last warning: Reconnecting..." in turn["error"]
        assert progress.messages[0].startswith("warning: Reconnecting... 1/5")
        assert (await client.call_tool("list_threads", {})).is_error is False
