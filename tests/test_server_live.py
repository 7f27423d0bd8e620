"""What only a live thread can do, through the MCP client on the real codex binary: steering a
running turn, forking a thread (also one another Codex process holds), and approvals that reach
the host (elicitation, answer_approval, timeouts), live text and diffs, and code review."""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.session import ClientRequestContext
from mcp.types import ElicitRequestParams, ElicitResult

from codex_mcp_server.sdk import Codex
from codex_mcp_server.server import Settings
from codex_mcp_server.server.approvals import answer_request
from codex_mcp_server.server.registry import TurnRecord
from codex_mcp_server.testing import ScriptedModel, codex_env, replies

from .server_support import ProgressLog, exec_only, serve, structured, text
from .test_server_tools import server_env  # noqa: F401  (fixture)


@pytest.fixture
def settings(server_env: Path, workdir: Path) -> Settings:  # noqa: F811
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
    for _ in range(100):  # The turn's id arrives with turn/start's answer.
        answer = await client.call_tool(
            "steer_turn", {"thread_id": thread_id, "prompt": "focus on the tests"}
        )
        if not answer.is_error:
            break
        await anyio.sleep(0.05)
    steered = structured(answer)
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
    server_env: Path,  # noqa: F811
    workdir: Path,
    model: ScriptedModel,
    backend: str,
) -> None:
    async with Client(serve(Settings(cwd=workdir, backend="exec"))) as client:
        model.add(replies.message("hi"))
        started = await _call(client, "start_thread", prompt="begin")
        for tool, arguments in (
            ("steer_turn", {"prompt": "more"}),
            ("fork_thread", {}),
            ("answer_approval", {"request_id": "approval-1", "decision": "accept"}),
            ("review", {}),
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


# ------------------------------------------------------------------ approvals

ESCALATED = "touch made.txt"
ON_REQUEST = {"approval_policy": "on-request", "sandbox_mode": "read-only"}


def _escalation(model: ScriptedModel) -> None:
    model.add(
        replies.command(ESCALATED, escalate="Create the file the user asked for", login=False),
        replies.message("done"),
    )


class _Host:
    """An elicitation callback: records what the person saw and answers as told."""

    def __init__(self, action: str, decision: str | None = None) -> None:
        self.action = action
        self.decision = decision
        self.asked: list[ElicitRequestParams] = []
        self.release = anyio.Event()

    async def __call__(
        self, context: ClientRequestContext, params: ElicitRequestParams
    ) -> ElicitResult:
        self.asked.append(params)
        if self.action == "never":
            await self.release.wait()  # A person who walked away.
            return ElicitResult(action="cancel")
        content = {"decision": self.decision} if self.decision else None
        return ElicitResult(action=self.action, content=content)  # type: ignore[arg-type]


def _command_item(turn: dict[str, Any], workdir: Path) -> dict[str, Any]:
    info = turn["actions"]["commands"]
    assert len(info) == 1, info
    return dict(info[0])


async def test_a_person_accepts_a_command_through_elicitation(
    settings: Settings, model: ScriptedModel, workdir: Path
) -> None:
    host = _Host("accept", "accept")
    _escalation(model)
    progress = ProgressLog()
    async with Client(serve(settings), mode="legacy", elicitation_callback=host) as client:
        result = await client.call_tool(
            "start_thread", {"prompt": "make it", **ON_REQUEST}, progress_callback=progress
        )
    turn = structured(result)
    assert (turn["status"], turn["final_response"]) == ("completed", "done"), text(result)
    assert (workdir / "made.txt").exists()
    assert _command_item(turn, workdir)["status"] == "completed"
    [asked] = host.asked
    assert ESCALATED in asked.message and str(workdir) in asked.message
    assert "Create the file the user asked for" in asked.message
    choices = asked.requested_schema["properties"]["decision"]["oneOf"]  # type: ignore[index]
    # Codex 0.163 offers no accept-for-session for an escalated command: neither do we.
    assert [choice["const"] for choice in choices] == ["accept", "decline"]
    assert any(line.startswith("asking the host (approval-1)") for line in progress.messages)
    assert turn["pending"] == []


async def test_a_persons_no_declines_the_command_and_the_turn_goes_on(
    settings: Settings, model: ScriptedModel, workdir: Path
) -> None:
    for host in (_Host("decline"), _Host("accept", "decline"), _Host("cancel")):
        _escalation(model)
        async with Client(serve(settings), mode="legacy", elicitation_callback=host) as client:
            result = await client.call_tool("start_thread", {"prompt": "make it", **ON_REQUEST})
        turn = structured(result)
        # "No" is decline, never cancel (which would end the turn as interrupted).
        assert (turn["status"], turn["final_response"]) == ("completed", "done"), text(result)
        assert _command_item(turn, workdir)["status"] == "declined"
        assert "rejected" in json.dumps(model.requests[-1].input)
        assert not (workdir / "made.txt").exists()


async def test_an_unanswered_elicitation_is_declined_after_the_timeout(
    server_env: Path,  # noqa: F811
    model: ScriptedModel,
    workdir: Path,
) -> None:
    settings = Settings(cwd=workdir, backend="app-server", approval_timeout=1.0)
    host = _Host("never")
    _escalation(model)
    progress = ProgressLog()
    async with Client(serve(settings), mode="legacy", elicitation_callback=host) as client:
        result = await client.call_tool(
            "start_thread", {"prompt": "make it", **ON_REQUEST}, progress_callback=progress
        )
        host.release.set()
    turn = structured(result)
    assert turn["status"] == "completed", text(result)
    assert _command_item(turn, workdir)["status"] == "declined"
    assert any("nobody answered within 1 s" in line for line in progress.messages)
    assert not (workdir / "made.txt").exists()


async def test_without_elicitation_the_turn_waits_for_answer_approval(
    client: Client, model: ScriptedModel, workdir: Path
) -> None:
    _escalation(model)
    progress = ProgressLog()
    result = await client.call_tool(
        "start_thread", {"prompt": "make it", **ON_REQUEST}, progress_callback=progress
    )
    waiting = structured(result)
    thread_id = waiting["thread_id"]
    assert waiting["status"] == "waiting_for_approval", text(result)
    [pending] = waiting["pending"]
    assert pending["request_id"] == "approval-1"
    assert (pending["kind"], pending["command"], pending["cwd"]) == (
        "command",
        ESCALATED,
        str(workdir),
    )
    assert pending["reason"] == "Create the file the user asked for"
    assert pending["decisions"] == ["accept", "decline"]
    assert "answer_approval" in waiting["next_step"] and "approval-1" in text(result)
    assert any("waiting for approval approval-1" in line for line in progress.messages)
    # wait_turn and get_thread show it too, at once.
    again = await _call(client, "wait_turn", thread_id=thread_id, timeout_s=30)
    assert again["status"] == "waiting_for_approval" and again["pending"] == waiting["pending"]
    info = await _call(client, "get_thread", thread_id=thread_id)
    assert info["turns"][-1]["status"] == "waiting_for_approval"
    for bad, why in (
        ({"request_id": "approval-9", "decision": "accept"}, "pending: approval-1"),
        ({"request_id": "approval-1", "decision": "accept_for_session"}, "accept or decline"),
    ):
        refused = await client.call_tool("answer_approval", {"thread_id": thread_id, **bad})
        assert refused.is_error and why in text(refused), text(refused)
    answered = await _call(
        client, "answer_approval", thread_id=thread_id, request_id="approval-1", decision="accept"
    )
    assert answered["status"] == "running" and answered["pending"] == []
    done = await _call(client, "wait_turn", thread_id=thread_id)
    assert (done["status"], done["final_response"]) == ("completed", "done")
    assert (workdir / "made.txt").exists()


async def test_a_file_change_shows_the_diff_and_takes_accept_for_session(
    settings: Settings, model: ScriptedModel, workdir: Path
) -> None:
    host = _Host("accept", "accept_for_session")
    model.add(
        replies.patch("*** Begin Patch\n*** Add File: notes.txt\n+hello there\n*** End Patch\n"),
        replies.message("written"),
    )
    async with Client(serve(settings), mode="legacy", elicitation_callback=host) as client:
        result = await client.call_tool("start_thread", {"prompt": "write", **ON_REQUEST})
    turn = structured(result)
    assert (turn["status"], turn["final_response"]) == ("completed", "written"), text(result)
    [asked] = host.asked
    assert "notes.txt (add)" in asked.message and "hello there" in asked.message
    choices = asked.requested_schema["properties"]["decision"]["oneOf"]  # type: ignore[index]
    assert [c["const"] for c in choices] == ["accept", "accept_for_session", "decline"]
    assert (workdir / "notes.txt").read_text() == "hello there\n"


async def test_an_mcp_servers_question_is_relayed_one_to_one() -> None:
    """Codex's MCP servers' elicitations reach the host with their own form, and the host's
    answer goes back as it is (a "no" as decline)."""
    schema = {"type": "object", "properties": {"branch": {"type": "string"}}}
    params = {
        "threadId": "t",
        "turnId": "u",
        "serverName": "docs",
        "mode": "form",
        "message": "Which branch?",
        "requestedSchema": schema,
        "_meta": None,
    }

    class Person:
        can_ask = True

        def __init__(self, action: str) -> None:
            self.action = action
            self.seen: list[tuple[str, dict[str, Any]]] = []

        async def __call__(self, line: str) -> None:
            pass

        async def ask(
            self, message: str, form: dict[str, Any]
        ) -> tuple[str, dict[str, Any] | None]:
            self.seen.append((message, form))
            return self.action, {"branch": "main"} if self.action == "accept" else None

    for action, expected in (
        ("accept", {"action": "accept", "content": {"branch": "main"}, "_meta": None}),
        ("cancel", {"action": "decline", "content": None, "_meta": None}),
    ):
        person = Person(action)
        turn = TurnRecord("turn-1", "p")
        async with turn.listening(person):
            answer = await answer_request(turn, 5.0, "/w", "mcpServer/elicitation/request", params)
        assert answer == expected
        [(message, form)] = person.seen
        assert form == schema and "docs" in message and "Which branch?" in message
        assert turn.pending == {}


async def test_a_background_turn_waits_and_an_interrupt_declines_what_waits(
    client: Client, model: ScriptedModel, workdir: Path
) -> None:
    model.add(replies.command(ESCALATED, escalate="Create it", login=False))
    started = await _call(client, "start_thread", prompt="make it", background=True, **ON_REQUEST)
    thread_id = started["thread_id"]
    waiting = await _call(client, "wait_turn", thread_id=thread_id, timeout_s=60)
    assert waiting["status"] == "waiting_for_approval"
    assert [p["request_id"] for p in waiting["pending"]] == ["approval-1"]
    await _call(client, "interrupt_turn", thread_id=thread_id)
    info = await _call(client, "get_thread", thread_id=thread_id)
    assert info["turns"][-1]["status"] == "interrupted" and info["turns"][-1]["pending"] == []
    assert not (workdir / "made.txt").exists()
    model.add(replies.message("still usable"))
    after = await _call(client, "run_turn", thread_id=thread_id, prompt="next")
    assert after["final_response"] == "still usable"


# ------------------------------------------------------------------ live text and diffs


async def test_the_turn_result_carries_its_diff(
    client: Client, model: ScriptedModel, workdir: Path
) -> None:
    model.add(
        replies.patch("*** Begin Patch\n*** Add File: notes.txt\n+hello there\n*** End Patch\n"),
        replies.message("written"),
    )
    result = await client.call_tool(
        "start_thread", {"prompt": "write", "sandbox_mode": "workspace-write"}
    )
    turn = structured(result)
    assert turn["status"] == "completed", text(result)
    assert "diff --git a/notes.txt b/notes.txt" in turn["diff"]
    assert "+hello there" in turn["diff"]
    assert "Diff: 1 file(s), +1 -0 lines" in text(result)
    info = await _call(client, "get_thread", thread_id=turn["thread_id"])
    assert info["turns"][0]["diff"] == turn["diff"]


async def test_a_long_diff_is_cut_in_the_result_and_whole_in_the_resource(
    client: Client, model: ScriptedModel
) -> None:
    lines = "".join(f"+line {i} of a long file\n" for i in range(3000))
    model.add(
        replies.patch(f"*** Begin Patch\n*** Add File: long.txt\n{lines}*** End Patch\n"),
        replies.message("written"),
    )
    turn = await _call(client, "start_thread", prompt="write", sandbox_mode="workspace-write")
    uri = f"codex://threads/{turn['thread_id']}"
    assert len(turn["diff"]) < 21_000 and turn["diff"].endswith(f"read {uri}]")
    resource = await client.read_resource(uri)
    whole = json.loads(resource.contents[0].text)  # type: ignore[union-attr]
    assert "+line 2999 of a long file" in whole["turns"][0]["diff"]


async def test_the_agents_text_streams_as_a_few_progress_lines(
    client: Client, model: ScriptedModel
) -> None:
    parts = [f"word{i} " for i in range(300)]
    model.add(replies.streamed_message(parts))
    progress = ProgressLog()
    result = await client.call_tool("start_thread", {"prompt": "talk"}, progress_callback=progress)
    assert structured(result)["final_response"] == "".join(parts)
    writing = [line for line in progress.messages if line.startswith("writing: ")]
    assert writing and writing[0] == "writing: word0"
    # Coalesced: far fewer lines than deltas, each short enough for a status row.
    assert len(writing) < len(parts) / 10
    assert all(len(line) <= 120 for line in writing)
    assert progress.messages[-1].startswith("message: word0")


async def test_the_codex_tool_without_elicitation_waits_out_the_timeout(
    server_env: Path,  # noqa: F811
    model: ScriptedModel,
    workdir: Path,
) -> None:
    """The drop-in tool set has no answer_approval: its call blocks, and the request is
    declined after the timeout, as the removed server's hung forever instead."""
    settings = Settings(cwd=workdir, backend="app-server", tool_set="codex", approval_timeout=1.0)
    _escalation(model)
    async with Client(serve(settings)) as client:
        result = await client.call_tool(
            "codex",
            {"prompt": "make it", "approval-policy": "on-request", "sandbox": "read-only"},
        )
    assert not result.is_error, text(result)
    assert structured(result)["content"] == "done"
    assert not (workdir / "made.txt").exists()


# ------------------------------------------------------------------ review


def _git(workdir: Path, *args: str) -> str:
    identity = ("-c", "user.email=test@example.com", "-c", "user.name=Test")
    done = subprocess.run(
        ["git", "-C", str(workdir), *identity, *args], check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def _broken_change(workdir: Path) -> Path:
    """A committed file, then an uncommitted change to it that a review should flag."""
    source = workdir / "calc.py"
    source.write_text("def half(x):\n    return x / 2\n")
    _git(workdir, "add", ".")
    _git(workdir, "commit", "-qm", "calc")
    source.write_text("def half(x):\n    return x / 0\n")
    return source


async def test_a_review_of_uncommitted_changes_returns_codex_findings(
    client: Client, model: ScriptedModel, workdir: Path
) -> None:
    source = _broken_change(workdir)
    found = replies.finding("Division by zero", "half() now divides by 0.", str(source), (2, 2))
    model.add(replies.review("The change breaks half().", (found,), correctness="incorrect"))
    progress = ProgressLog()
    result = await client.call_tool(
        "review", {"working_directory": str(workdir)}, progress_callback=progress
    )
    assert not result.is_error, text(result)
    review = structured(result)
    assert review["status"] == "completed", review
    # Codex's rendering of the model's findings: verdict, then each finding with its place.
    assert review["final_response"].startswith("The change breaks half().")
    assert f"Division by zero — {source}:2-2" in review["final_response"]
    assert "half() now divides by 0." in review["final_response"]
    # Progress as for any turn: the review's text, not the model's JSON behind it.
    assert "message: The change breaks half()." in progress.messages
    assert not any('"findings"' in line for line in progress.messages), progress.messages
    # codex asked the model for a review of the working tree (its review prompt).
    assert "uncommitted" in json.dumps(model.requests[0].input).lower()
    info = await _call(client, "get_thread", thread_id=review["thread_id"])
    assert info["turns"][0]["prompt"] == "[review] uncommitted changes"


async def test_a_review_on_a_thread_reviews_a_commit_there(
    client: Client, model: ScriptedModel, workdir: Path
) -> None:
    _broken_change(workdir)
    _git(workdir, "commit", "-qam", "divide by zero")
    sha = _git(workdir, "rev-parse", "HEAD")
    model.add(replies.message("looked"), replies.review("Nothing wrong found."))
    started = await _call(client, "start_thread", prompt="look around")
    review = await _call(
        client, "review", thread_id=started["thread_id"], target="commit", commit_sha=sha
    )
    assert (review["thread_id"], review["turn_id"]) == (started["thread_id"], "turn-2")
    assert (review["status"], review["final_response"]) == ("completed", "Nothing wrong found.")
    assert sha in model.requests[1].last_user_text
    # The thread goes on after its review.
    model.add(replies.message("after the review"))
    after = await _call(client, "run_turn", thread_id=started["thread_id"], prompt="and now?")
    assert after["final_response"] == "after the review"


async def test_a_background_review_of_a_branch_against_its_base(
    client: Client, model: ScriptedModel, workdir: Path
) -> None:
    _git(workdir, "commit", "-q", "--allow-empty", "-m", "base")
    base = _git(workdir, "rev-parse", "--abbrev-ref", "HEAD")
    _git(workdir, "checkout", "-qb", "feature")
    _broken_change(workdir)
    _git(workdir, "commit", "-qam", "divide by zero")
    model.add(replies.review("The feature divides by zero.", correctness="incorrect"))
    started = await _call(client, "review", target="base_branch", base_branch=base, background=True)
    assert started["status"] == "running"
    review = await _call(client, "wait_turn", thread_id=started["thread_id"])
    assert (review["status"], review["final_response"]) == (
        "completed",
        "The feature divides by zero.",
    )
    assert f"against the base branch '{base}'" in model.requests[0].last_user_text
    info = await _call(client, "get_thread", thread_id=started["thread_id"])
    assert info["turns"][0]["prompt"] == f"[review] changes against {base}"


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ({"target": "base_branch"}, "needs base_branch"),
        ({"target": "base_branch", "base_branch": "--output=/tmp/x"}, "no leading '-'"),
        ({"target": "commit"}, "needs commit_sha"),
        ({"target": "commit", "commit_sha": "HEAD; rm -rf /"}, "commit_sha"),
        ({"thread_id": "t", "model": "gpt-5"}, "thread options apply to a new thread only"),
    ],
)
async def test_a_review_with_a_bad_target_is_a_clear_error(
    client: Client, model: ScriptedModel, arguments: dict[str, Any], words: str
) -> None:
    result = await client.call_tool("review", arguments)
    assert result.is_error
    assert words in text(result), text(result)
    assert not model.requests
