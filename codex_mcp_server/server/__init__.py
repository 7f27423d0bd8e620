"""The MCP server on top of :mod:`codex_mcp_server.sdk`."""

from .app import build_server
from .settings import Settings, SettingsError, parse_settings
from .tools import CodexTools

__all__ = ["CodexTools", "Settings", "SettingsError", "build_server", "parse_settings"]
