"""Fixtures shared by the tests: the scripted model and an isolated CODEX_HOME."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from codex_mcp_server.sdk import Codex
from codex_mcp_server.testing import ScriptedModel, codex_env, make_codex_home


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def model() -> Iterator[ScriptedModel]:
    with ScriptedModel() as scripted:
        yield scripted


@pytest.fixture
def codex_home(tmp_path: Path, model: ScriptedModel) -> Path:
    return make_codex_home(tmp_path / "codex-home", model.url)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A git repository, so codex runs there without --skip-git-repo-check."""
    path = tmp_path / "work"
    path.mkdir()
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    return path


@pytest.fixture
def codex(codex_home: Path) -> Codex:
    return Codex({"env": codex_env(codex_home)})


BACKENDS = ("app-server", "exec")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The server's engine for this test, as CODEX_MCP_BACKEND too (servers in subprocesses,
    and :func:`tests.server_support.serve`, take it from there)."""
    monkeypatch.setenv("CODEX_MCP_BACKEND", request.param)
    return str(request.param)
