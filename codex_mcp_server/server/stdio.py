"""MCP over standard input and output, through the event loop instead of worker threads.

The ``mcp`` SDK reads stdin in a worker thread, which cancellation cannot interrupt: on
SIGTERM the server would wait for the host's next line. It also writes every message with a
write and a flush in worker threads, which at hundreds of progress notifications a second
delays them by tens of milliseconds. Non-blocking pipes make both ordinary awaits.

What arrives is checked here too: the SDK drops a line that is not a JSON-RPC message without
a word, so the host waits forever for an answer. A line that is not JSON gets a ``-32700``
parse error, and a batch (which this protocol does not support) or an object that is no
JSON-RPC message gets ``-32600``, both with the request's id when there is one to answer.

The session ends cleanly, never with a traceback, when stdin ends (``< /dev/null``
included) or when the host closes stdout: with no one to answer, there is nothing to serve.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import stat
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, BinaryIO, Protocol

import anyio
import mcp_types as types
from mcp.shared._context_streams import (
    ContextReceiveStream,
    ContextSendStream,
    create_context_streams,
)
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

__all__ = ["INVALID_REQUEST", "PARSE_ERROR", "stdio_streams"]

logger = logging.getLogger(__name__)

# MCP messages carry whole prompts and schemas on one line; allow big ones.
_LINE_LIMIT = 256 * 1024 * 1024

PARSE_ERROR = -32700
INVALID_REQUEST = -32600

# Writes to a pipe whose reader has gone.
_CLOSED = (BrokenPipeError, ConnectionResetError)


class _Output(Protocol):
    closed: anyio.Event

    async def write(self, data: bytes) -> None: ...


def _pollable(fd: int) -> bool:
    """Whether the event loop can wait on ``fd``: pipes, sockets and terminals can; regular
    files and ``/dev/null`` cannot (epoll refuses them), but reading them never blocks."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(fd)


async def _read_lines(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    while line := await reader.readline():
        yield line


async def _read_file_lines(file: BinaryIO) -> AsyncIterator[bytes]:
    async with anyio.wrap_file(file) as lines:
        async for line in lines:
            yield line


async def _open_stdin() -> AsyncIterator[bytes]:
    try:
        fd = os.dup(sys.stdin.fileno())
    except (OSError, ValueError, AttributeError):
        return  # No stdin at all: nothing to serve.
    if not _pollable(fd):
        async for line in _read_file_lines(os.fdopen(fd, "rb")):
            yield line
        return
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_LINE_LIMIT)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", buffering=0)
    )
    try:
        async for line in _read_lines(reader):
            yield line
    finally:
        transport.close()


class _StdoutProtocol(asyncio.streams.FlowControlMixin):
    """Tells when the host has closed its end of the pipe, even while nothing is written."""

    def __init__(self, closed: anyio.Event) -> None:
        super().__init__()
        self._closed = closed

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._closed.set()


class _PipeOutput:
    def __init__(self, writer: asyncio.StreamWriter, closed: anyio.Event) -> None:
        self._writer = writer
        self.closed = closed

    async def write(self, data: bytes) -> None:
        if self.closed.is_set():
            return
        try:
            self._writer.write(data)
            await self._writer.drain()  # Returns at once unless the pipe is full.
        except _CLOSED:
            self.closed.set()


class _FileOutput:
    """Stdout that is a file or ``/dev/null``: written in a worker thread, never blocks long."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self.closed = anyio.Event()

    async def write(self, data: bytes) -> None:
        if self.closed.is_set():
            return
        try:
            await anyio.to_thread.run_sync(self._write, data)
        except _CLOSED:
            self.closed.set()

    def _write(self, data: bytes) -> None:
        self._file.write(data)
        self._file.flush()


async def _open_stdout() -> _Output:
    closed = anyio.Event()
    try:
        fd = os.dup(sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        output = _FileOutput(io.BytesIO())
        output.closed.set()  # No stdout at all: no one to answer.
        return output
    if not _pollable(fd):
        return _FileOutput(os.fdopen(fd, "wb"))
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.connect_write_pipe(
        lambda: _StdoutProtocol(closed), os.fdopen(fd, "wb", buffering=0)
    )
    return _PipeOutput(asyncio.StreamWriter(transport, protocol, None, loop), closed)


def _error_reply(line: str, error: ValidationError) -> bytes | None:
    """The JSON-RPC error that answers ``line``, which is no valid message; None for a blank
    line (a host's keep-alive, nothing to answer)."""
    if not line.strip():
        return None
    problem = error.errors()[0]
    unreadable = problem["type"] == "json_invalid"
    detail = f" ({problem['msg']})" if unreadable else ""
    try:
        message = json.loads(line)
    except (ValueError, RecursionError):
        return _error(
            None,
            PARSE_ERROR,
            f"Parse error: the line is not JSON the server can read{detail}. Send one "
            "JSON-RPC message per line.",
        )
    if isinstance(message, list):
        return _error(
            None,
            INVALID_REQUEST,
            "Invalid Request: batches are not supported by this protocol version; send "
            "each JSON-RPC message on its own line.",
        )
    if unreadable:  # JSON to Python, not to the protocol: a lone surrogate, say.
        hint = " Strings must be valid Unicode (no lone surrogates such as \\ud800)."
        return _error(
            _answerable_id(message),
            INVALID_REQUEST,
            f"Invalid Request: the message cannot be read{detail}."
            + (hint if "escape" in detail or "surrogate" in detail else ""),
        )
    return _error(
        _answerable_id(message),
        INVALID_REQUEST,
        'Invalid Request: not a JSON-RPC 2.0 message. A request needs "jsonrpc": "2.0", '
        'an "id" (string or integer), a string "method" and, if any, object "params".',
    )


def _answerable_id(message: Any) -> str | int | None:
    # Only a request's id is answered: echoing the id of a malformed response would fail
    # the host's own pending request that happens to have the same id.
    if not isinstance(message, dict) or "method" not in message:
        return None
    request_id = message.get("id")
    if isinstance(request_id, bool) or not isinstance(request_id, (str, int)):
        return None
    return request_id


def _error(request_id: str | int | None, code: int, message: str) -> bytes:
    reply = {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}
    return json.dumps(reply).encode() + b"\n"


@asynccontextmanager
async def stdio_streams() -> AsyncIterator[
    tuple[ContextReceiveStream[SessionMessage | Exception], ContextSendStream[SessionMessage]]
]:
    """The read and write streams of an MCP session over stdin and stdout.

    The read stream ends when stdin does or when the host closes stdout.
    """
    stdout = await _open_stdout()
    read_writer, read_stream = create_context_streams[SessionMessage | Exception](0)
    write_stream, write_reader = create_context_streams[SessionMessage](0)

    async def read() -> None:
        async with read_writer:
            async for raw in _open_stdin():
                line = raw.decode("utf-8", "replace")  # As the SDK reads it.
                try:
                    message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
                except ValidationError as error:
                    reply = _error_reply(line, error)
                    if reply is not None:
                        logger.warning("answered a malformed JSON-RPC line with an error")
                        await stdout.write(reply)
                    continue
                await read_writer.send(SessionMessage(message))

    async def write() -> None:
        async with write_reader:
            async for session_message in write_reader:
                data = session_message.message.model_dump_json(by_alias=True, exclude_unset=True)
                await stdout.write(data.encode() + b"\n")

    async def end_when_stdout_closes() -> None:
        with watching:
            await stdout.closed.wait()
            logger.info("the host closed stdout; stopping")
            reading.cancel()

    reading, watching = anyio.CancelScope(), anyio.CancelScope()
    async with anyio.create_task_group() as group:

        async def read_until_stopped() -> None:
            with reading:
                await read()
            read_writer.close()  # Also when cancelled: the session sees the end of input.

        group.start_soon(read_until_stopped)
        group.start_soon(write)
        group.start_soon(end_when_stdout_closes)
        try:
            yield read_stream, write_stream
        finally:
            reading.cancel()
            watching.cancel()
            write_stream.close()  # The writer ends once it has written what was sent.
