"""What the server says about itself: its version and codex's, and the line it logs at start."""

from __future__ import annotations

from .. import __version__
from ..sdk import CodexNotFoundError
from ..sdk.locate import INSTALL_HINT, codex_version, find_codex
from .settings import Settings

__all__ = ["describe_codex", "start_line", "version_text"]


def describe_codex(codex_path: str | None) -> str:
    """``codex-cli 0.163.0 at /path/to/codex``, or why there is none."""
    try:
        binary = find_codex(codex_path)
    except CodexNotFoundError:
        return f"codex not found. {INSTALL_HINT}"
    version = codex_version(binary) or "codex of unknown version (`codex --version` failed)"
    return f"{version} at {binary.path}"


def version_text(codex_path: str | None) -> str:
    """What ``--version`` prints: this package's version, then codex's."""
    return f"codex-mcp-server {__version__}\n{describe_codex(codex_path)}"


def start_line(settings: Settings) -> str:
    """One line saying what the server serves, how, and with which codex."""
    if settings.transport == "streamable-http":
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        where = f"streamable HTTP at http://{host}:{settings.port}/mcp"
    else:
        where = "stdio"
    return (
        f"codex-mcp-server {__version__} serving MCP over {where}; "
        f"engine: codex {settings.backend}; {describe_codex(settings.codex_path)}"
    )
