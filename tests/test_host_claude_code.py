"""Claude Code as the MCP host: headless ``claude -p`` whose model calls this server's tools.

Claude Code (pinned, installed once with npm into a cache directory) runs with the shipped
``examples/hosts/claude-code.mcp.json`` (but for the command: this interpreter running this
checkout) against :class:`ScriptedClaude`, a scripted Anthropic Messages API; our server's
codex talks to the scripted Responses API. No network, no key (a dummy one).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from codex_mcp_server.testing import ScriptedModel, codex_env, replies

from .anthropic_support import ScriptedClaude, Text, ToolUse, tool_results

CLAUDE_CODE = "@anthropic-ai/claude-code@2.1.332"
SHIPPED = Path(__file__).parent.parent / "examples" / "hosts" / "claude-code.mcp.json"
CACHE = Path(
    os.environ.get("CODEX_MCP_TEST_CACHE") or Path.home() / ".cache" / "mcp-server-codex-tests"
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def claude() -> Path:
    """The ``claude`` executable, installed with npm on first use."""
    prefix = CACHE / CLAUDE_CODE.replace("/", "+")
    binary = prefix / "node_modules" / ".bin" / "claude"
    if not binary.exists():
        npm = shutil.which("npm")
        assert npm is not None, "these tests install Claude Code with npm: install Node.js"
        subprocess.run(
            [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", CLAUDE_CODE],
            check=True,
            capture_output=True,
            timeout=600,
        )
    return binary


def _mcp_config(tmp_path: Path) -> tuple[Path, str]:
    config = json.loads(SHIPPED.read_text(encoding="utf-8"))
    (name,) = config["mcpServers"]
    entry = config["mcpServers"][name]
    entry["command"] = sys.executable
    entry["args"] = ["-m", "codex_mcp_server", *entry["args"]]
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path, name


def test_shipped_claude_code_config_works_headless(
    claude: Path, tmp_path: Path, model: ScriptedModel, codex_home: Path, workdir: Path
) -> None:
    config, name = _mcp_config(tmp_path)
    start_thread = f"mcp__{name}__start_thread"

    def decide(body: dict[str, Any]) -> Text | ToolUse:
        if start_thread not in [tool.get("name") for tool in body.get("tools") or []]:
            return Text("side request")  # Claude Code's own (titles and the like).
        if tool_results(body):
            return Text("outer done")
        return ToolUse(start_thread, {"prompt": "inner task", "working_directory": str(workdir)})

    model.add(replies.message("inner answer"))
    with ScriptedClaude(decide) as scripted:
        env = codex_env(codex_home)  # Its HOME is an empty directory: no user settings.
        env.update(
            ANTHROPIC_BASE_URL=scripted.url,
            ANTHROPIC_API_KEY="dummy",
            # Send MCP tools to the model directly, not behind a tool-search step.
            ENABLE_TOOL_SEARCH="false",
            CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
            DISABLE_AUTOUPDATER="1",
            DISABLE_TELEMETRY="1",
            DISABLE_ERROR_REPORTING="1",
        )
        result = subprocess.run(
            [
                str(claude),
                "-p",
                "ask codex",
                "--mcp-config",
                str(config),
                "--strict-mcp-config",
                "--allowedTools",
                f"mcp__{name}",
                "--output-format",
                "json",
            ],
            env=env,
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=180,
            stdin=subprocess.DEVNULL,
        )
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    outcome = json.loads(result.stdout)
    assert (outcome["is_error"], outcome["result"]) == (False, "outer done"), outcome
    assert outcome["permission_denials"] == []
    assert model.requests[0].last_user_text == "inner task"  # Our server's codex ran it.
    answered = [body for body in scripted.requests if tool_results(body)]
    (tool_result,) = tool_results(answered[0])
    assert not tool_result.get("is_error"), tool_result
    handed = json.dumps(tool_result["content"])
    assert "inner answer" in handed and "turn-1" in handed, handed
