"""Builders for the replies a :class:`~codex_mcp_server.testing.ScriptedModel` sends.

Each :class:`Reply` is the complete answer to **one** ``POST /responses`` request: one
HTTP response carrying one Server-Sent-Events stream in the OpenAI Responses API wire
format.  Codex makes one such request per model "step", so a turn in which the model runs
a shell command takes two replies: the ``function_call`` (after which codex runs the
command and POSTs again with its output) and then the final assistant message::

    from codex_mcp_server.testing import replies

    model.add(replies.command("echo hi"), replies.message("done"))

Every stream built here starts with ``response.created`` and ends with
``response.completed`` (carrying token ``usage``), except :func:`failure` (which ends with
``response.failed``) and :func:`hang` (which never ends).  Response ids are unique per
built reply (``resp_1``, ``resp_2``, ...), as are generated item and call ids.

The high-level builders cover the common cases:

* :func:`message` -- an assistant message, optionally preceded by a reasoning summary;
* :func:`structured` -- an assistant message whose text is JSON (for ``--output-schema``);
* :func:`command` -- an ``exec_command`` tool call (codex runs the command);
* :func:`web_search` -- a server-side ``web_search_call`` item;
* :func:`review` -- the answer to a code review request (its findings, from :func:`finding`);
* :func:`failure` -- a ``response.failed`` stream, which fails the turn;
* :func:`hang` -- a stream that starts and then stalls until the server is closed.

For anything else, :func:`reply` assembles a stream from output items built with
:func:`assistant_item`, :func:`reasoning_item`, :func:`function_call_item`,
:func:`web_search_item` or plain dicts in the Responses API item format.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_USAGE",
    "Reply",
    "assistant_item",
    "command",
    "failure",
    "finding",
    "function_call_item",
    "hang",
    "message",
    "patch",
    "reasoning_item",
    "reply",
    "review",
    "streamed_message",
    "structured",
    "web_search",
    "web_search_item",
]

DEFAULT_USAGE: Mapping[str, Any] = {
    "input_tokens": 42,
    "input_tokens_details": {"cached_tokens": 12},
    "output_tokens": 5,
    "output_tokens_details": {"reasoning_tokens": 3},
    "total_tokens": 47,
}
"""The token usage reported by ``response.completed`` unless a builder is given another.

Codex reports it in ``turn.completed`` as ``input_tokens=42, cached_input_tokens=12,
output_tokens=5, reasoning_output_tokens=3`` (summed over all requests of the thread).
"""

_counter = itertools.count(1)
_counter_lock = threading.Lock()


def _next_id(prefix: str) -> str:
    with _counter_lock:
        return f"{prefix}_{next(_counter)}"


@dataclass(frozen=True)
class Reply:
    """One scripted HTTP response: the SSE events to stream, in order.

    Build replies with the functions of this module rather than by hand.

    Attributes:
        events: The Responses API stream events.  Each is a JSON object whose ``"type"``
            is also used as the SSE ``event:`` name, e.g.
            ``{"type": "response.completed", "response": {...}}``.
        hang: If true, the server sends ``events`` and then keeps the connection open
            without finishing the stream, until the server is closed or the client
            disconnects.
        delay: Seconds the server waits before it starts the response, to keep a turn
            "in flight" for a while.  Closing the server cuts the wait short.
    """

    events: tuple[dict[str, Any], ...]
    hang: bool = False
    delay: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "events", tuple(self.events))  # accept any sequence
        for event in self.events:
            if not isinstance(event.get("type"), str):
                raise ValueError(f"every event needs a string 'type': {event!r}")
        if self.delay < 0:
            raise ValueError("delay must be >= 0")

    def sse(self) -> Iterator[bytes]:
        """Yield each event framed as ``event: <type>\\ndata: <json>\\n\\n`` (UTF-8)."""
        for event in self.events:
            data = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
            yield f"event: {event['type']}\ndata: {data}\n\n".encode()


# --------------------------------------------------------------------------- items


def assistant_item(text: str, *, item_id: str | None = None) -> dict[str, Any]:
    """An assistant ``message`` output item with one ``output_text`` part.

    Codex reports it as an ``agent_message`` item whose ``text`` is ``text``.
    """
    return {
        "type": "message",
        "role": "assistant",
        "id": item_id or _next_id("msg"),
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def reasoning_item(text: str, *, item_id: str | None = None) -> dict[str, Any]:
    """A ``reasoning`` output item whose summary is ``text``.

    Codex reports it as a ``reasoning`` item (only when ``text`` is non-empty).
    """
    return {
        "type": "reasoning",
        "id": item_id or _next_id("rs"),
        "summary": [{"type": "summary_text", "text": text}],
    }


def function_call_item(
    name: str,
    arguments: Mapping[str, Any],
    call_id: str | None = None,
    *,
    namespace: str | None = None,
) -> dict[str, Any]:
    """A ``function_call`` output item: the model calls tool ``name`` with ``arguments``.

    ``call_id`` is generated when omitted.  Codex executes the tool and sends its result
    back in the next request as a ``function_call_output`` item with the same
    ``call_id``, so script a follow-up reply.  For a tool of an MCP server configured in
    codex, pass ``namespace="mcp__<server>"`` and the tool's name.
    """
    item: dict[str, Any] = {
        "type": "function_call",
        "id": _next_id("fc"),
        "call_id": call_id or _next_id("call"),
        "name": name,
        "arguments": json.dumps(dict(arguments)),
        "status": "completed",
    }
    if namespace is not None:
        item["namespace"] = namespace
    return item


def web_search_item(query: str, *, item_id: str | None = None) -> dict[str, Any]:
    """A completed ``web_search_call`` output item (a search the server already ran).

    Codex reports it as a ``web_search`` item with this ``query``.
    """
    return {
        "type": "web_search_call",
        "id": item_id or _next_id("ws"),
        "status": "completed",
        "action": {"type": "search", "query": query},
    }


# --------------------------------------------------------------------------- replies


def _created(response_id: str) -> dict[str, Any]:
    return {
        "type": "response.created",
        "response": {"id": response_id, "object": "response", "status": "in_progress"},
    }


def _completed(response_id: str, usage: Mapping[str, Any] | None) -> dict[str, Any]:
    return {
        "type": "response.completed",
        "response": {
            "id": response_id,
            "object": "response",
            "status": "completed",
            "usage": copy.deepcopy(dict(DEFAULT_USAGE if usage is None else usage)),
        },
    }


def reply(
    *output_items: Mapping[str, Any],
    usage: Mapping[str, Any] | None = None,
    delay: float = 0.0,
) -> Reply:
    """A complete response stream with the given output items, in order.

    The stream is ``response.created``, one ``response.output_item.done`` per item, and
    ``response.completed`` with ``usage`` (default :data:`DEFAULT_USAGE`).  This is the
    escape hatch for shapes the other builders do not cover; items are plain dicts in
    the Responses API output item format.
    """
    response_id = _next_id("resp")
    events = [_created(response_id)]
    events.extend(
        {
            "type": "response.output_item.done",
            "output_index": index,
            "item": copy.deepcopy(dict(item)),
        }
        for index, item in enumerate(output_items)
    )
    events.append(_completed(response_id, usage))
    return Reply(events=tuple(events), delay=delay)


def message(
    text: str,
    *,
    reasoning: str | None = None,
    usage: Mapping[str, Any] | None = None,
    delay: float = 0.0,
) -> Reply:
    """The model answers ``text`` (and ends the turn).

    With ``reasoning``, a reasoning summary item precedes the message, which codex
    reports as a ``reasoning`` item before the ``agent_message``.
    """
    items: list[dict[str, Any]] = []
    if reasoning is not None:
        items.append(reasoning_item(reasoning))
    items.append(assistant_item(text))
    return reply(*items, usage=usage, delay=delay)


def streamed_message(
    parts: list[str], *, usage: Mapping[str, Any] | None = None, delay: float = 0.0
) -> Reply:
    """The model answers ``"".join(parts)``, streaming each part as a text delta
    (``response.output_text.delta``) as a real model does; codex passes them on as
    ``item/agentMessage/delta`` on app-server (``codex exec`` shows only the whole message)."""
    item = assistant_item("".join(parts))
    response_id = _next_id("resp")
    started = {**item, "status": "in_progress", "content": []}
    events: list[dict[str, Any]] = [
        _created(response_id),
        {"type": "response.output_item.added", "output_index": 0, "item": started},
    ]
    events.extend(
        {
            "type": "response.output_text.delta",
            "item_id": item["id"],
            "output_index": 0,
            "content_index": 0,
            "delta": part,
        }
        for part in parts
    )
    events.append({"type": "response.output_item.done", "output_index": 0, "item": item})
    events.append(_completed(response_id, usage))
    return Reply(events=tuple(events), delay=delay)


def structured(obj: Any, *, usage: Mapping[str, Any] | None = None, delay: float = 0.0) -> Reply:
    """The model answers with ``json.dumps(obj)``, as for a turn with an output schema.

    The server does not check ``obj`` against the schema in the request.
    """
    return message(json.dumps(obj), usage=usage, delay=delay)


def finding(
    title: str,
    body: str,
    path: str,
    lines: tuple[int, int] = (1, 1),
    *,
    priority: int = 1,
    confidence: float = 0.8,
) -> dict[str, Any]:
    """One finding of a :func:`review`: a problem at ``lines`` of the file at ``path``
    (absolute, as codex's review prompt asks)."""
    return {
        "title": title,
        "body": body,
        "confidence_score": confidence,
        "priority": priority,
        "code_location": {
            "absolute_file_path": path,
            "line_range": {"start": lines[0], "end": lines[1]},
        },
    }


def review(
    explanation: str,
    findings: tuple[Mapping[str, Any], ...] = (),
    *,
    correctness: str = "patch is correct",
    confidence: float = 0.8,
    delay: float = 0.0,
) -> Reply:
    """The model's answer to a code review (``review/start``): the JSON codex's review prompt
    asks for. Codex turns it into the review text (the explanation, then each finding with
    its file and lines) that ends the review turn."""
    output = {
        "findings": [dict(f) for f in findings],
        "overall_correctness": correctness,
        "overall_explanation": explanation,
        "overall_confidence_score": confidence,
    }
    return message(json.dumps(output), delay=delay)


def command(
    cmd: str,
    *,
    call_id: str | None = None,
    login: bool | None = None,
    workdir: str | None = None,
    escalate: str | None = None,
    usage: Mapping[str, Any] | None = None,
    delay: float = 0.0,
) -> Reply:
    """The model asks codex to run the shell command ``cmd`` via its ``exec_command`` tool.

    Codex runs the command (reporting a ``command_execution`` item whose ``command`` is
    e.g. ``/bin/bash -lc 'echo hi'``) and then POSTs again with a
    ``function_call_output`` item holding the command's output, so follow this reply
    with another one, typically :func:`message`.

    The tool arguments are ``{"cmd": cmd}``, plus ``login`` and ``workdir`` when given.
    By default codex runs a login shell, which loads the user's shell profile; anything
    the profile prints ends up in the command's output.  ``login=False`` runs
    ``bash -c`` instead, for exactly reproducible output.  ``workdir`` is the
    directory to run in (default: the turn's working directory).

    ``escalate`` asks to run the command outside the sandbox, with this justification
    (``"sandbox_permissions": "require_escalated"``): under the approval policy
    ``on-request`` codex asks its client first (``item/commandExecution/requestApproval`` on
    app-server, whose ``reason`` is the justification); under ``never`` it refuses.
    """
    arguments: dict[str, Any] = {"cmd": cmd}
    if escalate is not None:
        arguments["sandbox_permissions"] = "require_escalated"
        arguments["justification"] = escalate
    if login is not None:
        arguments["login"] = login
    if workdir is not None:
        arguments["workdir"] = workdir
    return reply(function_call_item("exec_command", arguments, call_id), usage=usage, delay=delay)


def patch(
    text: str,
    *,
    call_id: str | None = None,
    usage: Mapping[str, Any] | None = None,
    delay: float = 0.0,
) -> Reply:
    """The model edits files with codex's ``apply_patch`` tool (a freeform tool: ``text`` is
    the patch, ``*** Begin Patch`` ... ``*** End Patch``).

    Codex applies it (a ``file_change`` item) and POSTs again with the tool's output, so
    follow this reply with another one. Where the sandbox forbids the write (``read-only``)
    under the approval policy ``on-request``, codex asks its client first
    (``item/fileChange/requestApproval`` on app-server).
    """
    item = {
        "type": "custom_tool_call",
        "id": _next_id("ctc"),
        "call_id": call_id or _next_id("call"),
        "name": "apply_patch",
        "input": text,
        "status": "completed",
    }
    return reply(item, usage=usage, delay=delay)


def web_search(
    query: str,
    *,
    then: str | None = None,
    usage: Mapping[str, Any] | None = None,
    delay: float = 0.0,
) -> Reply:
    """The model ran a (server-side) web search for ``query``.

    Codex reports a ``web_search`` item.  Web search is a hosted tool, so codex does not
    send another request for it: unless ``then`` is given, the turn ends without an
    agent message.  With ``then``, an assistant message with that text follows the
    search in the same response.
    """
    items = [web_search_item(query)]
    if then is not None:
        items.append(assistant_item(then))
    return reply(*items, usage=usage, delay=delay)


def failure(
    message: str = "boom",
    *,
    code: str = "server_error",
    delay: float = 0.0,
) -> Reply:
    """The response fails (``response.failed`` with ``error{code, message}``).

    Codex fails the turn: it emits an ``error`` event and ``turn.failed`` whose message
    contains ``message``, and ``codex exec`` exits with status 1.
    """
    response_id = _next_id("resp")
    events = (
        _created(response_id),
        {
            "type": "response.failed",
            "response": {
                "id": response_id,
                "object": "response",
                "status": "failed",
                "error": {"code": code, "message": message},
            },
        },
    )
    return Reply(events=events, delay=delay)


def hang(*, delay: float = 0.0) -> Reply:
    """The response starts (``response.created``) and then stalls.

    The server keeps the connection open without sending anything else until
    :meth:`ScriptedModel.close` is called or the client disconnects.  Use it to test
    cancellation and timeouts while a turn is in flight.
    """
    response_id = _next_id("resp")
    return Reply(events=(_created(response_id),), hang=True, delay=delay)
