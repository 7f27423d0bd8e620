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


# Tests that use these fixtures drive the real codex binary (the scripted model is only ever
# there for codex to talk to): `pytest -m "not slow"` leaves them out for a fast loop. The
# few that start the server as a subprocess without them are marked by hand.
_CODEX_FIXTURES = frozenset({"model", "codex_home", "codex", "codex_binary"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _CODEX_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
