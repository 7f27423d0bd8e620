"""The MCP server on top of :mod:`codex_mcp_server.sdk`."""

from .app import build_server
from .settings import Settings, SettingsError, parse_settings
from .threads import ThreadService

__all__ = ["Settings", "SettingsError", "ThreadService", "build_server", "parse_settings"]
