"""The SDK against the real codex binary and the scripted model."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import stat
import struct
import tempfile
import zlib
from pathlib import Path

import anyio
import pytest
from pydantic import BaseModel

from codex_mcp_server.sdk import (
    Codex,
    CodexExecError,
    CodexIdleTimeoutError,
    CodexNotFoundError,
    CodexParseError,
    InvalidOptionsError,
    ThreadEvent,
    TurnCancelledError,
    TurnFailedError,
)
from codex_mcp_server.testing import ScriptedModel, codex_env, replies

from .procs import codex_processes, wait_until_gone


def png(width: int = 2, height: int = 2) -> bytes:
    """A valid RGB PNG image, made here so the tests ship no binary files."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


async def test_run_returns_items_final_response_and_usage(
    codex: Codex, model: ScriptedModel, workdir: Path
) -> None:
    model.add(replies.message("Hi!", reasoning="**Thinking** about it"))
    thread = codex.start_thread({"working_directory": str(workdir)})
    assert thread.id is None
    turn = await thread.run("Diagnose the test failure")
    assert turn.final_response == "Hi!"
    assert [item["type"] for item in turn.items] == ["reasoning", "agent_message"]
    assert turn.usage == {
        "input_tokens": 42,
        "cached_input_tokens": 12,
        "cache_write_input_tokens": 0,
        "output_tokens": 5,
        "reasoning_output_tokens": 3,
    }
    assert thread.id is not None
    request = model.requests[0]
    assert request.last_user_text == "Diagnose the test failure"
    assert request.headers["originator"] == "codex_sdk_py"


async def test_second_run_resumes_with_history(
    codex: Codex, model: ScriptedModel, workdir: Path
) -> None:
    model.add(replies.message("first answer"), replies.message("second answer"))
    thread = codex.start_thread({"working_directory": str(workdir)})
    await thread.run("first question")
    first_id = thread.id
    turn = await thread.run("second question")
    assert turn.final_response == "second answer"
    assert thread.id == first_id
    history = json.dumps(model.requests[1].input)
    assert "first question" in history
    assert "first answer" in history
    assert model.requests[1].last_user_text == "second question"


async def test_resume_thread_in_a_new_codex(
    codex: Codex, codex_home: Path, model: ScriptedModel, workdir: Path
) -> None:
    model.add(replies.message("remember 42"), replies.message("it was 42"))
    thread = codex.start_thread({"working_directory": str(workdir)})
    await thread.run("remember a number")
    assert thread.id is not None

    again = Codex({"env": codex_env(codex_home)}).resume_thread(
        thread.id, {"working_directory": str(workdir)}
    )
    assert again.id == thread.id
    turn = await again.run("what was it?")
    assert turn.final_response == "it was 42"
    assert "remember 42" in json.dumps(model.requests[1].input)


async def test_streamed_command_items(codex: Codex, model: ScriptedModel, workdir: Path) -> None:
    model.add(replies.command("echo hi"), replies.message("done"))
    thread = codex.start_thread({"working_directory": str(workdir)})
    streamed = await thread.run_streamed("run echo hi")
    events: list[ThreadEvent] = [event async for event in streamed.events]
    kinds = [event["type"] for event in events]
    assert kinds == [
        "thread.started",
        "turn.started",
        "item.started",
        "item.completed",
        "item.completed",
        "turn.completed",
    ]
    started, completed = events[2], events[3]
    assert started["type"] == "item.started" and completed["type"] == "item.completed"
    assert started["item"]["type"] == "command_execution"
    assert started["item"]["status"] == "in_progress"
    assert completed["item"] == {
        **completed["item"],
        "type": "command_execution",
        "exit_code": 0,
        "status": "completed",
    }
    assert completed["item"]["aggregated_output"].endswith("hi\n")
    assert "echo hi" in completed["item"]["command"]
    assert "hi" in model.requests[1].function_call_outputs[0]


def _schema_dirs() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("codex-output-schema-*"))


class StatusResponse(BaseModel):
    summary: str
    status: str


@pytest.mark.parametrize(
    "schema",
    [
        {
            "type": "object",
            "properties": {"summary": {"type": "string"}, "status": {"type": "string"}},
            "required": ["summary", "status"],
            "additionalProperties": False,
        },
        StatusResponse.model_json_schema(),
    ],
)
async def test_output_schema_reaches_the_request_and_its_file_is_removed(
    codex: Codex, model: ScriptedModel, workdir: Path, schema: dict[str, object]
) -> None:
    model.add(replies.structured({"summary": "fine", "status": "ok"}))
    before = _schema_dirs()
    thread = codex.start_thread({"working_directory": str(workdir)})
    turn = await thread.run("Summarize repository status", {"output_schema": schema})
    assert json.loads(turn.final_response) == {"summary": "fine", "status": "ok"}
    text_format = model.requests[0].body["text"]["format"]
    assert text_format["type"] == "json_schema"
    assert text_format["schema"]["properties"] == schema["properties"]
    assert _schema_dirs() == before


async def test_output_schema_file_is_removed_when_codex_fails(
    codex: Codex, model: ScriptedModel, workdir: Path
) -> None:
    model.add(replies.failure("boom"))
    before = _schema_dirs()
    thread = codex.start_thread({"working_directory": str(workdir)})
    with pytest.raises(TurnFailedError):
        await thread.run("x", {"output_schema": {"type": "object"}})
    assert _schema_dirs() == before


async def test_output_schema_goes_to_the_scratch_directory_given(
    codex_home: Path, model: ScriptedModel, workdir: Path, tmp_path: Path
) -> None:
    """A directory of the caller's choosing: one the sandboxed commands cannot write."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    codex = Codex({"env": codex_env(codex_home), "scratch_directory": str(scratch)})
    model.add(replies.structured({"answer": "42"}))
    before = _schema_dirs()
    thread = codex.start_thread({"working_directory": str(workdir)})
    during: list[list[str]] = []
    streamed = await thread.run_streamed("x", {"output_schema": {"type": "object"}})
    async with streamed:
        async for _ in streamed.events:
            during.append(sorted(p.name for p in scratch.glob("codex-output-schema-*/*")))
    assert during and all(names == ["schema.json"] for names in during)
    assert model.requests[0].body["text"]["format"]["type"] == "json_schema"
    assert list(scratch.iterdir()) == []
    assert _schema_dirs() == before


@pytest.mark.parametrize("schema", [["not", "an", "object"], "string", 3])
async def test_output_schema_must_be_an_object(codex: Codex, schema: object) -> None:
    thread = codex.start_thread()
    with pytest.raises(InvalidOptionsError, match="plain JSON object"):
        await thread.run("x", {"output_schema": schema})  # type: ignore[typeddict-item]


async def test_images_reach_the_request(codex: Codex, model: ScriptedModel, workdir: Path) -> None:
    (workdir / "ui.png").write_bytes(png())
    (workdir / "diagram.png").write_bytes(png())
    model.add(replies.message("two images"))
    thread = codex.start_thread({"working_directory": str(workdir)})
    turn = await thread.run(
        [
            {"type": "text", "text": "Describe these screenshots"},
            {"type": "local_image", "path": str(workdir / "ui.png")},
            {"type": "local_image", "path": str(workdir / "diagram.png")},
        ]
    )
    assert turn.final_response == "two images"
    content = model.requests[0].input[-1]["content"]
    images = [part for part in content if part["type"] == "input_image"]
    assert len(images) == 2
    assert all(part["image_url"].startswith("data:image/png;base64,") for part in images)


async def test_turn_failed_raises_its_message(
    codex: Codex, model: ScriptedModel, workdir: Path
) -> None:
    model.add(replies.failure("rate limited, try later"))
    thread = codex.start_thread({"working_directory": str(workdir)})
    with pytest.raises(TurnFailedError, match="rate limited, try later"):
        await thread.run("x")


async def test_streamed_failure_gives_turn_failed_then_exec_error(
    codex: Codex, model: ScriptedModel, workdir: Path
) -> None:
    model.add(replies.failure("boom"))
    thread = codex.start_thread({"working_directory": str(workdir)})
    streamed = await thread.run_streamed("x")
    kinds = []
    with pytest.raises(CodexExecError) as info:
        async for event in streamed.events:
            kinds.append(event["type"])
    assert "turn.failed" in kinds
    assert info.value.exit_code == 1


async def test_non_zero_exit_names_code_and_stderr(codex: Codex, workdir: Path) -> None:
    thread = codex.start_thread({"working_directory": str(workdir), "approval_policy": "untrusted"})
    with pytest.raises(CodexExecError, match=r"(?s)exited with code 1: .*no longer") as info:
        await thread.run("x")
    assert info.value.exit_code == 1
    assert info.value.stderr_tail.startswith(  # The cause, before codex's warnings.
        'Error: approval_policy = "untrusted" is no longer supported; remove this setting'
    )


async def test_outside_a_git_repository_needs_the_skip_flag(
    codex: Codex, model: ScriptedModel, tmp_path: Path
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(CodexExecError) as info:
        await codex.start_thread({"working_directory": str(plain)}).run("x")
    # The cause first: codex warns before it (it cannot create PATH aliases under /tmp).
    assert str(info.value).startswith(
        "Codex Exec exited with code 1: Not inside a trusted directory and "
        "--skip-git-repo-check was not specified."
    ), str(info.value)
    model.add(replies.message("ok"))
    thread = codex.start_thread({"working_directory": str(plain), "skip_git_repo_check": True})
    assert (await thread.run("x")).final_response == "ok"


async def test_cancel_event_stops_codex_and_raises_cancelled(
    codex: Codex, codex_home: Path, model: ScriptedModel, workdir: Path
) -> None:
    model.add(replies.hang())
    cancel_event = asyncio.Event()
    thread = codex.start_thread({"working_directory": str(workdir)})

    async def cancel_when_model_is_asked() -> None:
        await anyio.to_thread.run_sync(model.wait_for_requests, 1, 20.0)
        cancel_event.set()

    async with anyio.create_task_group() as group:
        group.start_soon(cancel_when_model_is_asked)
        with pytest.raises(asyncio.CancelledError) as info:
            await thread.run("Long running task", {"cancel_event": cancel_event})
    assert isinstance(info.value, TurnCancelledError)
    assert wait_until_gone(codex_home) == []


async def test_cancel_event_set_before_the_turn(codex: Codex, codex_home: Path) -> None:
    cancel_event = asyncio.Event()
    cancel_event.set()
    with pytest.raises(TurnCancelledError):
        await codex.start_thread().run("x", {"cancel_event": cancel_event})
    assert codex_processes(codex_home) == []


async def test_cancelling_the_task_stops_codex_within_a_second(
    codex: Codex, codex_home: Path, model: ScriptedModel, workdir: Path
) -> None:
    model.add(replies.hang())
    thread = codex.start_thread({"working_directory": str(workdir)})
    async with anyio.create_task_group() as group:
        group.start_soon(thread.run, "Long running task")
        await anyio.to_thread.run_sync(model.wait_for_requests, 1, 20.0)
        assert codex_processes(codex_home) != []
        group.cancel_scope.cancel()
    assert wait_until_gone(codex_home) == []


async def test_leaving_run_streamed_early_stops_codex(
    codex: Codex, codex_home: Path, model: ScriptedModel, workdir: Path
) -> None:
    model.add(replies.hang())
    thread = codex.start_thread({"working_directory": str(workdir)})
    async with await thread.run_streamed("x") as streamed:
        async for event in streamed.events:
            if event["type"] == "turn.started":
                break
    assert wait_until_gone(codex_home) == []


async def test_abandoned_stream_is_stopped_when_collected(
    codex: Codex, codex_home: Path, model: ScriptedModel, workdir: Path
) -> None:
    model.add(replies.hang())
    thread = codex.start_thread({"working_directory": str(workdir)})
    streamed = await thread.run_streamed("x")
    async for event in streamed.events:
        if event["type"] == "turn.started":
            break
    before = asyncio.all_tasks()
    del streamed, event
    gc.collect()
    # The loop finalizes the generator in a task of its own, which stops codex and closes
    # its pipes; the test must not end (closing the loop) before that task has. The task can
    # also run to its end between two looks, and then codex is gone already.
    finalizers: set[asyncio.Task[object]] = set()
    for _ in range(500):
        if (finalizers := asyncio.all_tasks() - before) or not codex_processes(codex_home):
            break
        await anyio.sleep(0.01)
    if finalizers:
        _, pending = await asyncio.wait(finalizers, timeout=10)
        assert not pending
    assert codex_processes(codex_home) == [], "the abandoned generator was not finalized"


async def test_idle_timeout_kills_a_silent_codex(
    codex_home: Path, model: ScriptedModel, workdir: Path
) -> None:
    model.add(replies.hang())
    codex = Codex({"env": codex_env(codex_home), "idle_timeout": 1.0})
    thread = codex.start_thread({"working_directory": str(workdir)})
    with pytest.raises(CodexIdleTimeoutError, match="made no progress for 1 s"):
        await thread.run("x")
    assert wait_until_gone(codex_home) == []


async def test_missing_binary_says_how_to_install(tmp_path: Path) -> None:
    codex = Codex({"codex_path_override": str(tmp_path / "no-codex")})
    with pytest.raises(CodexNotFoundError, match="openai-codex-cli-bin"):
        await codex.start_thread().run("x")


def _fake_codex(tmp_path: Path, body: str) -> str:
    """A stand-in codex that ignores its arguments and runs ``body`` (Python)."""
    script = tmp_path / "fake-codex"
    script.write_text(f"#!{os.environ.get('PYTHON', '/usr/bin/env python3')}\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


async def test_the_stderr_tail_puts_the_cause_before_warnings(tmp_path: Path) -> None:
    body = (
        "import sys\n"
        "print('WARNING: proceeding, even though we could not create PATH aliases', "
        "file=sys.stderr)\n"
        "print('Reading prompt from stdin...', file=sys.stderr)\n"
        "print('Error: the actual cause', file=sys.stderr)\n"
        "print('  and its second line', file=sys.stderr)\n"
        "sys.exit(1)"
    )
    codex = Codex({"codex_path_override": _fake_codex(tmp_path, body)})
    with pytest.raises(CodexExecError) as info:
        await codex.start_thread().run("x")
    assert info.value.stderr_tail == (
        "Error: the actual cause\n  and its second line\n"
        "WARNING: proceeding, even though we could not create PATH aliases"
    )


@pytest.mark.parametrize(
    "output",
    [
        'print(\'{"type":"thread.started","thread_id":"t"}\'); print("garbage")',
        'print(\'{"type":"thread.started","thread_id":"t"}\'); print(\'{"type":"turn.st\', end="")',
    ],
)
async def test_malformed_and_truncated_lines_raise_with_the_line(
    tmp_path: Path, output: str
) -> None:
    codex = Codex({"codex_path_override": _fake_codex(tmp_path, f"import sys\n{output}")})
    thread = codex.start_thread()
    with pytest.raises(CodexParseError, match="Failed to parse item: "):
        await thread.run("x")
    assert thread.id == "t"


async def test_a_line_of_tens_of_megabytes_is_read_whole(tmp_path: Path) -> None:
    body = """
import json, sys
sys.stdin.read()
out = "x" * 30_000_000
for event in (
    {"type": "thread.started", "thread_id": "t"},
    {"type": "item.completed", "item": {"id": "i", "type": "command_execution",
      "command": "cat big", "aggregated_output": out, "exit_code": 0, "status": "completed"}},
    {"type": "item.completed", "item": {"id": "j", "type": "agent_message", "text": "done"}},
    {"type": "turn.completed", "usage": {"input_tokens": 1, "cached_input_tokens": 0,
      "output_tokens": 1, "reasoning_output_tokens": 0}},
):
    sys.stdout.write(json.dumps(event) + "\\n")
"""
    codex = Codex({"codex_path_override": _fake_codex(tmp_path, body)})
    turn = await codex.start_thread().run("x")
    assert turn.final_response == "done"
    assert len(turn.items[0]["aggregated_output"]) == 30_000_000  # type: ignore[typeddict-item]


async def test_prompt_goes_to_stdin_and_env_is_passed(tmp_path: Path) -> None:
    body = """
import json, os, sys
prompt = sys.stdin.read()
seen = {"prompt": prompt, "argv": sys.argv[1:], "key": os.environ.get("CODEX_API_KEY"),
        "leak": os.environ.get("CODEX_ENV_SHOULD_NOT_LEAK")}
print(json.dumps({"type": "item.completed", "item": {"id": "i", "type": "agent_message",
                  "text": json.dumps(seen)}}))
"""
    os.environ["CODEX_ENV_SHOULD_NOT_LEAK"] = "1"
    try:
        codex = Codex(
            {
                "codex_path_override": _fake_codex(tmp_path, body),
                "env": {"PATH": os.environ["PATH"]},
                "api_key": "sk-test",
                "base_url": "http://127.0.0.1:9/v1",
            }
        )
        turn = await codex.start_thread({"model": "gpt-5.5"}).run("hello\nworld")
    finally:
        del os.environ["CODEX_ENV_SHOULD_NOT_LEAK"]
    seen = json.loads(turn.final_response)
    assert seen == {
        "prompt": "hello\nworld",
        "argv": [
            "exec",
            "--experimental-json",
            "--config",
            'openai_base_url="http://127.0.0.1:9/v1"',
            "--model",
            "gpt-5.5",
        ],
        "key": "sk-test",
        "leak": None,
    }


RECONNECTING_FOREVER = """
import json, sys, time
sys.stdin.read()
print(json.dumps({"type": "thread.started", "thread_id": "t"}), flush=True)
print(json.dumps({"type": "turn.started"}), flush=True)
for attempt in range(1, 1000):
    message = f"Reconnecting... {attempt}/5 (stream disconnected before completion)"
    print(json.dumps({"type": "error", "message": message}), flush=True)
    time.sleep(0.1)
"""


async def test_a_turn_that_only_reconnects_times_out_naming_the_warning(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    codex = Codex(
        {
            "codex_path_override": _fake_codex(tmp_path, RECONNECTING_FOREVER),
            "env": {"PATH": os.environ["PATH"], "CODEX_HOME": str(home)},
            "idle_timeout": 1.0,
        }
    )
    streamed = await codex.start_thread().run_streamed("x")
    warnings = []
    with pytest.raises(CodexIdleTimeoutError, match=r"last warning: Reconnecting\.\.\. \d+/5"):
        async for event in streamed.events:
            if event["type"] == "error":
                warnings.append(event["message"])
    assert len(warnings) >= 5  # Warnings kept coming; they are not progress.
    assert wait_until_gone(home) == []
