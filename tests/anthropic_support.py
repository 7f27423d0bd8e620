"""A scripted Anthropic Messages API, for running Claude Code offline as an MCP host.

Claude Code sends ``POST /v1/messages`` for its conversation and for side requests of its own
(titles, summaries, checks). :class:`ScriptedClaude` answers each with what ``decide``
returns for the request body: the conversation's steps are scripted by the test (a tool call,
then a final text), side requests get a short text. Answers are streamed as Server-Sent Events
when the request asks for it, else returned as one JSON message. Every request is recorded.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["ScriptedClaude", "Text", "ToolUse", "tool_results"]


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class ToolUse:
    name: str
    input: dict[str, Any]


Answer = Text | ToolUse
Decide = Callable[[dict[str, Any]], Answer]

_ids = itertools.count(1)


def tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``tool_result`` blocks of the request's last message."""
    messages = body.get("messages") or []
    content = messages[-1].get("content") if messages else None
    if not isinstance(content, list):
        return []
    return [block for block in content if block.get("type") == "tool_result"]


class ScriptedClaude:
    """A loopback Messages API server answering with ``decide(body)``; a context manager."""

    def __init__(self, decide: Decide) -> None:
        self.decide = decide
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> ScriptedClaude:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def answer(self, body: dict[str, Any]) -> Answer:
        with self._lock:
            self.requests.append(body)
        return self.decide(body)


def _message(answer: Answer, model: str) -> dict[str, Any]:
    if isinstance(answer, Text):
        block: dict[str, Any] = {"type": "text", "text": answer.text}
        stop = "end_turn"
    else:
        block = {"type": "tool_use", "id": f"toolu_{next(_ids)}", "name": answer.name}
        block["input"] = answer.input
        stop = "tool_use"
    return {
        "id": f"msg_{next(_ids)}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [block],
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5},
    }


def _events(message: dict[str, Any]) -> Iterator[dict[str, Any]]:
    (block,) = message["content"]
    yield {"type": "message_start", "message": {**message, "content": [], "stop_reason": None}}
    if block["type"] == "text":
        yield {"type": "content_block_start", "index": 0, "content_block": {**block, "text": ""}}
        delta = {"type": "text_delta", "text": block["text"]}
    else:
        yield {"type": "content_block_start", "index": 0, "content_block": {**block, "input": {}}}
        delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
    yield {"type": "content_block_delta", "index": 0, "delta": delta}
    yield {"type": "content_block_stop", "index": 0}
    yield {
        "type": "message_delta",
        "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
        "usage": {"output_tokens": 5},
    }
    yield {"type": "message_stop"}


def _handler(scripted: ScriptedClaude) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                body = {}
            if not self.path.split("?")[0].endswith("/v1/messages") or not isinstance(body, dict):
                self._send(404, "application/json", b'{"type":"error"}')
                return
            message = _message(scripted.answer(body), str(body.get("model", "claude")))
            if not body.get("stream"):
                self._send(200, "application/json", json.dumps(message).encode())
                return
            data = b"".join(
                f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in _events(message)
            )
            self._send(200, "text/event-stream", data)

        def do_GET(self) -> None:
            self._send(404, "application/json", b'{"type":"error"}')

        do_HEAD = do_GET

        def _send(self, status: int, content_type: str, data: bytes) -> None:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
