"""JSONL parsing and the line reader: malformed lines, unknown shapes, lines of any length."""

from __future__ import annotations

import json

import anyio
import pytest

from codex_mcp_server.sdk import CodexParseError, loads_json, parse_event
from codex_mcp_server.sdk.processes import read_lines


@pytest.mark.parametrize(
    "line",
    [
        '{"type":"thread.started","thread_id":"t"}',
        '{"type":"turn.started"}',
        '{"type":"item.completed","item":{"id":"item_0","type":"agent_message","text":"hi"}}',
        '{"type":"item.started","item":{"id":"i","type":"collab_tool_call","tool":"wait"}}',
        '{"type":"error","message":"Reconnecting... 2/5"}',
        '{"type":"turn.failed","error":{"message":"boom"}}',
        '{"type":"some.future.event","extra":[1,2]}',
    ],
)
def test_parse_keeps_every_field(line: str) -> None:
    assert parse_event(line) == json.loads(line)
    assert parse_event(line.encode()) == json.loads(line)


def test_parse_fills_cache_write_tokens_of_older_clis() -> None:
    event = parse_event(
        b'{"type":"turn.completed","usage":{"input_tokens":1,"cached_input_tokens":0,'
        b'"output_tokens":2}}'
    )
    assert event["type"] == "turn.completed"
    assert event["usage"]["cache_write_input_tokens"] == 0


def test_parse_keeps_the_last_of_duplicate_keys() -> None:
    line = '{"type":"item.completed","item":{"id":"item_1","type":"web_search","id":"ws_1"}}'
    event = parse_event(line)
    assert event["type"] == "item.completed"
    assert event["item"]["id"] == "ws_1"


@pytest.mark.parametrize(
    "line",
    [
        "not json",
        '{"type":',
        "[1, 2]",
        '{"no_type": 1}',
        '{"type": 3}',
        '{"type":"item.completed"}',
        '{"type":"item.started","item":"text"}',
        '{"type":"item.completed","item":{"id":"i","text":"no type"}}',
        '{"type":"item.completed","item":{"id":"i","type":"agent_message","text":["x"]}}',
        '{"type":"thread.started"}',
        '{"type":"thread.started","thread_id":7}',
        '{"type":"thread.started","thread_id":{"a":1}}',
        '{"type":"thread.started","thread_id":""}',
        '{"type":"turn.failed","error":"boom"}',
        '{"type":"turn.failed","error":{"message":null}}',
        b"\xff\xfe",
    ],
)
def test_parse_rejects_malformed_lines_quoting_them(line: str | bytes) -> None:
    with pytest.raises(CodexParseError, match="Failed to parse item: ") as info:
        parse_event(line)
    quoted = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
    assert info.value.line == quoted


@pytest.mark.parametrize(
    ("line", "text"),
    [
        (
            b'{"type":"item.completed","item":{"type":"agent_message","text":"a\\ud800b"}}',
            "a\ufffdb",
        ),
        ('{"type":"item.completed","item":{"type":"agent_message","text":"\\udfff"}}', "\ufffd"),
        (b'{"type":"item.completed","item":{"type":"agent_message","text":"\\uDC00"}}', "\ufffd"),
        (
            b'{"type":"item.completed","item":{"type":"agent_message","text":"\xed\xa0\x80!"}}',
            "\ufffd!",
        ),
        ('{"type":"item.completed","item":{"type":"agent_message","text":"\ud800"}}', "\ufffd"),
        # A whole pair is one character, and an escaped backslash is no escape at all.
        (
            b'{"type":"item.completed","item":{"type":"agent_message","text":"\\ud83d\\ude00"}}',
            "\U0001f600",
        ),
        (
            b'{"type":"item.completed","item":{"type":"agent_message","text":"\\\\ud800"}}',
            "\\ud800",
        ),
        ('{"type":"item.completed","item":{"type":"agent_message","text":"\ud55c"}}', "\ud55c"),
    ],
)
def test_lone_surrogates_become_replacement_characters(line: str | bytes, text: str) -> None:
    event = parse_event(line)
    assert event["type"] == "item.completed"
    assert event["item"]["text"] == text  # type: ignore[typeddict-item]
    json.dumps(event, ensure_ascii=False).encode()  # Writable as UTF-8.


def test_loads_json_replaces_lone_surrogates_everywhere() -> None:
    deep = "[" * 500 + '"\\ud800"' + "]" * 500
    nested = loads_json(deep)
    for _ in range(500):
        nested = nested[0]
    assert nested == "\ufffd"
    value = loads_json(b'{"k\\udc00":["\\ud800",{"x":"\\udbff"}],"n":1}')
    assert value == {"k\ufffd": ["\ufffd", {"x": "\ufffd"}], "n": 1}
    assert loads_json('"\\ud800"') == "\ufffd"
    plain = loads_json(b'{"a":"b"}')
    assert plain == {"a": "b"}


def test_a_line_nested_deeper_than_json_allows_is_a_parse_error() -> None:
    line = '{"type":"item.completed","item":' * 5000 + "1" + "}" * 5000
    with pytest.raises(CodexParseError, match="Failed to parse item: "):
        parse_event(line)


def test_parse_error_truncates_huge_lines() -> None:
    line = "x" * 100_000
    with pytest.raises(CodexParseError) as info:
        parse_event(line)
    assert len(str(info.value)) < 700
    assert "(100000 bytes)" in str(info.value)


class _Chunks:
    """A byte stream that returns the given chunks, then end of stream."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = list(chunks)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if not self._chunks:
            raise anyio.EndOfStream
        return self._chunks.pop(0)


async def _collect(chunks: list[bytes]) -> list[bytes]:
    return [bytes(line) async for line in read_lines(_Chunks(chunks))]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("chunks", "lines"),
    [
        ([b"a\nb\n"], [b"a", b"b"]),
        ([b"a", b"b\n", b"c"], [b"ab", b"c"]),
        ([b"a\r\n", b"\n", b"  \n", b"b\r\n"], [b"a\r", b"b\r"]),
        ([b"", b"\n\n"], []),
        ([b"x" * 10 + b"\n" + b"y" * 5, b"y" * 5 + b"\nz"], [b"x" * 10, b"y" * 10, b"z"]),
    ],
)
async def test_line_reader_splits_across_chunks(chunks: list[bytes], lines: list[bytes]) -> None:
    assert await _collect(chunks) == lines


async def test_line_reader_reads_a_line_far_beyond_64_kib() -> None:
    payload = json.dumps(
        {"type": "item.completed", "item": {"type": "reasoning", "text": "x" * 20_000_000}}
    ).encode()
    chunks = [payload[i : i + 262_144] for i in range(0, len(payload), 262_144)]
    chunks[-1] += b"\n" + b'{"type":"turn.started"}\n'
    lines = await _collect(chunks)
    assert len(lines) == 2
    assert parse_event(lines[0])["type"] == "item.completed"
    assert len(lines[0]) == len(payload)
