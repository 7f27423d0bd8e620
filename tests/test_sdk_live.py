"""The SDK's live-thread API on the real codex binary: Thread.steer, Thread.fork,
Thread.review_streamed and a turn's on_request (app-server engine), and the clear refusals of
the exec engine."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import anyio
import pytest

from codex_mcp_server.sdk import (
    Codex,
    NoActiveTurnError,
    ThreadOptions,
    UnsupportedByEngineError,
)
from codex_mcp_server.testing import ScriptedModel, codex_env, replies

THREAD_ID = "0199a213-81c0-7800-8aa1-bbab2a035a53"


@pytest.fixture
async def codex(codex_home: Path) -> AsyncIterator[Codex]:
    async with Codex({"env": codex_env(codex_home)}, engine="app-server") as client:
        yield client


async def test_exec_cannot_steer_fork_or_review_and_says_so(
    codex_home: Path, model: ScriptedModel
) -> None:
    thread = Codex({"env": codex_env(codex_home)}).resume_thread(THREAD_ID)
    with pytest.raises(UnsupportedByEngineError, match="app-server"):
        await thread.steer("more")
    with pytest.raises(UnsupportedByEngineError, match="app-server"):
        await thread.fork()
    review = await thread.review_streamed({"type": "uncommittedChanges"})
    with pytest.raises(UnsupportedByEngineError, match=r"code review.*app-server"):
        async with review:
            async for _ in review.events:
                pass
    assert not model.requests  # Refused before any codex ran.


async def test_a_review_is_a_turn_whose_last_message_is_the_review(
    codex: Codex, model: ScriptedModel, workdir: Path
) -> None:
    new = workdir / "new.py"
    new.write_text("print(1/0)\n")
    found = replies.finding("Crashes", "Divides by zero at import.", str(new))
    model.add(replies.review("Broken on import.", (found,)))
    thread = codex.start_thread({"working_directory": str(workdir)})
    messages: list[str] = []
    kinds: list[str] = []
    async with await thread.review_streamed({"type": "uncommittedChanges"}) as review:
        async for event in review.events:
            kinds.append(event["type"])
            if event["type"] == "item.completed" and event["item"]["type"] == "agent_message":
                messages.append(event["item"]["text"])
    assert kinds[:2] == ["thread.started", "turn.started"] and kinds[-1] == "turn.completed"
    assert messages[-1].startswith("Broken on import.")
    assert f"Crashes — {new}:1-1" in messages[-1]


async def test_steer_on_an_idle_thread_names_run(
    codex: Codex, model: ScriptedModel, workdir: Path
) -> None:
    model.add(replies.message("hi"))
    thread = codex.start_thread({"working_directory": str(workdir)})
    await thread.run("x")
    with pytest.raises(NoActiveTurnError, match="run_turn"):
        await thread.steer("more")


async def test_a_turns_on_request_answers_for_that_turn(
    codex: Codex, model: ScriptedModel, workdir: Path
) -> None:
    asked: list[tuple[str, Mapping[str, Any]]] = []

    async def engine_wide(method: str, params: Mapping[str, Any]) -> Any:
        raise AssertionError("the turn's own handler answers")

    async def for_this_turn(method: str, params: Mapping[str, Any]) -> Any:
        asked.append((method, params))
        return {"decision": "accept"}

    codex.engine.on_request = engine_wide  # type: ignore[attr-defined]
    model.add(replies.command("touch made.txt", escalate="needed", login=False))
    model.add(replies.message("done"))
    options: ThreadOptions = {
        "working_directory": str(workdir),
        "approval_policy": "on-request",
        "sandbox_mode": "read-only",
    }
    turn = await codex.start_thread(options).run("x", {"on_request": for_this_turn})
    assert turn.final_response == "done"
    [(method, params)] = asked
    assert method == "item/commandExecution/requestApproval"
    assert params["reason"] == "needed"
    assert (workdir / "made.txt").exists()


async def test_steer_and_fork_through_the_sdk(
    codex: Codex, model: ScriptedModel, workdir: Path
) -> None:
    model.add(replies.command("echo one", delay=4.0), replies.message("done"))
    thread = codex.start_thread({"working_directory": str(workdir)})
    await thread.start()
    async with anyio.create_task_group() as group:
        group.start_soon(thread.run, "begin")
        await anyio.to_thread.run_sync(model.wait_for_requests, 1, 30.0)
        for _ in range(100):  # The turn's id arrives with turn/start's answer.
            try:
                await thread.steer("also mind the tests")
                break
            except NoActiveTurnError:
                await anyio.sleep(0.05)
    assert "also mind the tests" in str(model.requests[1].input)
    model.add(replies.message("forked"))
    fork = await thread.fork()
    assert fork.id not in (None, thread.id)
    turn = await fork.run("go on")
    assert turn.final_response == "forked"
    assert "also mind the tests" in str(model.requests[-1].input)
