"""``codex-mcp-server``: parse settings, serve MCP over stdio or HTTP, stop cleanly on signals."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Sequence

import anyio

from ..sdk import adopt_orphans
from .about import start_line
from .app import build_server
from .settings import Settings, parse_settings
from .stdio import stdio_streams

__all__ = ["main", "serve"]

logger = logging.getLogger("codex_mcp_server")


async def serve(settings: Settings) -> None:
    """Serve over stdio until the host closes stdin or stdout, or SIGTERM/SIGINT arrives."""
    server = build_server(settings)
    async with anyio.create_task_group() as group:

        async def stop_on_signal() -> None:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for signum in signals:
                    logger.info("received %s; stopping", signal.Signals(signum).name)
                    group.cancel_scope.cancel()
                    return

        async def run_stdio() -> None:
            async with stdio_streams() as (read_stream, write_stream):
                # MCPServer has no public way to serve given streams (run_stdio_async
                # always reads stdin in a thread); mcp is pinned below 3 for this.
                lowlevel = server._lowlevel_server
                options = lowlevel.create_initialization_options()
                await lowlevel.run(read_stream, write_stream, options)
            group.cancel_scope.cancel()

        group.start_soon(stop_on_signal)
        group.start_soon(run_stdio)


def main(argv: Sequence[str] | None = None) -> None:
    settings = parse_settings(argv)
    # stdout carries the protocol; everything else goes to stderr.
    logging.basicConfig(
        stream=sys.stderr,
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logger.info("%s", start_line(settings))
    # Commands that escape codex's process group and environment are reparented to us, so
    # that each turn's end (and the server's) stops them too.
    if not adopt_orphans():
        logger.debug("not a child subreaper: escaped commands go to init")
    if settings.transport == "streamable-http":
        from .http import serve_http  # uvicorn is loaded only for HTTP.

        anyio.run(serve_http, settings)
    else:
        anyio.run(serve, settings)
