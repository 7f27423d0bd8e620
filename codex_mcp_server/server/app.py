"""The MCP server object: tools registered, and a lifespan that stops every turn on exit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp.server import MCPServer

from .. import __version__
from .settings import Settings
from .tools import CodexTools, build_tools

__all__ = ["build_server"]

INSTRUCTIONS = """\
Runs OpenAI's Codex coding agent. start_thread gives Codex a task in a working directory and
returns its answer and what it did; run_turn continues the same thread with its history.
Progress (commands, edits, plans) streams while a turn runs. interrupt_turn stops a turn.
Threads persist in Codex's home: resume_thread brings one back after a restart."""


def build_server(settings: Settings, tools: CodexTools | None = None) -> MCPServer[CodexTools]:
    """An MCP server exposing the Codex tools under ``settings``."""
    tools = tools or CodexTools(settings)

    @asynccontextmanager
    async def lifespan(_: MCPServer[Any]) -> AsyncIterator[CodexTools]:
        try:
            yield tools
        finally:
            # Request tasks stop their own turns when cancelled; this also covers turns
            # whose request outlived the session (and is the last word before exit).
            await tools.shutdown()

    server: MCPServer[CodexTools] = MCPServer(
        "codex-mcp-server",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        log_level=settings.log_level,
        tools=build_tools(tools),
    )
    return server
