"""Tests for ``codex_mcp_server.testing``: the scripted server alone, and driving real codex."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from codex_mcp_server.testing import (
    DEFAULT_MODEL,
    RecordedRequest,
    Reply,
    ScriptedModel,
    codex_config,
    codex_env,
    make_codex_home,
    replies,
)

# --------------------------------------------------------------------------- helpers

# Talk to the local server directly, even if the environment configures an HTTP proxy.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _post(url: str, body: Any, timeout: float = 5.0) -> tuple[int, str, str]:
    """POST JSON; return (status, content-type, body text)."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "X-Test": "yes"},
        method="POST",
    )
    try:
        with _opener.open(request, timeout=timeout) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


def _sse_events(text: str) -> list[dict[str, Any]]:
    """Parse an SSE body, checking each frame is exactly ``event: T\\ndata: J``."""
    assert text.endswith("\n\n")
    events = []
    for frame in text[:-2].split("\n\n"):
        event_line, data_line = frame.split("\n")
        assert event_line.startswith("event: ")
        assert data_line.startswith("data: ")
        data = json.loads(data_line[len("data: ") :])
        assert data["type"] == event_line[len("event: ") :]
        events.append(data)
    return events


def _user_message(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": list(parts)}


@pytest.fixture
def model() -> Iterator[ScriptedModel]:
    with ScriptedModel() as scripted:
        yield scripted


# --------------------------------------------------------------------------- replies


def test_message_reply_shape() -> None:
    reply = replies.message("Hi!", reasoning="hmm")
    types = [event["type"] for event in reply.events]
    assert types == [
        "response.created",
        "response.output_item.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert reply.events[1]["item"]["type"] == "reasoning"
    assert reply.events[1]["item"]["summary"] == [{"type": "summary_text", "text": "hmm"}]
    assert reply.events[2]["item"]["content"][0] == {
        "type": "output_text",
        "text": "Hi!",
        "annotations": [],
    }
    completed = reply.events[-1]["response"]
    assert completed["id"] == reply.events[0]["response"]["id"]
    assert completed["usage"] == dict(replies.DEFAULT_USAGE)
    assert not reply.hang
    assert reply.delay == 0


def test_reply_ids_are_unique() -> None:
    first, second = replies.command("a"), replies.command("b")
    assert first.events[0]["response"]["id"] != second.events[0]["response"]["id"]
    call_ids = {r.events[1]["item"]["call_id"] for r in (first, second)}
    assert len(call_ids) == 2
    assert json.loads(first.events[1]["item"]["arguments"]) == {"cmd": "a"}
    explicit = replies.command("ls", call_id="call_x", login=False, workdir="/w")
    item = explicit.events[1]["item"]
    assert item["call_id"] == "call_x"
    assert item["name"] == "exec_command"
    assert json.loads(item["arguments"]) == {"cmd": "ls", "login": False, "workdir": "/w"}


def test_other_builders() -> None:
    assert replies.structured({"a": [1]}).events[1]["item"]["content"][0]["text"] == '{"a": [1]}'
    failed = replies.failure("nope")
    assert [e["type"] for e in failed.events] == ["response.created", "response.failed"]
    assert failed.events[1]["response"]["error"]["message"] == "nope"
    hung = replies.hang()
    assert hung.hang and [e["type"] for e in hung.events] == ["response.created"]
    search = replies.web_search("q", then="found")
    assert search.events[1]["item"]["action"] == {"type": "search", "query": "q"}
    assert search.events[2]["item"]["type"] == "message"
    custom = replies.reply(
        replies.function_call_item("tool", {"x": 1}, "c1", namespace="mcp__srv"),
        usage={"input_tokens": 1},
        delay=0.5,
    )
    assert custom.events[1]["item"]["namespace"] == "mcp__srv"
    assert custom.events[-1]["response"]["usage"] == {"input_tokens": 1}
    assert custom.delay == 0.5
    with pytest.raises(ValueError):
        Reply(events=({"no": "type"},))
    assert Reply(events=[{"type": "x"}]).events == ({"type": "x"},)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- server alone


def test_streams_sse_and_records(model: ScriptedModel) -> None:
    scripted = replies.message("Hi!")
    model.add(scripted)
    assert model.url.startswith("http://127.0.0.1:") and model.url.endswith("/v1")
    body = {"model": "m", "input": [_user_message({"type": "input_text", "text": "hey"})]}
    status, content_type, text = _post(model.url + "/responses", body)
    assert status == 200
    assert content_type == "text/event-stream"
    assert _sse_events(text) == list(scripted.events)
    [request] = model.requests
    assert request.path == "/v1/responses"
    assert request.headers["x-test"] == "yes"
    assert request.body == body
    assert request.last_user_text == "hey"
    assert model.pending == 0


def test_unscripted_and_unknown_paths(model: ScriptedModel) -> None:
    status, _, text = _post(model.url + "/responses", {})
    assert status == 501
    assert text == "ScriptedModel: no reply scripted for request 1"
    status, _, _ = _post(model.url + "/chat/completions", {})
    assert status == 404
    with pytest.raises(urllib.error.HTTPError) as info:
        _opener.open(model.url + "/responses", timeout=5)
    assert info.value.code == 404
    assert len(model.requests) == 1  # only POST .../responses is recorded


def test_queue_then_responder(model: ScriptedModel) -> None:
    model.add(replies.message("queued"))
    model.respond_with(lambda request: replies.message(f"echo: {request.last_user_text}"))
    body = {"input": [_user_message({"type": "input_text", "text": "ping"})]}
    texts = []
    for _ in range(2):
        _, _, text = _post(model.url + "/responses", body)
        texts.append(_sse_events(text)[1]["item"]["content"][0]["text"])
    assert texts == ["queued", "echo: ping"]

    def broken(request: RecordedRequest) -> Reply:
        raise RuntimeError("oops")

    model.respond_with(broken)
    status, _, text = _post(model.url + "/responses", body)
    assert status == 501
    assert "responder failed for request 3: RuntimeError: oops" in text
    model.respond_with(None)
    assert _post(model.url + "/responses", body)[0] == 501


def test_recorded_request_properties() -> None:
    request = RecordedRequest(
        path="/v1/responses",
        headers={},
        body={
            "input": [
                _user_message({"type": "input_text", "text": "first"}),
                {"type": "message", "role": "assistant", "content": []},
                {"type": "function_call_output", "call_id": "a", "output": "out a"},
                {
                    "type": "function_call_output",
                    "call_id": "b",
                    "output": [{"type": "input_text", "text": "out b"}],
                },
                _user_message(
                    {"type": "input_text", "text": "<image>"},
                    {"type": "input_image", "image_url": "data:"},
                    {"type": "input_text", "text": "second"},
                ),
            ]
        },
    )
    assert len(request.input) == 5
    assert request.last_user_text == "second"
    assert request.function_call_outputs == ["out a", "out b"]
    empty = RecordedRequest(path="/responses", headers={}, body={})
    assert (empty.input, empty.last_user_text, empty.function_call_outputs) == ([], "", [])


def test_wait_for_requests(model: ScriptedModel) -> None:
    with pytest.raises(TimeoutError):
        model.wait_for_requests(1, timeout=0.05)
    model.add(replies.message("x"))
    threading.Timer(0.1, _post, (model.url + "/responses", {})).start()
    assert len(model.wait_for_requests(1, timeout=5)) == 1


def test_hang_is_released_by_close() -> None:
    model = ScriptedModel(replies.hang()).start()
    host, port = model.url.removeprefix("http://").removesuffix("/v1").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as client:
        client.sendall(b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        received = b""
        while b"response.created" not in received:
            received += client.recv(4096)
        assert received.startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        model.close()
        assert time.monotonic() - started < 1.0
        # The connection is dropped without the final (zero-length) chunk.
        rest = b""
        while chunk := client.recv(4096):
            rest += chunk
        assert b"0\r\n\r\n" not in rest
    model.close()  # closing twice is fine


def test_delay_is_cut_short_by_close() -> None:
    model = ScriptedModel(replies.message("late", delay=30)).start()
    errors: list[BaseException] = []

    def client() -> None:
        try:
            _post(model.url + "/responses", {}, timeout=10)
        except Exception as error:
            errors.append(error)

    thread = threading.Thread(target=client)
    thread.start()
    model.wait_for_requests(1)
    started = time.monotonic()
    model.close()
    thread.join(5)
    assert time.monotonic() - started < 1.0
    assert errors  # the client saw the connection drop


def test_close_before_start_and_restart() -> None:
    started = ScriptedModel().start()
    url = started.url
    started.close()
    assert started.url == url  # still readable after close
    with pytest.raises(TimeoutError, match="closed"):
        started.wait_for_requests(1)
    model = ScriptedModel()
    model.close()
    with pytest.raises(RuntimeError):
        model.start()
    with pytest.raises(RuntimeError):
        _ = ScriptedModel().url


# --------------------------------------------------------------------------- home


def test_make_codex_home(tmp_path: Path) -> None:
    home = make_codex_home(tmp_path / "a" / "home", "http://127.0.0.1:1/v1", model="other")
    assert home == (tmp_path / "a" / "home").absolute()
    config = codex_config("http://127.0.0.1:1/v1", model="other")
    assert (home / "config.toml").read_text() == tomli_w.dumps(config)
    assert config["model"] == "other"
    assert config["model_provider"] == "scripted"
    provider = config["model_providers"]["scripted"]
    assert provider["base_url"] == "http://127.0.0.1:1/v1"
    assert provider["wire_api"] == "responses"
    assert provider["supports_websockets"] is False
    assert provider["request_max_retries"] == provider["stream_max_retries"] == 0
    extra = codex_config("u", extra={"features": {"x": True}, "mcp_servers": {"s": {"a": 1}}})
    assert extra["features"] == {"plugins": False, "unbounded_connection_retries": False, "x": True}
    assert extra["mcp_servers"] == {"s": {"a": 1}}


def test_codex_env(tmp_path: Path) -> None:
    base = {"PATH": "/bin", "OPENAI_API_KEY": "sk", "CODEX_API_KEY": "ck", "CODEX_HOME": "/x"}
    env = codex_env(tmp_path, base)
    loopback = "127.0.0.1,localhost,::1"
    assert env == {
        "PATH": "/bin",
        "CODEX_HOME": str(tmp_path.absolute()),
        "HOME": str(tmp_path.absolute() / "user-home"),
        "NO_PROXY": loopback,
        "no_proxy": loopback,
    }
    assert (tmp_path / "user-home").is_dir()
    assert "HOME" not in codex_env(tmp_path, base, isolate_shell=False)
    proxied = codex_env(tmp_path, {"NO_PROXY": "corp.example, localhost", "no_proxy": "x"})
    assert proxied["NO_PROXY"] == proxied["no_proxy"] == "corp.example,localhost,x,127.0.0.1,::1"
    assert base["OPENAI_API_KEY"] == "sk"  # not modified
    assert codex_env(tmp_path)["CODEX_HOME"] == str(tmp_path.absolute())
    assert "OPENAI_API_KEY" not in codex_env(tmp_path, {**os.environ, "OPENAI_API_KEY": "k"})


# --------------------------------------------------------------------------- real codex

TIMEOUT = 60


@pytest.fixture(scope="session")
def codex_binary() -> str:
    # The dev extra pins the wheel; without it these tests must fail, not skip.
    import codex_cli_bin

    return str(codex_cli_bin.bundled_codex_path())


class Codex:
    """Runs ``codex exec --json`` against a scripted model in an isolated home."""

    def __init__(self, binary: str, model: ScriptedModel, tmp_path: Path) -> None:
        self.binary = binary
        self.model = model
        self.home = make_codex_home(tmp_path / "codex-home", model.url)
        self.workdir = tmp_path / "work"
        self.workdir.mkdir()

    def args(self, *extra: str) -> list[str]:
        return [
            self.binary,
            "exec",
            "--json",
            "--skip-git-repo-check",
            "--cd",
            str(self.workdir),
            *extra,
        ]

    def spawn(self, prompt: str, *extra: str) -> subprocess.Popen[str]:
        """Start codex in the background, its prompt on stdin (from a file)."""
        prompt_file = self.workdir.parent / "prompt.txt"
        prompt_file.write_text(prompt)
        with prompt_file.open() as stdin:
            return subprocess.Popen(
                [*self.args(*extra), "-"],
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=codex_env(self.home),
                # npm's codex is a node launcher with the binary as its child: a kill must
                # reach the whole group, as the SDK's does.
                start_new_session=True,
            )

    def run(self, prompt: str, *extra: str) -> tuple[subprocess.CompletedProcess[str], list[Any]]:
        result = subprocess.run(
            [*self.args(*extra), "-"],
            input=prompt,
            env=codex_env(self.home),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        events = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
        return result, events


@pytest.fixture
def codex(codex_binary: str, model: ScriptedModel, tmp_path: Path) -> Codex:
    return Codex(codex_binary, model, tmp_path)


def _items(events: list[Any], kind: str = "item.completed") -> list[dict[str, Any]]:
    return [event["item"] for event in events if event["type"] == kind]


@pytest.mark.slow
def test_codex_message(codex: Codex, model: ScriptedModel) -> None:
    model.add(replies.message("Hi!"))
    result, events = codex.run("say hi")
    assert result.returncode == 0, result.stderr
    assert [event["type"] for event in events] == [
        "thread.started",
        "turn.started",
        "item.completed",
        "turn.completed",
    ]
    assert events[2]["item"]["type"] == "agent_message"
    assert events[2]["item"]["text"] == "Hi!"
    assert events[3]["usage"] == {
        "input_tokens": 42,
        "cached_input_tokens": 12,
        "cache_write_input_tokens": 0,
        "output_tokens": 5,
        "reasoning_output_tokens": 3,
    }
    [request] = model.requests
    assert request.path == "/v1/responses"
    assert request.body["model"] == DEFAULT_MODEL
    assert request.body["stream"] is True
    assert request.last_user_text == "say hi"
    assert "authorization" not in request.headers
    tool_names = {tool.get("name") for tool in request.body["tools"]}
    assert "exec_command" in tool_names


@pytest.mark.slow
def test_codex_command(codex: Codex, model: ScriptedModel) -> None:
    # login=False: a login shell would load the user's profile, which may print things.
    model.add(replies.command("echo hi", login=False), replies.message("done"))
    result, events = codex.run("run echo hi")
    assert result.returncode == 0, result.stderr
    [started] = _items(events, "item.started")
    assert started["type"] == "command_execution"
    assert started["status"] == "in_progress"
    command, message = _items(events)
    assert command["type"] == "command_execution"
    assert "echo hi" in command["command"]
    assert command["aggregated_output"] == "hi\n"
    assert command["exit_code"] == 0
    assert command["status"] == "completed"
    assert message == {"id": message["id"], "type": "agent_message", "text": "done"}
    first, second = model.requests
    assert first.function_call_outputs == []
    [output] = second.function_call_outputs
    assert "hi" in output
    assert events[-1]["usage"]["input_tokens"] == 84  # summed over both requests


@pytest.mark.slow
def test_codex_reasoning(codex: Codex, model: ScriptedModel) -> None:
    text = 'Grüße 👋 "quoted"\nsecond line'  # survives SSE framing unchanged
    model.add(replies.message(text, reasoning="**Thinking** about it"))
    result, events = codex.run("think")
    assert result.returncode == 0, result.stderr
    reasoning, message = _items(events)
    assert reasoning["type"] == "reasoning"
    assert reasoning["text"] == "**Thinking** about it"
    assert message["text"] == text


@pytest.mark.slow
def test_codex_structured_output(codex: Codex, model: ScriptedModel, tmp_path: Path) -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "integer"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    schema_file = tmp_path / "schema.json"
    schema_file.write_text(json.dumps(schema))
    model.add(replies.structured({"answer": 42}))
    result, events = codex.run("answer", "--output-schema", str(schema_file))
    assert result.returncode == 0, result.stderr
    [message] = _items(events)
    assert json.loads(message["text"]) == {"answer": 42}
    text_format = model.requests[0].body["text"]["format"]
    assert text_format["type"] == "json_schema"
    assert text_format["schema"] == schema


@pytest.mark.slow
def test_codex_web_search(codex: Codex, model: ScriptedModel) -> None:
    # Web search is a hosted tool: codex makes no follow-up request for it.
    model.add(replies.web_search("weather in Paris", then="Sunny."))
    result, events = codex.run("weather?")
    assert result.returncode == 0, result.stderr
    search, message = _items(events)
    assert search["type"] == "web_search"
    assert search["query"] == "weather in Paris"
    assert message["text"] == "Sunny."
    assert len(model.requests) == 1


@pytest.mark.slow
def test_codex_failure(codex: Codex, model: ScriptedModel) -> None:
    model.add(replies.failure("boom"))
    result, events = codex.run("fail")
    assert result.returncode != 0
    assert events[-1]["type"] == "turn.failed"
    assert "boom" in events[-1]["error"]["message"]
    assert len(model.requests) == 1  # no retries


@pytest.mark.slow
def test_codex_empty_queue(codex: Codex, model: ScriptedModel) -> None:
    started = time.monotonic()
    result, events = codex.run("anyone there?")
    assert time.monotonic() - started < 20
    assert result.returncode != 0
    assert events[-1]["type"] == "turn.failed"
    assert "no reply scripted for request 1" in events[-1]["error"]["message"]
    assert len(model.requests) == 1


def _kill(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=TIMEOUT)


@pytest.mark.slow
def test_codex_hang_then_kill(codex: Codex, model: ScriptedModel) -> None:
    model.add(replies.hang())
    process = codex.spawn("hang")
    try:
        model.wait_for_requests(1, timeout=TIMEOUT)
        time.sleep(0.2)
        assert process.poll() is None  # still waiting for the model
    finally:
        _kill(process)
    started = time.monotonic()
    model.close()
    assert time.monotonic() - started < 1.0


@pytest.mark.slow
def test_codex_hang_then_close(codex: Codex, model: ScriptedModel) -> None:
    # Closing the server mid-stream fails the turn (no retries, no reconnect loop).
    model.add(replies.hang())
    process = codex.spawn("hang")
    try:
        model.wait_for_requests(1, timeout=TIMEOUT)
        model.close()
        stdout, _ = process.communicate(timeout=20)
    finally:
        _kill(process)
    events = [json.loads(line) for line in stdout.splitlines()]
    assert process.returncode != 0
    assert events[-1]["type"] == "turn.failed"


@pytest.mark.slow
def test_codex_resume(codex: Codex, model: ScriptedModel) -> None:
    model.add(replies.message("first answer"), replies.message("second answer"))
    result, events = codex.run("first question")
    assert result.returncode == 0, result.stderr
    thread_id = events[0]["thread_id"]
    result, events = codex.run("second question", "resume", thread_id)
    assert result.returncode == 0, result.stderr
    assert events[0] == {"type": "thread.started", "thread_id": thread_id}
    assert _items(events)[-1]["text"] == "second answer"
    second = model.requests[1]
    assert second.last_user_text == "second question"
    assistant_texts = [
        part.get("text")
        for item in second.input
        if item.get("role") == "assistant"
        for part in item.get("content", [])
    ]
    assert "first answer" in assistant_texts
    user_texts = [
        part.get("text")
        for item in second.input
        if item.get("role") == "user"
        for part in item.get("content", [])
    ]
    assert "first question" in user_texts


def _tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1x1, 8-bit RGB
    pixels = zlib.compress(b"\x00\xff\x00\x00")  # filter byte + one red pixel
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


@pytest.mark.slow
def test_codex_image(codex: Codex, model: ScriptedModel, tmp_path: Path) -> None:
    image = tmp_path / "x.png"
    image.write_bytes(_tiny_png())
    model.add(replies.message("a red pixel"))
    result, events = codex.run("what is this?", "--image", str(image))
    assert result.returncode == 0, result.stderr
    assert _items(events)[-1]["text"] == "a red pixel"
    [request] = model.requests
    user_parts = [
        part
        for item in request.input
        if item.get("role") == "user"
        for part in item.get("content", [])
    ]
    images = [part for part in user_parts if part.get("type") == "input_image"]
    assert len(images) == 1
    assert images[0]["image_url"].startswith("data:image/png;base64,")
    assert request.last_user_text == "what is this?"
