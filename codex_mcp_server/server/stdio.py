"""Standard input and output through the event loop instead of worker threads.

The ``mcp`` SDK reads stdin in a worker thread, which cancellation cannot interrupt: on
SIGTERM the server would wait for the host's next line. It also writes every message with a
write and a flush in worker threads, which at hundreds of progress notifications a second
delays them by tens of milliseconds. Non-blocking pipes make both ordinary awaits.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

__all__ = ["open_stdin", "open_stdout"]

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


class _LineWriter:
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    async def write(self, text: str) -> None:
        self._writer.write(text.encode())

    async def flush(self) -> None:
        await self._writer.drain()  # Returns at once unless the pipe is full.


async def open_stdout() -> Any | None:
    """Stdout as an async writer, or ``None`` when it is not a pipe (the SDK's writer copes)."""
    loop = asyncio.get_running_loop()
    try:
        pipe = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
        transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, pipe)
    except (OSError, ValueError, AttributeError):
        return None
    return _LineWriter(asyncio.StreamWriter(transport, protocol, None, loop))
