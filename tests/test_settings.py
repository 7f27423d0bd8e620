"""Server settings from flags and CODEX_MCP_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from codex_mcp_server.server import Settings, SettingsError, parse_settings


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = parse_settings([], {})
    assert settings == Settings(cwd=tmp_path.resolve())
    assert settings.default_sandbox == "read-only"
    assert settings.max_sandbox == "workspace-write"
    assert settings.approval_policy == "never"
    assert settings.tool_set == "default"
    assert settings.transport == "stdio"
    assert settings.max_concurrent_turns == 4


def test_flags_and_variables(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "work").mkdir(parents=True)
    env = {
        "CODEX_MCP_CWD": str(root / "work"),
        "CODEX_MCP_DEFAULT_MODEL": "from-env",
        "CODEX_MCP_ALLOWED_ROOTS": str(root),
        "CODEX_MCP_CONFIG": 'model_verbosity="low"\n\nhide_agent_reasoning=true\n',
        "CODEX_MCP_LOG_LEVEL": "debug",
        "CODEX_MCP_MAX_CONCURRENT_TURNS": "2",
        "CODEX_MCP_IDLE_TIMEOUT": "0",
        "CODEX_MCP_AUTH_TOKEN": "secret",
        "CODEX_MCP_ALLOWED_HOSTS": "Codex.Example.com, [2001:db8::1]:8443",
    }
    settings = parse_settings(["--default-model", "from-flag", "--max-sandbox", "read-only"], env)
    assert settings.cwd == (root / "work").resolve()
    assert settings.default_model == "from-flag"  # A flag wins over its variable.
    assert settings.allowed_roots == (root.resolve(),)
    assert settings.config == ('model_verbosity="low"', "hide_agent_reasoning=true")
    assert settings.log_level == "DEBUG"
    assert settings.max_concurrent_turns == 2
    assert settings.idle_timeout == 0
    assert settings.max_sandbox == "read-only"
    assert settings.auth_token == "secret"
    assert "secret" not in repr(settings)
    assert settings.allowed_hosts == ("codex.example.com", "[2001:db8::1]:8443")
    flagged = parse_settings(["--allowed-host", "a.example", "--allowed-host", "b.example:1"], env)
    assert flagged.allowed_hosts == ("a.example", "b.example:1")


@pytest.mark.parametrize(
    ("argv", "tool_set"),
    [
        (["mcp-server"], "codex"),
        (["mcp-server", "--tool-set", "all"], "all"),
        (["--tool-set", "all"], "all"),
    ],
)
def test_the_mcp_server_argument_stands_in_for_codex_mcp_server(
    argv: list[str], tool_set: str
) -> None:
    assert parse_settings(argv, {}).tool_set == tool_set


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--max-concurrent-turns", "0"], {}, "at least 1"),
        ([], {"CODEX_MCP_MAX_CONCURRENT_TURNS": "1.5"}, "whole number"),
        (["--port", "70000"], {}, "between 1 and 65535"),
        (["--config", "x=not toml ["], {}, "not a TOML literal"),
        (["--config", "=1"], {}, "expected KEY=VALUE"),
        ([], {"CODEX_MCP_IDLE_TIMEOUT": "-1"}, "CODEX_MCP_IDLE_TIMEOUT must be 0"),
        ([], {"CODEX_MCP_LOG_LEVEL": "loud"}, "CODEX_MCP_LOG_LEVEL"),
        (["--transport", "streamable-http", "--host", "192.0.2.1"], {}, "CODEX_MCP_AUTH_TOKEN"),
        (["--allowed-root", "/"], {"CODEX_MCP_CWD": "/nonexistent"}, "not an existing"),
        (["--transport", "streamable-http", "--allowed-host", "a.example"], {}, "proxy"),
        (["--allowed-host", "https://a.example/mcp"], {}, "expected a host name"),
        (["--allowed-host", "a.example:0"], {}, "expected a host name"),
        (["--allowed-host", "a.example:99999"], {}, "expected a host name"),
        (["--allowed-host", "a example"], {}, "expected a host name"),
        ([], {"CODEX_MCP_ALLOWED_HOSTS": "[::1"}, "expected a host name"),
        (["something-else"], {}, "invalid choice"),
        (["--codex-path", "/nonexistent"], {}, "--codex-path /nonexistent: no executable file"),
        (["--codex-path", "/"], {}, "--codex-path /: no executable file"),
        # A value from a variable is reported under the variable's name, not the flag's.
        ([], {"CODEX_MCP_CODEX_PATH": "/nonexistent"}, "CODEX_MCP_CODEX_PATH /nonexistent"),
        ([], {"CODEX_MCP_CWD": "/nonexistent"}, "CODEX_MCP_CWD /nonexistent is not"),
        ([], {"CODEX_MCP_MAX_CONCURRENT_TURNS": "0"}, "CODEX_MCP_MAX_CONCURRENT_TURNS must"),
        ([], {"CODEX_MCP_PORT": "0"}, "CODEX_MCP_PORT must be between"),
        ([], {"CODEX_MCP_CONFIG": "x=not toml ["}, "CODEX_MCP_CONFIG 'x=not toml ['"),
        ([], {"CODEX_MCP_ALLOWED_HOSTS": "a example"}, "CODEX_MCP_ALLOWED_HOSTS 'a example'"),
        (
            [],
            {"CODEX_MCP_DEFAULT_SANDBOX": "danger-full-access"},
            "CODEX_MCP_DEFAULT_SANDBOX danger-full-access is above --max-sandbox",
        ),
    ],
)
def test_bad_values_exit_with_a_message(
    argv: list[str], env: dict[str, str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        parse_settings(argv, env)
    assert info.value.code == 2
    error = capsys.readouterr().err.split("error: ", 1)[1]  # After argparse's usage lines.
    assert message in error
    if env and not argv:
        assert not error.startswith("--"), error  # The cause is the variable, not a flag.


def test_codex_path_is_accepted_when_it_is_an_executable(tmp_path: Path) -> None:
    codex = tmp_path / "codex"
    codex.write_text("#!/bin/sh\n")
    codex.chmod(0o755)
    assert parse_settings(["--codex-path", str(codex)], {}).codex_path == str(codex)
    assert parse_settings([], {"CODEX_MCP_CODEX_PATH": str(codex)}).codex_path == str(codex)


def test_cwd_must_lie_inside_the_allowed_roots(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(SettingsError, match="outside every --allowed-root"):
        Settings(cwd=tmp_path / "a", allowed_roots=(tmp_path / "b",))


def test_loopback_hosts(tmp_path: Path) -> None:
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert Settings(cwd=tmp_path, host=host).loopback
    assert not Settings(cwd=tmp_path, host="0.0.0.0", auth_token="t").loopback
