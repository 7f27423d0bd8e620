"""Finding the codex binary: an explicit path, the ``openai-codex-cli-bin`` wheel, or ``PATH``."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .errors import CodexNotFoundError

__all__ = ["INSTALL_HINT", "CodexBinary", "codex_version", "find_codex"]

INSTALL_HINT = (
    "Install it with `pip install 'mcp-server-codex[bundled]'` (the openai-codex-cli-bin wheel) "
    "or `npm install -g @openai/codex`, or give its path (codex_path_override / --codex-path)."
)


@dataclass(frozen=True)
class CodexBinary:
    """A codex executable and the directories to put in front of its ``PATH``."""

    path: str
    path_dirs: tuple[str, ...] = ()


def find_codex(override: str | None = None, search_path: str | None = None) -> CodexBinary:
    """Locate codex: ``override`` if given, else the bundled wheel, else ``codex`` on ``PATH``.

    ``search_path`` is the ``PATH`` to search (default: this process's).
    """
    if override:
        path = Path(override).expanduser()
        if not path.is_file() or not os.access(path, os.X_OK):
            raise CodexNotFoundError(f"No executable codex binary at {override}. {INSTALL_HINT}")
        return CodexBinary(str(path))
    bundled = _bundled()
    if bundled is not None:
        return bundled
    found = shutil.which("codex", path=search_path)
    if found:
        return CodexBinary(found)
    raise CodexNotFoundError(f"The Codex CLI (codex) was not found. {INSTALL_HINT}")


def codex_version(binary: CodexBinary, timeout: float = 5.0) -> str | None:
    """What ``codex --version`` prints (``codex-cli 0.163.0``), or ``None`` if it did not say."""
    try:
        done = subprocess.run(
            [binary.path, "--version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = done.stdout.strip().splitlines()
    return lines[-1].strip()[:200] if done.returncode == 0 and lines else None


def _bundled() -> CodexBinary | None:
    try:
        import codex_cli_bin
    except ImportError:
        return None
    try:
        binary = codex_cli_bin.bundled_codex_path()
        path_dir = codex_cli_bin.bundled_path_dir()
    except (FileNotFoundError, OSError):
        return None
    # The wheel ships helpers (rg) that codex expects on PATH.
    return CodexBinary(str(binary), (str(path_dir),) if path_dir else ())
