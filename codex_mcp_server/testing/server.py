"""A scripted, local OpenAI Responses API server that the real ``codex`` binary can talk to.

:class:`ScriptedModel` listens on ``127.0.0.1`` (an ephemeral port) in a background
thread, so it works from plain synchronous code, pytest fixtures and any event loop.
Each ``POST .../responses`` request is recorded and answered with the next scripted
:class:`~codex_mcp_server.testing.replies.Reply` as a Server-Sent-Events stream::

    from codex_mcp_server.testing import ScriptedModel, make_codex_home, codex_env, replies

    with ScriptedModel() as model:
        model.add(replies.command("echo hi"), replies.message("done"))
        home = make_codex_home(tmp_path / "codex-home", model.url)
        subprocess.run([codex, "exec", "--json", "--skip-git-repo-check", "-"],
                       input="say hi", env=codex_env(home), text=True, timeout=60)
        assert model.requests[1].function_call_outputs  # the command's output

When the queue of scripted replies runs dry, a *responder* installed with
:meth:`ScriptedModel.respond_with` answers instead; without one, the server answers
HTTP 501 and codex fails the turn with ``unexpected status 501 Not Implemented:
ScriptedModel: no reply scripted for request N, url: ...``.  (Not 500: codex 0.163
replaces the body of a 500 response with a generic "high demand" message.)  Requests to
any other path or with any other method get HTTP 404.
"""

from __future__ import annotations

import collections
import gzip
import json
import select
import socket
import socketserver
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from .replies import Reply

__all__ = ["UNSCRIPTED_STATUS", "RecordedRequest", "Responder", "ScriptedModel"]

UNSCRIPTED_STATUS = 501
"""The HTTP status of the answer to a request that no reply or responder covers.

Codex shows the response body of most error statuses in its ``turn.failed`` message,
but not that of a 500, which it reports as "We're currently experiencing high demand".
"""

_POLL_INTERVAL = 0.05
"""How often blocked server threads check whether the server is closing (seconds)."""


@dataclass(frozen=True)
class RecordedRequest:
    """A request the :class:`ScriptedModel` received on its ``/responses`` endpoint.

    Attributes:
        path: The request path, e.g. ``"/v1/responses"``.
        headers: The request headers, with lower-case names.
        body: The parsed JSON body (``{}`` if the body was not a JSON object).  Codex
            sends ``model``, ``instructions``, ``input``, ``tools``, ``text``, ... .
    """

    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def input(self) -> list[dict[str, Any]]:
        """The conversation sent to the model: ``body["input"]`` (``[]`` if absent)."""
        items = self.body.get("input")
        if not isinstance(items, list):
            return []
        return [item for item in items if isinstance(item, dict)]

    @property
    def last_user_text(self) -> str:
        """The text of the last ``input_text`` part of the last user message in :attr:`input`.

        For a new turn this is the prompt (``""`` if there is no user message).
        """
        for item in reversed(self.input):
            if item.get("type", "message") == "message" and item.get("role") == "user":
                for part in reversed(_content_parts(item)):
                    if part.get("type") == "input_text":
                        return str(part.get("text", ""))
                return ""
        return ""

    @property
    def function_call_outputs(self) -> list[str]:
        """The ``output`` of every ``function_call_output`` item in :attr:`input`, in order.

        Structured outputs (lists of content parts) are reduced to their joined text.
        """
        outputs: list[str] = []
        for item in self.input:
            if item.get("type") != "function_call_output":
                continue
            output = item.get("output")
            if isinstance(output, str):
                outputs.append(output)
            elif isinstance(output, list):
                outputs.append(
                    "".join(str(part.get("text", "")) for part in output if isinstance(part, dict))
                )
            else:
                outputs.append("" if output is None else json.dumps(output))
        return outputs


def _content_parts(item: dict[str, Any]) -> list[dict[str, Any]]:
    content = item.get("content")
    if isinstance(content, str):
        return [{"type": "input_text", "text": content}]
    if not isinstance(content, list):
        return []
    return [part for part in content if isinstance(part, dict)]


Responder = Callable[[RecordedRequest], Reply]
"""A function that builds the reply to a request when no scripted reply is queued."""


class ScriptedModel:
    """A local Responses API server that answers with scripted replies.

    Use it as a context manager (``with ScriptedModel() as model:``), or call
    :meth:`start` and :meth:`close`.  Point codex at :attr:`url` through a custom model
    provider, most easily with :func:`~codex_mcp_server.testing.make_codex_home`.

    Every request to a path ending in ``/responses`` is recorded (see :attr:`requests`)
    and consumes the next reply queued with :meth:`add`; once the queue is empty, the
    responder installed with :meth:`respond_with` answers; without one the server
    answers HTTP 501 (:data:`UNSCRIPTED_STATUS`) with the body
    ``ScriptedModel: no reply scripted for request N`` (N counts from 1), which codex
    reports in its ``turn.failed`` message.

    All methods are thread-safe.

    Args:
        *replies: Replies to queue right away, as with :meth:`add`.
        host: The address to listen on.
        port: The port to listen on; ``0`` picks a free one.
    """

    def __init__(self, *replies: Reply, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._queue: collections.deque[Reply] = collections.deque(replies)
        self._responder: Responder | None = None
        self._requests: list[RecordedRequest] = []
        self._closing = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None
        self._handlers: set[threading.Thread] = set()
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> ScriptedModel:
        """Start serving in a background daemon thread; returns ``self``.

        Calling it again while running does nothing.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("ScriptedModel is closed; create a new one")
            if self._server is not None:
                return self
            server = _Server((self._host, self._port), _Handler, self)
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": _POLL_INTERVAL},
                name="ScriptedModel",
                daemon=True,
            )
            host, port = server.socket.getsockname()[:2]
            self._server = server
            self._thread = thread
            self._url = f"http://{host}:{port}/v1"
        thread.start()
        return self

    def close(self) -> None:
        """Stop the server and release any hanging or delayed responses.

        Connections still streaming a :func:`~codex_mcp_server.testing.replies.hang`
        reply are dropped.  Returns within about a second; calling it again, or
        before :meth:`start`, is harmless.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            server, thread = self._server, self._thread
            self._arrived.notify_all()
        self._closing.set()
        deadline = time.monotonic() + 1.0
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            handlers = [t for t in self._handlers if t is not threading.current_thread()]
        for handler in handlers:
            handler.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> ScriptedModel:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ properties

    @property
    def url(self) -> str:
        """The base URL for codex's model provider, e.g. ``http://127.0.0.1:PORT/v1``.

        Codex appends ``/responses`` to it.  Only available once started.
        """
        url = self._url
        if url is None:
            raise RuntimeError("ScriptedModel is not started; use start() or 'with'")
        return url

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the requests received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def pending(self) -> int:
        """How many queued replies have not been sent yet."""
        with self._lock:
            return len(self._queue)

    # ------------------------------------------------------------------ scripting

    def add(self, *replies: Reply) -> None:
        """Queue replies; each ``/responses`` request consumes the next one."""
        for item in replies:
            if not isinstance(item, Reply):
                raise TypeError(f"expected a Reply, got {type(item).__name__}")
        with self._lock:
            self._queue.extend(replies)

    def respond_with(self, responder: Responder | None) -> None:
        """Answer requests with ``responder(request)`` whenever the queue is empty.

        Pass ``None`` to remove the responder.  If the responder raises, the request
        is answered with HTTP 501 (:data:`UNSCRIPTED_STATUS`) naming the exception.
        """
        with self._lock:
            self._responder = responder

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least ``n`` requests have arrived; return them all.

        Raises:
            TimeoutError: if fewer than ``n`` requests arrived within ``timeout``
                seconds, or the server was closed before they did.
        """
        with self._arrived:
            self._arrived.wait_for(lambda: len(self._requests) >= n or self._closed, timeout)
            got = len(self._requests)
            if got < n:
                why = "before the server was closed" if self._closed else f"within {timeout}s"
                raise TimeoutError(f"ScriptedModel: expected {n} request(s) {why}, got {got}")
            return list(self._requests)

    # ------------------------------------------------------------------ internals

    def _record(self, request: RecordedRequest) -> tuple[int, Reply | Responder | None]:
        """Record a request; return its 1-based number and what should answer it."""
        with self._lock:
            self._requests.append(request)
            number = len(self._requests)
            self._arrived.notify_all()
            if self._queue:
                return number, self._queue.popleft()
            return number, self._responder

    def _handler_started(self) -> None:
        with self._lock:
            self._handlers.add(threading.current_thread())

    def _handler_finished(self) -> None:
        with self._lock:
            self._handlers.discard(threading.current_thread())


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    # A bare TCPServer, not http.server.HTTPServer: the latter resolves the host's
    # FQDN at bind time, which can stall for seconds on an offline machine.
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        model: ScriptedModel,
    ) -> None:
        self.model = model
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ScriptedModel/1"
    server: _Server

    def handle(self) -> None:
        model = self.server.model
        model._handler_started()
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass
        finally:
            model._handler_finished()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output quiet

    # -------------------------------------------------------------- routing

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        body = self._read_body()
        if not path.endswith("/responses"):
            self._send_text(404, f"ScriptedModel: no such endpoint: POST {path}")
            return
        request = RecordedRequest(
            path=path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=_parse_json_object(body),
        )
        model = self.server.model
        number, answer = model._record(request)
        if answer is None:
            self._send_text(
                UNSCRIPTED_STATUS, f"ScriptedModel: no reply scripted for request {number}"
            )
            return
        if isinstance(answer, Reply):
            scripted = answer
        else:
            try:
                scripted = answer(request)
                if not isinstance(scripted, Reply):
                    raise TypeError(f"responder returned {type(scripted).__name__}, not a Reply")
            except Exception as error:
                self._send_text(
                    UNSCRIPTED_STATUS,
                    f"ScriptedModel: responder failed for request {number}: "
                    f"{type(error).__name__}: {error}",
                )
                return
        self._stream(scripted)

    def _not_found(self) -> None:
        self._read_body()
        self._send_text(404, f"ScriptedModel: no such endpoint: {self.command} {self.path}")

    do_GET = do_HEAD = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _not_found

    # -------------------------------------------------------------- reading

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            data = self._read_chunked()
        else:
            length = int(self.headers.get("content-length") or 0)
            data = self.rfile.read(length) if length > 0 else b""
        encoding = self.headers.get("content-encoding", "").lower()
        try:
            if encoding == "gzip":
                return gzip.decompress(data)
            if encoding == "deflate":
                return zlib.decompress(data)
        except (OSError, zlib.error, EOFError):
            return data
        return data

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()  # CRLF after each chunk

    # -------------------------------------------------------------- writing

    def _send_text(self, status: int, text: str) -> None:
        payload = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        self.wfile.flush()
        self.close_connection = True

    def _stream(self, reply: Reply) -> None:
        closing = self.server.model._closing
        self.close_connection = True
        if reply.delay > 0 and closing.wait(reply.delay):
            return  # the server is closing: drop the connection
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.flush()
        for frame in reply.sse():
            self._write_chunk(frame)
        if reply.hang:
            while not closing.wait(_POLL_INTERVAL):
                if self._client_gone():
                    return
            return  # closing: drop the connection without ending the stream
        self.wfile.write(b"0\r\n\r\n")  # the last chunk: the stream is complete
        self.wfile.flush()

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _client_gone(self) -> bool:
        """Whether the client closed its end of the connection."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return False
            return not self.connection.recv(1, socket.MSG_PEEK)
        except (OSError, ValueError):
            return True


def _parse_json_object(data: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(data)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
