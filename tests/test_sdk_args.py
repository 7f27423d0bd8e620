"""Command line, environment and input normalization of the SDK, without running codex."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from codex_mcp_server.sdk import (
    ApprovalMode,
    Codex,
    CodexNotFoundError,
    InvalidOptionsError,
    ModelReasoningEffort,
    SandboxMode,
    WebSearchMode,
    find_codex,
)
from codex_mcp_server.sdk.engine import TurnInput
from codex_mcp_server.sdk.exec import CodexExec, ExecArgs
from codex_mcp_server.sdk.exec_engine import ExecEngine
from codex_mcp_server.sdk.thread import Thread, normalize_input

BASE = ["exec", "--experimental-json"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (ExecArgs(input="hi"), BASE),
        (ExecArgs(input="hi", model="gpt-5.5"), [*BASE, "--model", "gpt-5.5"]),
        (
            ExecArgs(input="hi", model="m", profile="fast", sandbox_mode="read-only"),
            [*BASE, "--model", "m", "--profile", "fast", "--sandbox", "read-only"],
        ),
        (
            ExecArgs(input="hi", base_url="http://127.0.0.1:9"),
            [*BASE, "--config", 'openai_base_url="http://127.0.0.1:9"'],
        ),
        (
            ExecArgs(input="x", thread_id="t1", images=["a.png", "b.jpg"]),
            [*BASE, "resume", "t1", "--image", "a.png", "--image", "b.jpg"],
        ),
        (ExecArgs(input="x", thread_source="api"), [*BASE, "--thread-source", "api"]),
        (ExecArgs(input="x", thread_source="api", thread_id="t"), [*BASE, "resume", "t"]),
        (ExecArgs(input="x", web_search_enabled=True), [*BASE, "--config", 'web_search="live"']),
        (
            ExecArgs(input="x", web_search_enabled=False),
            [*BASE, "--config", 'web_search="disabled"'],
        ),
        (
            ExecArgs(input="x", web_search_mode="cached", web_search_enabled=True),
            [*BASE, "--config", 'web_search="cached"'],
        ),
        (
            ExecArgs(input="x", network_access_enabled=False),
            [*BASE, "--config", "sandbox_workspace_write.network_access=false"],
        ),
        (
            ExecArgs(
                input="x",
                base_url="http://h",
                model="m",
                thread_source="s",
                sandbox_mode="workspace-write",
                working_directory="/w",
                additional_directories=["/a", "/b"],
                skip_git_repo_check=True,
                output_schema_file="/s.json",
                cyber_access_program="standard",
                model_reasoning_effort="high",
                network_access_enabled=True,
                web_search_mode="live",
                approval_policy="on-request",
                thread_id=None,
                images=["i.png"],
            ),
            [
                *BASE,
                "--config",
                'openai_base_url="http://h"',
                "--model",
                "m",
                "--thread-source",
                "s",
                "--sandbox",
                "workspace-write",
                "--cd",
                "/w",
                "--add-dir",
                "/a",
                "--add-dir",
                "/b",
                "--skip-git-repo-check",
                "--output-schema",
                "/s.json",
                "--cyber-access-program",
                "standard",
                "--config",
                'model_reasoning_effort="high"',
                "--config",
                "sandbox_workspace_write.network_access=true",
                "--config",
                'web_search="live"',
                "--config",
                'approval_policy="on-request"',
                "--image",
                "i.png",
            ],
        ),
    ],
)
def test_argument_order(args: ExecArgs, expected: list[str]) -> None:
    assert CodexExec().build_args(args) == expected


def test_global_config_comes_first_so_thread_options_win() -> None:
    exec = CodexExec(config_args=['approval_policy="never"'], config_overrides=["a.b=1"])
    args = exec.build_args(ExecArgs(input="x", approval_policy="on-request"))
    assert args == [
        *BASE,
        "--config",
        'approval_policy="never"',
        "--config",
        "a.b=1",
        "--config",
        'approval_policy="on-request"',
    ]


def _exec_args(codex: Codex, thread: Thread, images: list[str] | None = None) -> ExecArgs:
    engine = codex.engine
    assert isinstance(engine, ExecEngine)
    return engine.exec_args(thread.id, thread.options, TurnInput("p", images or []), None, {})


def test_thread_options_accept_enums_and_become_flags() -> None:
    codex = Codex({"config": {"show_raw_agent_reasoning": True}})
    thread = codex.start_thread(
        {
            "sandbox_mode": SandboxMode.WORKSPACE_WRITE,
            "approval_policy": ApprovalMode.ON_FAILURE,
            "model_reasoning_effort": ModelReasoningEffort.XHIGH,
            "web_search_mode": WebSearchMode.CACHED,
        }
    )
    args = codex.exec.build_args(_exec_args(codex, thread))
    assert args == [
        *BASE,
        "--config",
        "show_raw_agent_reasoning=true",
        "--sandbox",
        "workspace-write",
        "--config",
        'model_reasoning_effort="xhigh"',
        "--config",
        'web_search="cached"',
        "--config",
        'approval_policy="on-failure"',
    ]


def test_resumed_thread_passes_resume_before_images() -> None:
    codex = Codex()
    thread = codex.resume_thread("0199-abc")
    assert thread.id == "0199-abc"
    args = codex.exec.build_args(_exec_args(codex, thread, ["x.png"]))
    assert args[-4:] == ["resume", "0199-abc", "--image", "x.png"]


def test_enums_are_strings_on_python_3_10() -> None:
    assert SandboxMode.READ_ONLY == "read-only"
    assert str(ApprovalMode.NEVER) == "never"
    assert f"{WebSearchMode.LIVE}" == "live"
    assert [m.value for m in ModelReasoningEffort][:5] == [
        "minimal",
        "low",
        "medium",
        "high",
        "xhigh",
    ]


def test_env_given_is_not_merged_with_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEX_ENV_SHOULD_NOT_LEAK", "leak")
    exec = CodexExec(env={"PATH": "/usr/bin"})
    env = exec.build_env(ExecArgs(input="x", api_key="sk-test"), ["/opt/codex-path"])
    assert env == {
        "PATH": f"/opt/codex-path{os.pathsep}/usr/bin",
        "CODEX_INTERNAL_ORIGINATOR_OVERRIDE": "codex_sdk_py",
        "CODEX_API_KEY": "sk-test",
    }


def test_env_inherited_by_default_and_originator_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEX_ENV_INHERITED", "yes")
    monkeypatch.setenv("CODEX_INTERNAL_ORIGINATOR_OVERRIDE", "my_app")
    env = CodexExec().build_env(ExecArgs(input="x"))
    assert env["CODEX_ENV_INHERITED"] == "yes"
    assert env["CODEX_INTERNAL_ORIGINATOR_OVERRIDE"] == "my_app"
    assert "CODEX_API_KEY" not in env or env["CODEX_API_KEY"] == os.environ.get("CODEX_API_KEY")


def test_base_url_is_a_config_flag_not_an_env_var() -> None:
    env = CodexExec(env={}).build_env(ExecArgs(input="x", base_url="http://h"))
    assert "OPENAI_BASE_URL" not in env


@pytest.mark.parametrize(
    ("input", "prompt", "images"),
    [
        ("plain", "plain", []),
        (
            [
                {"type": "text", "text": "Describe these screenshots"},
                {"type": "local_image", "path": "./ui.png"},
                {"type": "text", "text": "carefully"},
                {"type": "local_image", "path": "./diagram.jpg"},
            ],
            "Describe these screenshots\n\ncarefully",
            ["./ui.png", "./diagram.jpg"],
        ),
        ([], "", []),
    ],
)
def test_normalize_input(input: object, prompt: str, images: list[str]) -> None:
    assert normalize_input(input) == (prompt, images)  # type: ignore[arg-type]


@pytest.mark.parametrize("entry", [{"type": "audio", "path": "x"}, "text", {"text": "no type"}])
def test_normalize_input_rejects_unknown_entries(entry: object) -> None:
    with pytest.raises(InvalidOptionsError, match="Unsupported input entry"):
        normalize_input([entry])  # type: ignore[list-item]


def test_find_codex_override_must_be_executable(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(CodexNotFoundError, match="pip install 'mcp-server-codex\\[bundled\\]'"):
        find_codex(str(missing))
    script = tmp_path / "codex"
    script.write_text("#!/bin/sh\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    assert find_codex(str(script)).path == str(script)
    assert find_codex(str(script)).path_dirs == ()


def test_find_codex_prefers_the_bundled_wheel() -> None:
    import codex_cli_bin

    found = find_codex()
    assert found.path == str(codex_cli_bin.bundled_codex_path())
    path_dir = codex_cli_bin.bundled_path_dir()
    assert found.path_dirs == ((str(path_dir),) if path_dir else ())


def test_find_codex_falls_back_to_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import codex_mcp_server.sdk.locate as locate

    monkeypatch.setattr(locate, "_bundled", lambda: None)
    with pytest.raises(CodexNotFoundError, match="npm install -g @openai/codex"):
        find_codex(search_path=str(tmp_path))
    script = tmp_path / "codex"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    assert find_codex(search_path=str(tmp_path)).path == str(script)
