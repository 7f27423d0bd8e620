"""Standard input as a cancellable stream, so that a signal can stop the server at once.

The ``mcp`` SDK reads stdin in a worker thread, which cancellation cannot interrupt: on
SIGTERM the server would wait for the host's next line. Reading through the event loop
(a non-blocking pipe) makes the read an ordinary cancellable await.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

__all__ = ["open_stdin"]

# MCP messages carry whole prompts and schemas on one line; allow big ones.
_LINE_LIMIT = 256 * 1024 * 1024


class _LineReader:
    def __init__(self, reader: asyncio.StreamReader, transport: asyncio.ReadTransport) -> None:
        self._reader = reader
        self._transport = transport

    def __aiter__(self) -> _LineReader:
        return self

    async def __anext__(self) -> str:
        line = await self._reader.readline()
        if not line:
            self._transport.close()
            raise StopAsyncIteration
        return line.decode("utf-8", "replace")


async def open_stdin() -> Any | None:
    """Stdin as an async iterator of lines, or ``None`` when it is not a pipe or terminal."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_LINE_LIMIT)
    try:
        pipe = os.fdopen(os.dup(sys.stdin.fileno()), "rb", buffering=0)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), pipe
        )
    except (OSError, ValueError, AttributeError):
        return None  # A regular file, or no stdin: the SDK's own reader copes.
    return _LineReader(reader, transport)
