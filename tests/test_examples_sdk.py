"""Every ``examples/sdk_*.py``, run as a script against the real codex and the scripted model.

Each test starts the example with this interpreter in a fresh Git repository (the
``workdir`` fixture) and an environment whose ``CODEX_HOME`` points codex at the
``model`` fixture, then checks what the script printed and what codex asked the model.
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from codex_mcp_server.sdk import Codex
from codex_mcp_server.testing import Reply, ScriptedModel, codex_env, replies

from .procs import wait_until_gone

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TIMEOUT = 60


def run_example(name: str, cwd: Path, env: dict[str, str], *args: str) -> list[str]:
    """Run ``examples/<name>``; it must succeed. Returns the lines it printed."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def png() -> bytes:
    """A valid 1x1 RGB PNG image, made here so the tests ship no binary files."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


def input_text(model: ScriptedModel, index: int = 0) -> str:
    """Everything codex sent the model in request ``index`` (instructions, history, ...)."""
    return json.dumps(model.requests[index].input)


# --------------------------------------------------------------------------- one turn each

STATUS = {"summary": "Clean working tree", "status": "ok"}


def schema_from_the_dict(model: ScriptedModel, workdir: Path) -> None:
    schema = model.requests[0].body["text"]["format"]["schema"]
    assert schema["properties"]["status"]["enum"] == ["ok", "action_required"]
    assert schema["additionalProperties"] is False


def schema_from_pydantic(model: ScriptedModel, workdir: Path) -> None:
    schema = model.requests[0].body["text"]["format"]["schema"]
    assert schema["title"] == "StatusResponse"
    assert schema["properties"]["status"]["enum"] == ["ok", "action_required"]


def wrote_in_the_workspace(model: ScriptedModel, workdir: Path) -> None:
    assert "`sandbox_mode` is `workspace-write`" in input_text(model)
    assert (workdir / "hello.txt").read_text() == "hello\n"


def approval_policy_accepted(model: ScriptedModel, workdir: Path) -> None:
    # `codex exec` cannot ask anyone; what matters is that codex accepted on-failure.
    assert len(model.requests) == 1


def network_enabled_by_config(model: ScriptedModel, workdir: Path) -> None:
    assert "Network access is enabled." in input_text(model)


@pytest.mark.parametrize(
    ("script", "script_replies", "prompt", "answer", "check"),
    [
        pytest.param(
            "sdk_structured_output.py",
            [replies.structured(STATUS)],
            "Summarize repository status",
            json.dumps(STATUS),
            schema_from_the_dict,
            id="structured_output",
        ),
        pytest.param(
            "sdk_structured_output_pydantic.py",
            [replies.structured(STATUS)],
            "Summarize repository status",
            json.dumps(STATUS),
            schema_from_pydantic,
            id="structured_output_pydantic",
        ),
        pytest.param(
            "sdk_sandbox_modes.py",
            [replies.command("echo hello > hello.txt", login=False), replies.message("Done.")],
            "Create a file hello.txt that contains the word hello",
            "Done.",
            wrote_in_the_workspace,
            id="sandbox_modes",
        ),
        pytest.param(
            "sdk_approval_policies.py",
            [replies.message("None yet.")],
            "Which files are in this directory?",
            "None yet.",
            approval_policy_accepted,
            id="approval_policies",
        ),
        pytest.param(
            "sdk_config_overrides.py",
            [replies.message("Yes, it can.")],
            "Can your shell commands reach the network?",
            "Yes, it can.",
            network_enabled_by_config,
            id="config_overrides",
        ),
    ],
)
def test_example_prints_the_final_response(
    model: ScriptedModel,
    codex_home: Path,
    workdir: Path,
    script: str,
    script_replies: list[Reply],
    prompt: str,
    answer: str,
    check: Callable[[ScriptedModel, Path], None],
) -> None:
    model.add(*script_replies)
    assert run_example(script, workdir, codex_env(codex_home)) == [answer]
    assert model.requests[0].last_user_text == prompt
    assert model.pending == 0
    check(model, workdir)


# --------------------------------------------------------------------------- the others


def test_quickstart_continues_the_thread(
    model: ScriptedModel, codex_home: Path, workdir: Path
) -> None:
    model.add(replies.message("The import is wrong."), replies.message("Fixed the import."))
    lines = run_example("sdk_quickstart.py", workdir, codex_env(codex_home))
    assert len(lines) == 3
    assert lines[0] == "The import is wrong."
    assert lines[1].startswith("[{") and "'type': 'agent_message'" in lines[1]
    assert lines[2] == "Fixed the import."
    prompts = [request.last_user_text for request in model.requests]
    assert prompts == ["Diagnose the test failure and propose a fix", "Implement the fix"]
    assert "The import is wrong." in input_text(model, 1)  # the second turn has the history


def test_streaming_prints_items_and_usage(
    model: ScriptedModel, codex_home: Path, workdir: Path
) -> None:
    model.add(replies.command("echo hi", login=False), replies.message("Nothing fails."))
    lines = run_example("sdk_streaming.py", workdir, codex_env(codex_home))
    items = [line for line in lines if line.startswith("item ")]
    assert len(items) == 2
    assert "'type': 'command_execution'" in items[0]
    assert "'aggregated_output': 'hi\\n'" in items[0]
    assert "'type': 'agent_message'" in items[1] and "'text': 'Nothing fails.'" in items[1]
    assert lines[-1].startswith("usage {") and "'input_tokens': 84" in lines[-1]
    assert len(lines) == 3


def test_images_are_attached(model: ScriptedModel, codex_home: Path, workdir: Path) -> None:
    (workdir / "ui.png").write_bytes(png())
    (workdir / "diagram.jpg").write_bytes(png())  # codex sniffs the content, not the name
    model.add(replies.message("A red pixel, twice."))
    lines = run_example("sdk_images.py", workdir, codex_env(codex_home))
    assert lines == ["A red pixel, twice."]
    content = model.requests[0].input[-1]["content"]
    images = [part for part in content if part["type"] == "input_image"]
    assert len(images) == 2
    assert all(part["image_url"].startswith("data:image/png;base64,") for part in images)
    assert model.requests[0].last_user_text == "Describe these screenshots"


def test_resume_thread_continues_a_saved_thread(
    model: ScriptedModel, codex_home: Path, workdir: Path
) -> None:
    model.add(replies.message("Pin the dependency."), replies.message("Pinned it."))
    env = codex_env(codex_home)
    thread = Codex({"env": env}).start_thread({"working_directory": str(workdir)})
    asyncio.run(thread.run("Diagnose the test failure and propose a fix"))
    assert thread.id is not None

    lines = run_example("sdk_resume_thread.py", workdir, {**env, "CODEX_THREAD_ID": thread.id})
    assert lines == ["Pinned it."]
    assert model.requests[1].last_user_text == "Implement the fix"
    assert "Pin the dependency." in input_text(model, 1)


def test_working_directory_outside_a_git_repository(
    model: ScriptedModel, codex_home: Path, workdir: Path, tmp_path: Path
) -> None:
    project = (tmp_path / "project").resolve()
    project.mkdir()  # not a Git repository: only skip_git_repo_check lets codex work there
    model.add(replies.message("It is empty."))
    lines = run_example("sdk_working_directory.py", workdir, codex_env(codex_home), str(project))
    assert lines == ["It is empty."]
    assert f"<cwd>{project}</cwd>" in input_text(model)


def test_cli_environment_is_only_what_env_gives(
    model: ScriptedModel, codex_home: Path, workdir: Path
) -> None:
    env = {**codex_env(codex_home), "SDK_EXAMPLE_MARKER": "inherited"}
    probe = 'echo "marker=${SDK_EXAMPLE_MARKER:-unset} path=$PATH"'
    model.add(replies.command(probe, login=False), replies.message("Just /usr/local/bin."))
    lines = run_example("sdk_cli_environment.py", workdir, env)
    assert lines == ["Just /usr/local/bin."]
    output = model.requests[1].function_call_outputs[0]
    assert "marker=unset" in output  # not inherited from the script's environment
    assert "/usr/local/bin" in output


def test_cancel_turn_stops_codex_after_five_seconds(
    model: ScriptedModel, codex_home: Path, workdir: Path
) -> None:
    model.add(replies.hang())
    started = time.monotonic()
    lines = run_example("sdk_cancel_turn.py", workdir, codex_env(codex_home))
    assert lines == ["Turn was cancelled"]
    assert time.monotonic() - started >= 5
    assert model.requests[0].last_user_text == "Long running task"
    assert wait_until_gone(codex_home) == []


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(path.name for path in EXAMPLES.glob("sdk_*.py")))
def test_without_credentials_an_example_runs_offline(
    script: str, workdir: Path, tmp_path: Path
) -> None:
    """No key, no login, no provider of one's own: a scripted model answers, and says so."""
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "CODEX_API_KEY")}
    env["CODEX_HOME"] = str(tmp_path / "no-login-here")
    (workdir / "ui.png").write_bytes(png())
    (workdir / "diagram.jpg").write_bytes(png())
    result = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / script),
            *([str(workdir)] if "directory" in script else []),
        ],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("offline: no OpenAI credentials"), result.stderr
    lines = result.stdout.splitlines()
    if script == "sdk_cancel_turn.py":
        assert lines == ["Turn was cancelled"]
    elif "structured_output" in script:
        assert json.loads(lines[0]) == {"summary": "(scripted model, offline)", "status": "ok"}
    else:
        assert "(Scripted model, offline: not a real answer to" in result.stdout, result.stdout


def test_every_example_is_run_by_a_test() -> None:
    tested = {
        "sdk_approval_policies.py",
        "sdk_cancel_turn.py",
        "sdk_cli_environment.py",
        "sdk_config_overrides.py",
        "sdk_images.py",
        "sdk_quickstart.py",
        "sdk_resume_thread.py",
        "sdk_sandbox_modes.py",
        "sdk_streaming.py",
        "sdk_structured_output.py",
        "sdk_structured_output_pydantic.py",
        "sdk_working_directory.py",
    }
    assert {path.name for path in EXAMPLES.glob("sdk_*.py")} == tested
