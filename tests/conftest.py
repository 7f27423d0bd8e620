"""Fixtures shared by the tests: the scripted model and an isolated CODEX_HOME.

The tests run the codex of the ``openai-codex-cli-bin`` wheel. ``CODEX_MCP_TEST_CODEX=<path>``
runs them against another codex instead (``node_modules/.bin/codex`` of an
``npm install @openai/codex``, say): the wheel's functions answer with it, so the SDK, the
server in this process and the tests' own codex runs use it, and ``CODEX_MCP_CODEX_PATH``
gives it to servers started as subprocesses.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from codex_mcp_server.sdk import Codex, CodexNotFoundError, find_codex
from codex_mcp_server.sdk.locate import codex_version
from codex_mcp_server.testing import ScriptedModel, codex_env, make_codex_home

TEST_CODEX = "CODEX_MCP_TEST_CODEX"


def pytest_configure(config: pytest.Config) -> None:
    chosen = os.environ.get(TEST_CODEX)
    if not chosen:
        return
    found = shutil.which(chosen)
    if found is None:
        raise pytest.UsageError(f"{TEST_CODEX}={chosen}: no executable codex there")
    path = Path(found).absolute()
    import codex_cli_bin

    # The codex under test stands in for the wheel's; it brings its own PATH helpers.
    codex_cli_bin.bundled_codex_path = lambda: path
    codex_cli_bin.bundled_path_dir = lambda: None
    os.environ["CODEX_MCP_CODEX_PATH"] = str(path)


def pytest_report_header(config: pytest.Config) -> str:
    try:
        binary = find_codex()
    except CodexNotFoundError as exc:  # The tests that need codex will say so too.
        return f"codex under test: none. {exc}"
    return f"codex under test: {codex_version(binary)} at {binary.path}"


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


# Tests that use these fixtures drive the real codex binary (the scripted model is only ever
# there for codex to talk to): `pytest -m "not slow"` leaves them out for a fast loop. The
# few that start the server as a subprocess without them are marked by hand.
_CODEX_FIXTURES = frozenset({"model", "codex_home", "codex", "codex_binary"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _CODEX_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
