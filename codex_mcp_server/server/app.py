"""The MCP server object: tools registered, and a lifespan that stops every turn on exit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp.server import MCPServer

from .. import __version__
from ..sdk.engine import Engine
from .dropin import build_dropin_tools
from .resources import add_resources
from .settings import Settings
from .threads import ThreadService
from .tools import build_tools

__all__ = ["build_server"]

INSTRUCTIONS = """\
Runs OpenAI's Codex coding agent. start_thread gives Codex a task in a working directory and
returns its answer and what it did; run_turn continues the same thread with its history.
Progress (commands, edits, plans) streams while a turn runs. interrupt_turn stops a turn.
Threads persist in Codex's home: resume_thread brings one back after a restart."""


def build_server(settings: Settings, engine: Engine | None = None) -> MCPServer[ThreadService]:
    """An MCP server exposing the Codex tools under ``settings``; ``engine`` replaces the one
    ``settings.backend`` names (a ``FakeEngine`` in tests)."""
    service = ThreadService(settings, engine=engine)

    @asynccontextmanager
    async def lifespan(_: MCPServer[Any]) -> AsyncIterator[ThreadService]:
        # Holds background turns; on exit stops every turn, background or not.
        async with service.running():
            yield service

    server: MCPServer[ThreadService] = MCPServer(
        "codex-mcp-server",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        log_level=settings.log_level,
        tools=[
            *(build_tools(service) if settings.tool_set in ("default", "all") else ()),
            *(build_dropin_tools(service) if settings.tool_set in ("codex", "all") else ()),
        ],
    )
    add_resources(server, service)
    return server
