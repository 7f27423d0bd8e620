"""The SDK's app-server engine on the real codex binary and the scripted model: warm turns,
the events the exec engine gives, interrupts that leave nothing running, a dying app-server,
the writer lock, and a clean stop."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from codex_mcp_server.sdk import Codex, CodexError, CodexExecError
from codex_mcp_server.sdk.app_server import AppServerEngine, ThreadLockedError
from codex_mcp_server.sdk.app_server import connection as connection_module
from codex_mcp_server.sdk.app_server.connection import Connection
from codex_mcp_server.sdk.options import ThreadOptions
from codex_mcp_server.testing import ScriptedModel, codex_env, replies

from .procs import codex_processes, describe, turn_processes, wait_until_gone
from .test_sdk_codex import _fake_codex


@pytest.fixture
async def codex(codex_home: Path) -> AsyncIterator[Codex]:
    async with Codex({"env": codex_env(codex_home)}, engine="app-server") as client:
        yield client


_SETTINGS = ("cwd", "model", "approvalPolicy", "effort", "sandboxPolicy")


def _engine(codex: Codex) -> AppServerEngine:
    assert isinstance(codex.engine, AppServerEngine)
    return codex.engine


def _wait_dead(engine: AppServerEngine) -> None:
    deadline = time.monotonic() + 10.0
    while engine.pid is not None:
        assert time.monotonic() < deadline, "the killed app-server was never noticed"
        time.sleep(0.01)


async def test_warm_turns_keep_the_history_and_the_process(
    codex: Codex, model: ScriptedModel, workdir: Path
) -> None:
    model.add(replies.command("echo hi"), replies.message("first"), replies.message("second"))
    thread = codex.start_thread({"working_directory": str(workdir)})
    thread_id = await thread.start()
    assert thread_id is not None and thread.id == thread_id  # Named before any turn.
    pid = _engine(codex).pid
    first = await thread.run("run echo")
    second = await thread.run("and then?")
    assert [item["type"] for item in first.items] == ["command_execution", "agent_message"]
    assert first.items[0]["aggregated_output"] == "hi\n"  # type: ignore[typeddict-item]
    assert (first.final_response, second.final_response) == ("first", "second")
    # Usage is summed over the thread, as exec reports it.
    assert first.usage is not None and second.usage is not None
    assert second.usage["input_tokens"] - first.usage["input_tokens"] == 42
    assert _engine(codex).pid == pid  # One process for every turn.
    history = model.requests[-1].input
    assert any(item.get("role") == "assistant" for item in history)


async def test_a_streamed_turn_gives_the_exec_events(
    codex: Codex, model: ScriptedModel, workdir: Path
) -> None:
    model.add(replies.message("done", reasoning="**Looking** around"))
    streamed = await codex.start_thread({"working_directory": str(workdir)}).run_streamed("x")
    kinds = [event["type"] async for event in streamed.events]
    assert kinds[0] == "thread.started"
    assert kinds[1] == "turn.started"
    assert kinds[-1] == "turn.completed"
    assert "item.completed" in kinds


async def test_closing_a_turn_interrupts_it_and_stops_its_commands(
    codex: Codex, model: ScriptedModel, workdir: Path, codex_home: Path
) -> None:
    model.add(replies.command("sleep 30"), replies.hang())
    thread = codex.start_thread({"working_directory": str(workdir)})
    async with await thread.run_streamed("sleep") as streamed:
        async for event in streamed.events:
            if event["type"] == "item.started":
                break
        await anyio.to_thread.run_sync(model.wait_for_requests, 2, 20.0)
    left = await anyio.to_thread.run_sync(wait_until_gone, codex_home, 2.0, turn_processes)
    assert left == [], describe(left)
    model.add(replies.message("after"))
    turn = await thread.run("next")
    assert turn.final_response == "after"


async def test_a_dying_app_server_fails_the_turn_and_the_next_one_starts_again(
    codex: Codex, model: ScriptedModel, workdir: Path
) -> None:
    model.add(replies.message("one"), replies.hang(), replies.message("three"))
    thread = codex.start_thread({"working_directory": str(workdir)})
    await thread.run("1")
    first_pid = _engine(codex).pid
    assert first_pid is not None

    async def kill_when_asked() -> None:
        await anyio.to_thread.run_sync(model.wait_for_requests, 2, 20.0)
        os.kill(first_pid, signal.SIGKILL)

    async with anyio.create_task_group() as group:
        group.start_soon(kill_when_asked)
        with pytest.raises(CodexExecError, match="codex app-server exited with signal 9"):
            await thread.run("2")
    turn = await thread.run("3")  # A new app-server loads the thread again.
    assert turn.final_response == "three"
    assert _engine(codex).pid not in (None, first_pid)


async def test_a_turn_sends_only_the_settings_that_changed(
    codex: Codex, model: ScriptedModel, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[dict[str, Any]] = []
    call = Connection.call

    async def record(self: Connection, method: str, params: Any = None) -> Any:
        if method == "turn/start":
            sent.append({key: value for key, value in params.items() if key in _SETTINGS})
        return await call(self, method, params)

    monkeypatch.setattr(Connection, "call", record)
    model.respond_with(lambda request: replies.message("ok"))
    options: ThreadOptions = {"working_directory": str(workdir), "sandbox_mode": "read-only"}
    thread = codex.start_thread({**options, "approval_policy": "never"})
    await thread.run("1")
    await thread.run("2")
    # The thread, still loaded, resumed with another sandbox: only that is sent.
    resumed = codex.resume_thread(
        thread.id or "", {**options, "approval_policy": "never", "sandbox_mode": "workspace-write"}
    )
    await resumed.run("3")
    assert set(sent[0]) == {"cwd", "approvalPolicy", "sandboxPolicy"}
    assert sent[1] == {}  # Codex keeps a turn's settings for the later turns.
    assert list(sent[2]) == ["sandboxPolicy"]
    assert sent[2]["sandboxPolicy"]["type"] == "workspaceWrite"
    # Codex told the model of the new sandbox (and not the old one) in that turn.
    news = json.dumps(model.requests[2].input[len(model.requests[1].input) :])
    assert "workspace-write" in news and "read-only" not in news
    # A new app-server knows none of them: the next turn sends them all again.
    os.kill(_engine(codex).pid or 0, signal.SIGKILL)
    await anyio.to_thread.run_sync(_wait_dead, _engine(codex))
    await resumed.run("4")
    assert set(sent[3]) == {"cwd", "approvalPolicy", "sandboxPolicy"}


async def test_codex_sends_no_status_notices_nobody_reads(
    codex: Codex, model: ScriptedModel, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each line read wakes the reader and the turn: a warm turn read 12, 4 of them these.
    read: list[str] = []
    loads = connection_module.loads_json

    def record(line: bytes | bytearray | str) -> Any:
        message = loads(line)
        read.append(str(message.get("method")))
        return message

    monkeypatch.setattr(connection_module, "loads_json", record)
    model.respond_with(lambda request: replies.message("ok"))
    thread = codex.start_thread({"working_directory": str(workdir)})
    await thread.run("1")
    turn = await thread.run("2")
    assert turn.final_response == "ok" and "turn/completed" in read
    unread = {"thread/status/changed", "thread/readState/changed", "account/rateLimits/updated"}
    assert not unread & set(read)


async def test_a_thread_held_by_another_app_server_is_refused_in_words(
    codex: Codex, model: ScriptedModel, workdir: Path, codex_home: Path
) -> None:
    model.add(replies.message("mine"))
    thread = codex.start_thread({"working_directory": str(workdir)})
    await thread.run("x")
    assert thread.id is not None
    async with Codex({"env": codex_env(codex_home)}, engine="app-server") as other:
        with pytest.raises(ThreadLockedError, match="open in another Codex process"):
            await other.resume_thread(thread.id).start()


async def test_an_app_server_that_exits_at_once_says_why(tmp_path: Path, workdir: Path) -> None:
    fake = _fake_codex(tmp_path, "import sys; sys.stderr.write('no such thing\\n'); sys.exit(3)")
    async with Codex({"codex_path_override": fake}, engine="app-server") as codex:
        with pytest.raises(CodexExecError, match="exited with code 3: no such thing"):
            await codex.start_thread({"working_directory": str(workdir)}).run("x")


async def test_the_engine_needs_its_context(codex_home: Path) -> None:
    codex = Codex({"env": codex_env(codex_home)}, engine="app-server")
    with pytest.raises(CodexError, match="async with"):
        await codex.start_thread().run("x")


async def test_leaving_the_context_stops_everything(
    model: ScriptedModel, workdir: Path, codex_home: Path
) -> None:
    model.add(replies.command("sleep 30"), replies.hang())
    async with Codex({"env": codex_env(codex_home)}, engine="app-server") as codex:
        streamed = await codex.start_thread({"working_directory": str(workdir)}).run_streamed("x")
        async for event in streamed.events:
            if event["type"] == "item.started":
                break
        assert codex_processes(codex_home) != []
        await streamed.aclose()
    left = await anyio.to_thread.run_sync(wait_until_gone, codex_home, 2.0)
    assert left == [], describe(left)


async def test_idle_threads_past_the_bound_are_let_go_and_load_again(
    codex: Codex, model: ScriptedModel, workdir: Path
) -> None:
    engine = _engine(codex)
    engine.max_loaded_threads = 1
    model.add(replies.message("a1"), replies.message("b1"), replies.message("a2"))
    first = codex.start_thread({"working_directory": str(workdir)})
    await first.run("a")
    second = codex.start_thread({"working_directory": str(workdir)})
    await second.run("b")
    connection = await engine.connect()
    assert list(connection.loaded) == [second.id]  # The first was unsubscribed.
    turn = await first.run("a again")  # Resumed into the same process.
    assert turn.final_response == "a2"
    assert list(connection.loaded) == [first.id]
