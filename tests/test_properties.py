"""Hostile arguments for every tool, property-based, against a fake codex.

Whatever a client sends, the server must answer with a clear error (``isError`` and a message
that names the field or the problem) or a legitimate result, stay up (a ``list_threads``
afterwards works) and leave no codex process behind.

The server runs in process (one per test function, shared by the examples) with a fake codex,
a shell script that prints a minimal turn, so hundreds of calls stay fast and offline. The
in-memory client sends what a JSON transport would (it dumps arguments in JSON mode, so NaN
arrives as null); what only raw JSON can carry (NaN literals, lone surrogates, nesting deeper
than the transports parse) is sent over stdio to a server subprocess at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.types import CallToolResult

from codex_mcp_server.server import Settings, build_server

from .procs import describe, wait_until_gone
from .server_support import text

# ------------------------------------------------------------------------ the fake codex

FAKE_CODEX = r"""#!/bin/sh
# Stands in for `codex exec --experimental-json`: reads the prompt, prints a minimal turn.
# With FAKE_CODEX_ARGS set (a directory), records its arguments there, NUL-separated.
if [ -n "$FAKE_CODEX_ARGS" ]; then
  printf '%s\0' "$@" > "$(mktemp "$FAKE_CODEX_ARGS/run.XXXXXX")"
fi
cat > /dev/null
thread=
take=
for arg in "$@"; do
  if [ -n "$take" ]; then
    case "$arg" in -*) ;; *) thread=$arg ;; esac
    take=
  fi
  [ "x$arg" = xresume ] && take=1
done
case "$thread" in
  '' | *[!A-Za-z0-9_-]*) thread=$(cat /proc/sys/kernel/random/uuid 2>/dev/null || echo "t$$") ;;
esac
printf '{"type":"thread.started","thread_id":"%s"}\n' "$thread"
printf '{"type":"turn.started"}\n'
printf '{"type":"item.completed","item":{"id":"item_0","type":"agent_message","text":"ok"}}\n'
printf '{"type":"turn.completed","usage":{"input_tokens":1,"cached_input_tokens":0,'
printf '"output_tokens":1,"reasoning_output_tokens":0}}\n'
"""

SESSION_ID = "0199a000-0000-7000-8000-00000000c0de"
"""A thread id with a (fake) rollout under ``$CODEX_HOME/sessions``, so resume_thread finds it."""


def write_fake_codex(directory: Path) -> Path:
    path = directory / "fake-codex"
    path.write_text(FAKE_CODEX, encoding="utf-8")
    path.chmod(0o755)
    return path


def add_session(home: Path, thread_id: str) -> None:
    """A rollout file for ``thread_id``, which is all resume_thread looks for."""
    sessions = home / "sessions" / "2025" / "01" / "01"
    sessions.mkdir(parents=True, exist_ok=True)
    (sessions / f"rollout-2025-01-01T00-00-00-{thread_id}.jsonl").write_text("{}\n")


@dataclass(frozen=True)
class Layout:
    """The allowed root, with traps inside, and a directory outside it."""

    root: Path
    outside: Path
    home: Path
    codex: Path


def make_layout(tmp_path: Path, root: Path) -> Layout:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (root / "sub").mkdir()
    (root / "file.txt").write_text("not a directory\n")
    (root / "shot.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (root / "escape").symlink_to(outside)
    (root / "dangling").symlink_to(outside / "missing")
    (root / "loop").symlink_to(root / "loop")
    (root / "inner").symlink_to(root / "sub")
    home = tmp_path / "codex-home"
    add_session(home, SESSION_ID)
    return Layout(root, outside, home, write_fake_codex(tmp_path))


@pytest.fixture
def layout(tmp_path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Layout:
    made = make_layout(tmp_path, workdir)
    # The server looks sessions up in its own environment and passes it on to codex, which
    # is how the leftover check recognises the fake's processes.
    monkeypatch.setenv("CODEX_HOME", str(made.home))
    monkeypatch.delenv("FAKE_CODEX_ARGS", raising=False)
    return made


@dataclass
class Server:
    client: Client
    seeded: str
    """A thread the server knows (with a rollout, so it can be resumed too)."""
    layout: Layout


@pytest.fixture
async def server(layout: Layout) -> AsyncIterator[Server]:
    settings = Settings(
        cwd=layout.root,
        allowed_roots=(layout.root,),
        codex_path=str(layout.codex),
        backend="exec",  # The fake codex speaks exec's JSONL.
        tool_set="all",
        heartbeat_interval=30.0,
        idle_timeout=20.0,
    )
    async with Client(build_server(settings)) as client:
        seed = await client.call_tool("start_thread", {"prompt": "seed"})
        assert not seed.is_error, text(seed)
        assert seed.structured_content is not None
        seeded = seed.structured_content["thread_id"]
        add_session(layout.home, seeded)
        yield Server(client, seeded, layout)


# ------------------------------------------------------------------- hostile values


@dataclass(frozen=True)
class Huge:
    """A string of ``size`` characters, built only when sent, so failures print short."""

    unit: str
    size: int

    def build(self) -> str:
        return (self.unit * (self.size // len(self.unit) + 1))[: self.size]


@dataclass(frozen=True)
class Deep:
    """``depth`` nested objects (or arrays) around ``leaf``, built only when sent."""

    depth: int
    leaf: Any
    kind: str

    def build(self) -> Any:
        value = self.leaf
        for _ in range(self.depth):
            value = {"k": value} if self.kind == "object" else [value]
        return value


SEEDED = "<the seeded thread>"
"""Stands for the id of the thread the fixture started; replaced when sent."""


def materialize(value: Any, seeded: str) -> Any:
    if isinstance(value, (Huge, Deep)):
        return value.build()
    if value == SEEDED:
        return seeded
    if isinstance(value, Mapping):
        return {materialize(k, seeded): materialize(v, seeded) for k, v in value.items()}
    if isinstance(value, list):
        return [materialize(v, seeded) for v in value]
    return value


# Lone surrogates are left out here: the JSON parser of every transport refuses them before
# the server sees the message (see test_raw_json_over_stdio).
TEXT = st.text(st.characters(codec="utf-8"), max_size=30)
ODD_TEXT = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "a\x00b",
        "\n",
        "line\r\nline",
        "\t",
        "\u202eevil.exe\u202c",  # right-to-left override
        "שלום עולם",
        "مرحبا بالعالم",
        "👩\u200d💻🔥😀",
        "e\u0301",
        "\ufeffbom",
        "\uffff",
        "𝕏𝔂𝔃",
        "--help",
        "-c",
        "--dangerously-bypass-approvals-and-sandbox",
        '--config=sandbox_mode="danger-full-access"',
        "$(touch /tmp/pwned)",
        "`id`",
        "'; rm -rf ~ #",
        "%s%n%x",
        "resume",
        "null",
        "{}",
    ]
)
HUGE = st.one_of(
    st.builds(
        Huge,
        st.sampled_from(["a", "é", "😀", "\x00", " "]),
        st.sampled_from([4_097, 140_000, 1_000_000]),
    ),
    # Paths of many components stay shorter: resolving one costs time quadratic in its
    # length, which a test of its own covers (test_a_long_path_does_not_stall_the_server).
    st.builds(Huge, st.sampled_from(["../", "a/"]), st.sampled_from([4_097, 60_000])),
)
STRINGS = st.one_of(TEXT, ODD_TEXT, HUGE)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63, max_value=2**70),
    st.floats(),  # NaN and infinities arrive as null through a JSON dump
    TEXT,
    ODD_TEXT,
)
KEYS = st.one_of(TEXT, ODD_TEXT, st.sampled_from(["a.b", "a=b", "a b", '"', "[x]", "model"]))
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=10,
)
# The transports' JSON parser stops at about 250 levels, the message envelope included.
DEEP = st.builds(
    Deep,
    st.integers(min_value=1, max_value=200),
    st.sampled_from([None, 1, "x", [], {}, 1.5]),
    st.sampled_from(["object", "array"]),
)
ANYTHING = st.one_of(JSON, STRINGS, DEEP)

PATHS = st.one_of(
    st.sampled_from(
        [
            ".",
            "./",
            "sub",
            "inner",
            "../work/sub",
            "sub/../..",
            "../outside",
            "../../etc",
            "../../../../../../../../etc/passwd",
            "escape",
            "escape/secret.png",
            "escape/..",
            "dangling",
            "loop",
            "file.txt",
            "shot.png",
            "/",
            "/etc",
            "/etc/passwd",
            "/tmp",
            "/proc/self/root",
            "/dev/null",
            "~",
            "~root",
            "~/.ssh",
            "a\x00b",
            "sub\x00/../../etc",
            "a" * 300,
            "sub/" + "b" * 256,
            "x/" * 3000,
            "//sub",
            "\u202ebus",
            "données/😀",
            "-rf",
            "--help",
        ]
    ),
    STRINGS,
)
PATH_LISTS = st.one_of(st.lists(PATHS, max_size=3), ANYTHING)

SCHEMAS = st.one_of(
    st.sampled_from(
        [
            {"type": "object"},
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            {"type": "array"},
            {"type": ["object"]},
            {"type": "object", "properties": "not an object"},
            {"type": "object", "$ref": "file:///etc/passwd"},
            {},
            [],
            "object",
            True,
        ]
    ),
    st.builds(lambda extra: {"type": "object", **extra}, st.dictionaries(KEYS, JSON, max_size=3)),
    st.builds(lambda deep: {"type": "object", "properties": deep}, DEEP),
    ANYTHING,
)
CONFIGS = st.one_of(
    st.sampled_from(
        [
            {},
            {"model_verbosity": "low"},
            {"model": None},
            {"a": {"b": None}},
            {"a": [1, None]},
            {"": 1},
            {"a": {"": 1}},
            {"a\x00b": 1},
            {"k": "v\x00"},
            {"a.b": {"c=d": 1}},
            {"sandbox_mode": "danger-full-access"},
            {"a": float("nan")},
            {"a": [[["x"]]]},
            {"a": {}},
        ]
    ),
    st.dictionaries(KEYS, JSON, max_size=4),
    st.dictionaries(st.one_of(KEYS, HUGE), st.one_of(JSON, HUGE, DEEP), max_size=2),
    DEEP,
    ANYTHING,
)
THREAD_IDS = st.one_of(
    st.sampled_from(
        [
            SEEDED,
            SESSION_ID,
            "",
            "nope",
            "../../etc/passwd",
            "-rf",
            "a\x00b",
            "resume",
            "x" * 201,
            SESSION_ID + "\n",
        ]
    ),
    STRINGS,
    ANYTHING,
)


@dataclass(frozen=True)
class Field:
    """What a field may hold: values the server should accept, and values to attack it with."""

    valid: st.SearchStrategy[Any]
    hostile: st.SearchStrategy[Any]


def choice(*valid: Any) -> Field:
    """An enum: its values (or null); near misses and anything at all."""
    near = [v.upper() for v in valid if isinstance(v, str)] + ["", "everything", "none", "all"]
    return Field(st.sampled_from([*valid, None]), st.one_of(st.sampled_from(near), ANYTHING))


NON_EMPTY = st.one_of(
    st.just("do it"),
    TEXT.filter(bool),
    ODD_TEXT.filter(bool),
    HUGE.filter(lambda huge: "\x00" not in huge.unit),
)
PROMPT = Field(NON_EMPTY, st.one_of(st.sampled_from(["", None]), ANYTHING))
PRINTABLE = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1, max_size=30
)
TEXT_OPTION = Field(
    st.one_of(st.none(), st.sampled_from(["gpt-5.5", "o3", "default"]), PRINTABLE),
    st.one_of(ODD_TEXT, HUGE, ANYTHING),
)
FLAG = Field(st.one_of(st.none(), st.booleans()), ANYTHING)
INSIDE_DIRS = st.sampled_from([".", "sub", "inner", "../work/sub", "sub/..", "./sub/"])
INSIDE_IMAGES = st.sampled_from(["shot.png", "./shot.png", "inner/../shot.png", "../work/shot.png"])
THREAD_ID = Field(st.sampled_from([SEEDED, SESSION_ID]), THREAD_IDS)

THREAD_OPTIONS: dict[str, Field] = {
    "working_directory": Field(st.one_of(st.none(), INSIDE_DIRS), PATHS),
    "model": TEXT_OPTION,
    "profile": TEXT_OPTION,
    "sandbox_mode": choice("read-only", "workspace-write"),
    "approval_policy": choice("never", "on-request", "on-failure", "untrusted"),
    "reasoning_effort": choice("minimal", "low", "medium", "high", "xhigh"),
    "network_access": FLAG,
    "web_search": choice("disabled", "cached", "live"),
    "skip_git_repo_check": Field(st.booleans(), ANYTHING),
    "additional_directories": Field(
        st.one_of(st.none(), st.lists(INSIDE_DIRS, max_size=2)), PATH_LISTS
    ),
    "config": Field(
        st.one_of(
            st.none(),
            st.dictionaries(
                st.from_regex(r"[a-z_]{1,12}", fullmatch=True),
                st.one_of(st.booleans(), st.integers(), TEXT, st.lists(st.integers(), max_size=2)),
                max_size=3,
            ),
        ),
        CONFIGS,
    ),
}
TURN_OPTIONS: dict[str, Field] = {
    "images": Field(st.one_of(st.none(), st.lists(INSIDE_IMAGES, max_size=2)), PATH_LISTS),
    "output_schema": Field(
        st.sampled_from(
            [None, {"type": "object"}, {"type": "object", "properties": {"a": {"type": "string"}}}]
        ),
        SCHEMAS,
    ),
    "background": Field(st.booleans(), ANYTHING),
}
UNKNOWN_KEYS = st.dictionaries(
    st.sampled_from(["unknown_option", "Prompt", "cwd", "threadId", "sandbox", "__proto__", ""]),
    ANYTHING,
    min_size=1,
    max_size=1,
)


@st.composite
def call_arguments(
    draw: st.DrawFn, fields: Mapping[str, Field], required: Iterable[str] = ()
) -> dict[str, Any]:
    """Arguments for one call: valid but for one or two hostile fields (or an unknown key).

    Mostly valid calls get past the schema, so the server's own checks (paths, sandbox,
    config, codex's command line) meet the hostile value.
    """
    required = set(required)
    present = [name for name in fields if draw(st.integers(0, 9)) < (9 if name in required else 3)]
    hostile = set(draw(st.lists(st.sampled_from(list(fields)), max_size=2))) if fields else set()
    arguments: dict[str, Any] = {}
    for name in fields:
        if name in hostile:
            arguments[name] = draw(fields[name].hostile)
        elif name in present:
            arguments[name] = draw(fields[name].valid)
    if draw(st.integers(0, 7)) == 0 or (not fields and draw(st.booleans())):
        arguments.update(draw(UNKNOWN_KEYS))
    return arguments


# --------------------------------------------------------------------------- the property

CLEAR = (
    "invalid arguments",
    "outside",
    "not found",
    "does not exist",
    "not a directory",
    "must be",
    "unknown thread_id",
    "did not run in this server",
    "no codex session",
    "not a valid path",
    "cannot be null",
    "is busy",
    "ceiling",
    "needs threadid",
    "has run no turn",
    "too long",
)


def _short(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) < 400 else f"{shown[:400]}… ({len(shown)} characters)"


def _field_names(arguments: Mapping[str, Any]) -> list[str]:
    return [name.lower() for name in arguments if isinstance(name, str) and len(name) > 2]


def check_answer(tool: str, arguments: dict[str, Any], result: CallToolResult) -> None:
    """A clear error or a legitimate result."""
    message = text(result)
    data = result.structured_content
    where = f"{tool}({_short(arguments)})"
    if result.is_error:
        if data is not None and data.get("status") in ("failed", "interrupted"):
            # A turn that ran and ended badly: a legitimate error result.
            assert isinstance(data.get("error"), str) and data["error"], where
            assert data["error"].splitlines()[0] in message, where
            return
        assert message.strip() != f"Error executing tool {tool}", (
            f"{where} failed inside the server: the error says nothing about why"
        )
        lowered = message.lower()
        hints = [*CLEAR, *_field_names(arguments)]
        assert any(hint in lowered for hint in hints), f"{where}: unclear error {message[:500]!r}"
        return
    assert isinstance(data, dict), where
    if tool in ("start_thread", "run_turn", "wait_turn") or (
        tool == "resume_thread" and arguments.get("prompt")
    ):
        assert isinstance(data["thread_id"], str) and data["thread_id"], where
        assert data["status"] in ("completed", "running"), where
        if data["status"] == "completed":
            assert data["final_response"] == "ok", where
    elif tool == "resume_thread":
        assert data["status"] == "idle", where
    elif tool == "get_thread":
        assert data["thread_id"] == arguments["thread_id"], where
    elif tool == "list_threads":
        assert isinstance(data["threads"], list), where
    elif tool == "interrupt_turn":
        assert data["status"] in ("interrupted", "idle"), where
    else:  # codex, codex-reply
        assert isinstance(data["threadId"], str) and data["threadId"], where
        assert data["content"] == "ok", where


async def exercise(server: Server, tool: str, arguments: dict[str, Any]) -> None:
    """One call; then the server must still answer, and no codex may be left running."""
    sent = materialize(arguments, server.seeded)
    started = time.monotonic()
    with anyio.fail_after(30):
        result = await server.client.call_tool(tool, sent)
    # A blocked event loop delays the timeout too, so measure the wall clock as well.
    elapsed = time.monotonic() - started
    assert elapsed < 10, f"{tool}({_short(arguments)}) took {elapsed:.1f} s"
    check_answer(tool, sent, result)
    with anyio.fail_after(10):
        listed = await server.client.call_tool("list_threads", {})
    assert not listed.is_error, text(listed)
    left = await anyio.to_thread.run_sync(wait_until_gone, server.layout.home, 5.0)
    assert left == [], describe(left)


PROPERTY = settings(
    max_examples=75,
    deadline=None,
    derandomize=True,  # The same examples on every run: CI stays reproducible.
    database=None,
    # No shrinking: each step is a tool call, and the table of known hostile inputs below
    # already names the minimal cases; a failure shows the example as found.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # One server per test, shared by its examples.
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


@PROPERTY
@given(call_arguments({"prompt": PROMPT, **THREAD_OPTIONS, **TURN_OPTIONS}, required=["prompt"]))
async def test_start_thread_survives_anything(server: Server, arguments: dict[str, Any]) -> None:
    await exercise(server, "start_thread", arguments)


@PROPERTY
@given(
    call_arguments(
        {"thread_id": THREAD_ID, "prompt": PROMPT, **TURN_OPTIONS},
        required=["thread_id", "prompt"],
    )
)
async def test_run_turn_survives_anything(server: Server, arguments: dict[str, Any]) -> None:
    await exercise(server, "run_turn", arguments)


@PROPERTY
@given(
    call_arguments(
        {"thread_id": THREAD_ID, "prompt": PROMPT, **THREAD_OPTIONS, **TURN_OPTIONS},
        required=["thread_id"],
    )
)
async def test_resume_thread_survives_anything(server: Server, arguments: dict[str, Any]) -> None:
    await exercise(server, "resume_thread", arguments)


TIMEOUT = Field(
    st.floats(min_value=0, max_value=0.5),
    st.one_of(
        st.floats(min_value=-1e9, max_value=1e9).filter(lambda t: not 0 <= t <= 110),
        st.sampled_from([-0.0, -1, 110.0001, 1e308]),
        ANYTHING,
    ),
)


@PROPERTY
@given(call_arguments({"thread_id": THREAD_ID, "timeout_s": TIMEOUT}, required=["thread_id"]))
async def test_wait_turn_survives_anything(server: Server, arguments: dict[str, Any]) -> None:
    await exercise(server, "wait_turn", arguments)


@PROPERTY
@given(call_arguments({"thread_id": THREAD_ID}, required=["thread_id"]))
async def test_get_thread_survives_anything(server: Server, arguments: dict[str, Any]) -> None:
    await exercise(server, "get_thread", arguments)


@PROPERTY
@given(call_arguments({"thread_id": THREAD_ID}, required=["thread_id"]))
async def test_interrupt_turn_survives_anything(server: Server, arguments: dict[str, Any]) -> None:
    await exercise(server, "interrupt_turn", arguments)


@settings(PROPERTY, max_examples=30)
@given(call_arguments({}))
async def test_list_threads_survives_anything(server: Server, arguments: dict[str, Any]) -> None:
    await exercise(server, "list_threads", arguments)


CODEX_FIELDS: dict[str, Field] = {
    "prompt": PROMPT,
    "model": TEXT_OPTION,
    "profile": TEXT_OPTION,
    "cwd": THREAD_OPTIONS["working_directory"],
    "approval-policy": THREAD_OPTIONS["approval_policy"],
    "sandbox": THREAD_OPTIONS["sandbox_mode"],
    "config": THREAD_OPTIONS["config"],
    "base-instructions": TEXT_OPTION,
    "developer-instructions": TEXT_OPTION,
    "compact-prompt": TEXT_OPTION,
}


@PROPERTY
@given(call_arguments(CODEX_FIELDS, required=["prompt"]))
async def test_codex_tool_survives_anything(server: Server, arguments: dict[str, Any]) -> None:
    await exercise(server, "codex", arguments)


@PROPERTY
@given(
    call_arguments(
        {"prompt": PROMPT, "threadId": THREAD_ID, "conversationId": THREAD_ID},
        required=["prompt", "threadId"],
    )
)
async def test_codex_reply_survives_anything(server: Server, arguments: dict[str, Any]) -> None:
    await exercise(server, "codex-reply", arguments)


# ------------------------------------------------- known hostile inputs, one bug class each
#
# The property tests above search; these pin down, one per class of hostile input and tool,
# inputs that a JSON client can send, so a regression names its cause.

NUL = "a\x00b"
LONG = "d" * 300  # one path component above NAME_MAX (255)
BIG = "x" * 200_000  # above the kernel's 128 KiB limit on one command-line argument
DEEP_1 = Deep(200, 1, "object")


def _start(**options: Any) -> dict[str, Any]:
    return {"prompt": "x", **options}


def _resume(**options: Any) -> dict[str, Any]:
    return {"thread_id": SESSION_ID, **options}


def _run(**options: Any) -> dict[str, Any]:
    return {"thread_id": SEEDED, "prompt": "x", **options}


HOSTILE: list[tuple[str, str, dict[str, Any]]] = [
    ("model-NUL", "start_thread", _start(model=NUL)),
    ("profile-NUL", "start_thread", _start(profile=NUL)),
    ("config-key-NUL", "start_thread", _start(config={NUL: 1})),
    ("nested-config-key-NUL", "start_thread", _start(config={"a": {NUL: 1}})),
    ("model-200KB", "start_thread", _start(model=BIG)),
    ("config-value-200KB", "start_thread", _start(config={"k": BIG})),
    ("working_directory-long-name", "start_thread", _start(working_directory=LONG)),
    ("additional_directories-long-name", "start_thread", _start(additional_directories=[LONG])),
    ("images-long-name", "start_thread", _start(images=[LONG])),
    ("images-path-over-PATH_MAX", "start_thread", _start(images=["a/" * 2_100])),
    ("background-model-NUL", "start_thread", _start(model=NUL, background=True)),
    ("run_turn-images-long-name", "run_turn", _run(images=[LONG])),
    ("resume-model-NUL", "resume_thread", _resume(prompt="x", model=NUL)),
    ("resume-working_directory-long-name", "resume_thread", _resume(working_directory=LONG)),
    ("codex-model-NUL", "codex", {"prompt": "x", "model": NUL}),
    ("codex-developer-instructions-200KB", "codex", {"prompt": "x", "developer-instructions": BIG}),
    ("codex-cwd-long-name", "codex", {"prompt": "x", "cwd": LONG}),
    # These work already; kept as anchors for the classes above.
    ("prompt-NUL", "start_thread", {"prompt": NUL}),
    ("prompt-1MB", "start_thread", {"prompt": "p" * 1_000_000}),
    ("working_directory-NUL", "start_thread", _start(working_directory=NUL)),
    ("images-NUL", "run_turn", _run(images=[NUL])),
    ("config-null-deep", "start_thread", _start(config=Deep(200, None, "object"))),
    ("output_schema-deep", "start_thread", _start(output_schema={"type": "object", "a": DEEP_1})),
    ("base-instructions-NUL", "codex", {"prompt": "x", "base-instructions": NUL}),
]


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [pytest.param(tool, arguments, id=name) for name, tool, arguments in HOSTILE],
)
async def test_known_hostile_inputs(server: Server, tool: str, arguments: dict[str, Any]) -> None:
    await exercise(server, tool, arguments)
    # The thread the hostile call may have touched still works.
    again = await server.client.call_tool("run_turn", {"thread_id": server.seeded, "prompt": "y"})
    check_answer("run_turn", {"thread_id": server.seeded, "prompt": "y"}, again)


async def test_a_crashed_turn_is_not_recorded_as_cancelled_by_the_client(server: Server) -> None:
    """A turn that could not start says so in get_thread, not that the client cancelled it."""
    arguments = {"thread_id": SESSION_ID, "prompt": "x", "model": NUL}
    result = await server.client.call_tool("resume_thread", arguments)
    assert result.is_error
    info = await server.client.call_tool("get_thread", {"thread_id": SESSION_ID})
    if info.is_error:  # Refused before any turn began: nothing to record but Codex's own.
        assert "did not run in this server" in text(info), text(info)
        return
    assert info.structured_content is not None, text(info)
    last = info.structured_content["turns"][-1]
    assert last["error"] != "The turn was cancelled by the client.", last
    assert last["status"] == "failed", last


async def test_json_looking_strings_stay_strings(server: Server) -> None:
    """A prompt or a directory name that happens to parse as JSON is still text.

    (The mcp SDK json-decodes string arguments of fields not typed plain ``str``, which
    covers every ``str | None`` option.)
    """
    root = server.layout.root
    (root / "null").mkdir()
    (root / "[1]").mkdir()
    problems = []
    for prompt in ("null", '["fix a", "then b"]', '{"task": "fix"}'):
        result = await server.client.call_tool(
            "resume_thread", {"thread_id": SESSION_ID, "prompt": prompt}
        )
        data = result.structured_content or {}
        if result.is_error or data.get("status") != "completed":
            problems.append(f"resume_thread prompt {prompt!r}: {text(result)[:200]}")
    for tool, arguments, directory in (
        ("start_thread", {"prompt": "x", "working_directory": "null"}, root / "null"),
        ("start_thread", {"prompt": "x", "working_directory": "[1]"}, root / "[1]"),
        ("codex", {"prompt": "x", "cwd": "null"}, root / "null"),
    ):
        result = await server.client.call_tool(tool, arguments)
        data = result.structured_content or {}
        thread_id = data.get("thread_id") or data.get("threadId")
        if result.is_error or not thread_id:
            problems.append(f"{tool} {arguments}: {text(result)[:200]}")
            continue
        info = await server.client.call_tool("get_thread", {"thread_id": thread_id})
        got = (info.structured_content or {}).get("working_directory")
        if got != str(directory):
            problems.append(f"{tool} {arguments}: ran in {got}, not {directory}")
    assert not problems, "\n".join(problems)


async def test_a_long_path_does_not_stall_the_server(server: Server) -> None:
    """Resolving a path costs time quadratic in its number of components (os.path.realpath
    copies the rest of the path at each one), and it runs on the event loop: every other
    call and progress notification of every client waits meanwhile."""
    lag = 0.0

    async def watch_the_loop() -> None:
        nonlocal lag
        while True:
            before = time.monotonic()
            await anyio.sleep(0.01)
            lag = max(lag, time.monotonic() - before)

    path = "../" * 200_000  # 600 KB; at 4 MB the server stalls for minutes
    async with anyio.create_task_group() as group:
        group.start_soon(watch_the_loop)
        await anyio.sleep(0.05)
        result = await server.client.call_tool(
            "start_thread", {"prompt": "x", "working_directory": path}
        )
        await anyio.sleep(0.05)  # Let the watcher see the gap before it stops.
        group.cancel_scope.cancel()
    assert result.is_error
    assert lag < 0.5, f"a {len(path):,}-character working_directory stalled the server {lag:.1f} s"


# ------------------------------------------------------------- raw JSON over stdio


class RawStdioServer:
    """The server as a subprocess, fed raw lines; stderr goes to a file (never a full pipe)."""

    def __init__(self, layout: Layout, log: Path) -> None:
        command = [
            sys.executable,
            "-m",
            "codex_mcp_server",
            "--cwd",
            str(layout.root),
            "--allowed-root",
            str(layout.root),
            "--codex-path",
            str(layout.codex),
            "--backend",
            "exec",  # The fake codex speaks exec's JSONL.
            "--tool-set",
            "all",
        ]
        env = {**os.environ, "CODEX_HOME": str(layout.home)}
        with log.open("wb") as stderr:
            self.process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=env
            )
        self.answers: dict[Any, dict[str, Any]] = {}

    def send(self, line: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + b"\n")
        self.process.stdin.flush()

    def call(self, request_id: int, tool: str, arguments: bytes) -> None:
        self.send(
            b'{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"%s",'
            b'"arguments":%s}}' % (request_id, tool.encode(), arguments)
        )

    def wait_for(self, *ids: int, timeout: float = 30.0) -> dict[Any, dict[str, Any]]:
        """The responses to ``ids`` (and whatever else came meanwhile), by id."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while not set(ids) <= set(self.answers):
            assert time.monotonic() < deadline, f"no answer to {ids}; got {list(self.answers)}"
            line = self.process.stdout.readline()
            assert line, "the server closed its stdout"
            message = json.loads(line)  # Nothing but protocol on stdout.
            if "id" in message:
                self.answers[message["id"]] = message
        return self.answers

    def close(self) -> int:
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            return self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


@pytest.mark.slow  # Starts the server as a subprocess.
def test_raw_json_over_stdio(layout: Layout, tmp_path: Path) -> None:
    """What only raw JSON can carry: NaN and Infinity, lone surrogates, deep nesting, junk."""
    server = RawStdioServer(layout, tmp_path / "stdio.err")
    try:
        server.send(
            b'{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":'
            b'"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}'
        )
        assert "result" in server.wait_for(0)[0]
        server.send(b'{"jsonrpc":"2.0","method":"notifications/initialized"}')

        deep = b'{"k":' * 5000 + b"1" + b"}" * 5000
        # Lines the transport cannot parse get a JSON-RPC error (id 900's with its id, the
        # others with none: see test_server_stdio), and must not stop the server.
        for junk in (
            b"not json",
            b"{",
            b"[]",
            b"\xff\xfe",
            b'{"jsonrpc":"2.0","id":900,"method":"tools/call","params":{"name":"start_thread",'
            b'"arguments":{"prompt":"x\\ud800"}}}',
            b'{"jsonrpc":"2.0","id":901,"method":"tools/call","params":{"name":"start_thread",'
            b'"arguments":{"prompt":"x","config":' + deep + b"}}}",
            b"x" * 2_000_000,
        ):
            server.send(junk)
        server.call(1, "start_thread", b'{"prompt":"x","config":{"a":NaN}}')
        server.call(2, "start_thread", b'{"prompt":"x","config":{"a":[1,-Infinity]}}')
        server.call(3, "wait_turn", b'{"thread_id":"nope","timeout_s":NaN}')
        server.call(4, "wait_turn", b'{"thread_id":"nope","timeout_s":Infinity}')
        server.call(5, "start_thread", b'{"prompt":"\\ud83d\\ude00 \\u0000 \\u202e"}')
        server.call(6, "start_thread", b'{"prompt":"x","output_schema":{"type":"object","n":NaN}}')
        server.call(7, "codex", b'{"prompt":"x","config":{"n":NaN}}')
        server.call(8, "list_threads", b"{}")
        answers = server.wait_for(*range(1, 9))

        def result(request_id: int) -> dict[str, Any]:
            answer = answers[request_id]
            assert "result" in answer, answer
            outcome: dict[str, Any] = answer["result"]
            return outcome

        for request_id in (1, 2, 7):
            assert result(request_id)["isError"], answers[request_id]
            assert "finite number" in result(request_id)["content"][0]["text"]
        for request_id in (3, 4):
            assert result(request_id)["isError"], answers[request_id]
            assert "timeout_s" in result(request_id)["content"][0]["text"]
        assert not result(5)["isError"], answers[5]
        assert result(5)["structuredContent"]["status"] == "completed"
        # A schema codex cannot read is codex's to refuse; the fake accepts anything.
        assert "isError" in result(6)
        assert result(8)["isError"] is False
        assert answers[900]["error"]["code"] == -32600
        assert answers[None]["error"]["code"] == -32700  # The last junk line's.
    finally:
        returncode = server.close()
    assert returncode == 0, (tmp_path / "stdio.err").read_text(errors="replace")[-3000:]
    left = wait_until_gone(layout.home, timeout=5.0)
    assert left == [], describe(left)
