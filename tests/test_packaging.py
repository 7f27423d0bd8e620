"""The distribution as a user gets it: built, checked, installed into a fresh venv, run.

The fresh venv gets the wheel with ``pip install --no-deps`` and reaches its dependencies
through a ``.pth`` line naming this interpreter's site-packages: no download, seconds
instead of a minute, and the same dependency versions the rest of the suite runs on. A
plain path line in a ``.pth`` file does not process that directory's own ``.pth`` files,
so the editable install of the checkout stays out; the test checks that the package the
commands import is the wheel's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from codex_mcp_server import __version__
from codex_mcp_server.testing import codex_env

ROOT = Path(__file__).parent.parent
DISTRIBUTION = "mcp-server-codex"
COMMANDS = ("mcp-server-codex", "codex-mcp-server")

pytestmark = pytest.mark.slow


def _run(*args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    result = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=300, env=env, cwd=cwd
    )
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _clean_env() -> dict[str, str]:
    # The suite runs with PYTHONPATH naming the checkout; the installed wheel must not see it.
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # --no-isolation: the dev extra installs the build backend, so nothing is downloaded.
    _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, ROOT, env=_clean_env())
    return out


@pytest.fixture(scope="module")
def venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("venv")
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    (wheel,) = dist.glob("*.whl")
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", wheel)
    purelib = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    Path(purelib.strip(), "_dev_dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8"
    )
    return venv


def test_wheel_and_sdist_carry_the_distribution_name_and_both_commands(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    assert wheel.name.startswith("mcp_server_codex-") and sdist.name.startswith("mcp_server_codex-")
    assert "PASSED" in _run(sys.executable, "-m", "twine", "check", "--strict", wheel, sdist)
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        (metadata,) = (n for n in names if n.endswith(".dist-info/METADATA"))
        assert f"Name: {DISTRIBUTION}\n" in zf.read(metadata).decode()
        (entry_points,) = (n for n in names if n.endswith(".dist-info/entry_points.txt"))
        scripts = zf.read(entry_points).decode()
    for command in COMMANDS:
        assert f"{command} = codex_mcp_server.server.cli:main" in scripts
    assert "codex_mcp_server/py.typed" in names
    assert "codex_mcp_server/testing/README.md" in names
    with tarfile.open(sdist) as tf:
        members = tf.getnames()
    assert any(m.endswith("/pyproject.toml") for m in members)
    assert any(m.endswith("/codex_mcp_server/server/cli.py") for m in members)


def test_installed_wheel_imports_itself_not_the_checkout(venv: Path) -> None:
    where = _run(
        venv / "bin" / "python",
        "-c",
        "import codex_mcp_server, importlib.metadata as m; "
        "print(codex_mcp_server.__file__); print(m.version('mcp-server-codex'))",
        env=_clean_env(),
        cwd=venv,  # Not the checkout: `python -c` puts the working directory on sys.path.
    ).split()
    assert Path(where[0]).is_relative_to(venv), where
    assert where[1] == __version__


@pytest.mark.parametrize("command", COMMANDS)
async def test_installed_commands_help_and_list_tools_over_stdio(
    venv: Path, command: str, codex_home: Path, tmp_path: Path
) -> None:
    executable = venv / "bin" / command
    assert "--max-sandbox" in _run(executable, "--help", env=_clean_env(), cwd=tmp_path)
    env = codex_env(codex_home, _clean_env())
    params = StdioServerParameters(command=str(executable), args=[], env=env, cwd=tmp_path)
    async with Client(params) as client:
        tools = [tool.name for tool in (await client.list_tools()).tools]
    snapshot = json.loads((ROOT / "tests" / "snapshots" / "tools_list.json").read_text())
    assert tools == [tool["name"] for tool in snapshot]
