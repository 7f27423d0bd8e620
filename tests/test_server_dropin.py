"""The `codex`/`codex-reply` drop-in tool set and the thread resources, on the real binary."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from codex_mcp_server.server import Settings
from codex_mcp_server.testing import ScriptedModel, replies

from .server_support import ProgressLog, serve, structured, text
from .test_server_tools import server_env  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("backend")

SNAPSHOT = Path(__file__).parent / "snapshots" / "tools_list_codex.json"


def _settings(workdir: Path, tool_set: str) -> Settings:
    return Settings(cwd=workdir, tool_set=tool_set)  # type: ignore[arg-type]


async def test_codex_tool_set_lists_the_removed_servers_tools(
    server_env: Path,  # noqa: F811
    workdir: Path,
) -> None:
    async with Client(serve(_settings(workdir, "codex"))) as client:
        listed = (await client.list_tools()).tools
    tools = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in listed]
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(json.dumps(tools, indent=2) + "\n", encoding="utf-8")
    assert tools == json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    by_name = {tool["name"]: tool for tool in tools}
    assert list(by_name) == ["codex", "codex-reply"]
    codex_fields = set(by_name["codex"]["inputSchema"]["properties"])
    assert codex_fields == {
        "prompt",
        "model",
        "profile",
        "cwd",
        "approval-policy",
        "sandbox",
        "config",
        "base-instructions",
        "developer-instructions",
        "compact-prompt",
    }
    assert by_name["codex"]["inputSchema"]["required"] == ["prompt"]
    reply_fields = set(by_name["codex-reply"]["inputSchema"]["properties"])
    assert reply_fields == {"prompt", "threadId", "conversationId"}
    for tool in tools:
        assert tool["outputSchema"]["required"] == ["threadId", "content"]


async def test_all_tool_set_offers_both(server_env: Path, workdir: Path) -> None:  # noqa: F811
    async with Client(serve(_settings(workdir, "all"))) as client:
        names = [t.name for t in (await client.list_tools()).tools]
    assert {"start_thread", "wait_turn", "codex", "codex-reply"} <= set(names)


async def test_codex_then_codex_reply_after_a_restart(
    server_env: Path,  # noqa: F811
    workdir: Path,
    model: ScriptedModel,
    tmp_path: Path,
) -> None:
    plain = tmp_path / "not-a-repo"
    plain.mkdir()
    model.add(replies.command("echo hi"), replies.message("first answer"))
    progress = ProgressLog()
    async with Client(serve(_settings(workdir, "codex"))) as client:
        result = await client.call_tool(
            "codex",
            {
                "prompt": "run echo hi",
                "cwd": str(plain),
                "sandbox": "read-only",
                "approval-policy": "never",
                "developer-instructions": "Always answer in French.",
                "base-instructions": "You are a scripted test agent.",
                "config": {"model_verbosity": "low"},
            },
            progress_callback=progress,
        )
        assert not result.is_error, text(result)
        first = structured(result)
        assert first["content"] == "first answer"
        assert text(result) == "first answer"
        assert progress.messages == ["$ echo hi", "✓ $ echo hi (exit 0)", "message: first answer"]
        request = model.requests[0]
        assert "Always answer in French." in json.dumps(request.input)
        assert "You are a scripted test agent." in json.dumps(request.body)
        assert f"<cwd>{plain}</cwd>" in json.dumps(request.input)

        model.add(replies.message("second answer"))
        again = await client.call_tool(
            "codex-reply", {"threadId": first["threadId"], "prompt": "again"}
        )
        assert structured(again) == {"threadId": first["threadId"], "content": "second answer"}

    async with Client(serve(_settings(workdir, "codex"))) as restarted:
        model.add(replies.message("after restart"))
        late = await restarted.call_tool(
            "codex-reply", {"conversationId": first["threadId"], "prompt": "still there?"}
        )
        assert not late.is_error, text(late)
        assert structured(late)["content"] == "after restart"
        assert "first answer" in json.dumps(model.requests[-1].input)


@pytest.mark.parametrize(
    ("tool", "arguments", "message"),
    [
        ("codex-reply", {"prompt": "x"}, "needs threadId"),
        ("codex-reply", {"prompt": "x", "threadId": "0199-gone"}, "No Codex session"),
        ("codex", {"prompt": "x", "approval-mode": "never"}, "approval-mode"),
        ("codex", {"prompt": "x", "sandbox": "danger-full-access"}, "ceiling"),
    ],
)
async def test_codex_tool_set_errors(
    server_env: Path,  # noqa: F811
    workdir: Path,
    tool: str,
    arguments: dict[str, Any],
    message: str,
) -> None:
    async with Client(serve(_settings(workdir, "codex"))) as client:
        result = await client.call_tool(tool, arguments)
    assert result.is_error
    assert message in text(result)


async def test_codex_failure_is_an_error_with_the_thread(
    server_env: Path,  # noqa: F811
    workdir: Path,
    model: ScriptedModel,
) -> None:
    model.add(replies.failure("quota exceeded"))
    async with Client(serve(_settings(workdir, "codex"))) as client:
        result = await client.call_tool("codex", {"prompt": "x"})
    assert result.is_error
    assert "quota exceeded" in structured(result)["content"]
    assert structured(result)["threadId"]


async def test_thread_resources(
    server_env: Path,  # noqa: F811
    workdir: Path,
    model: ScriptedModel,
) -> None:
    big = "head -c 100000 /dev/zero | tr '\\0' x"
    model.add(replies.command(big, login=False), replies.message("made output"))
    async with Client(serve(Settings(cwd=workdir))) as client:
        result = await client.call_tool("start_thread", {"prompt": "make output"})
        thread_id = structured(result)["thread_id"]

        listed = await client.list_resources()
        assert [str(r.uri) for r in listed.resources] == ["codex://threads"]
        templates = await client.list_resource_templates()
        assert [t.uri_template for t in templates.resource_templates] == [
            "codex://threads/{thread_id}"
        ]

        registry = await client.read_resource("codex://threads")
        threads = json.loads(registry.contents[0].text)  # type: ignore[union-attr]
        assert [t["thread_id"] for t in threads] == [thread_id]
        assert threads[0]["uri"] == f"codex://threads/{thread_id}"

        transcript = await client.read_resource(f"codex://threads/{thread_id}")
        thread = json.loads(transcript.contents[0].text)  # type: ignore[union-attr]
        output = thread["turns"][0]["items"][0]["aggregated_output"]
        assert output == "x" * 100_000

        shortened = structured(await client.call_tool("get_thread", {"thread_id": thread_id}))
        assert len(shortened["turns"][0]["items"][0]["aggregated_output"]) < 70_000

        with pytest.raises(Exception, match="Unknown thread_id"):
            await client.read_resource("codex://threads/nope")


async def test_a_long_answer_of_the_codex_tool_is_cut_with_a_pointer(
    server_env: Path,  # noqa: F811
    workdir: Path,
    model: ScriptedModel,
) -> None:
    answer = "word " * 250_000  # 1.25 MB: hosts show their model this JSON, whole.
    model.add(replies.message(answer))
    async with Client(serve(_settings(workdir, "codex"))) as client:
        result = await client.call_tool("codex", {"prompt": "write a lot"})
        content = structured(result)
        uri = f"codex://threads/{content['threadId']}"
        assert len(content["content"]) < 25_000
        assert content["content"].endswith(f"more characters: read {uri}]")
        whole = await client.read_resource(uri)
        turn = json.loads(whole.contents[0].text)["turns"][0]  # type: ignore[union-attr]
        assert turn["final_response"] == answer
