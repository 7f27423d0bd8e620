"""Security: the allowed roots, the sandbox ceiling, HTTP auth, and secrets kept out of sight.

Policy checks run against a fake codex that records its command line (fast, and it shows
exactly what would reach codex); secrets are checked against the real binary and the scripted
model, over stdio and HTTP subprocesses with ``--log-level DEBUG``.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import CallToolResult
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from codex_mcp_server.sdk import Codex, CodexError
from codex_mcp_server.server import Settings, build_server
from codex_mcp_server.server.http import BearerTokenMiddleware
from codex_mcp_server.server.settings import SANDBOX_MODES, SettingsError, parse_settings
from codex_mcp_server.testing import ScriptedModel, codex_env, replies

from .procs import codex_only, describe, wait_until_gone
from .server_support import serve, structured, text
from .test_properties import SESSION_ID, Layout, make_layout
from .test_server_http import (
    INITIALIZE,
    MCP_HEADERS,
    TOKEN,
    StartServer,
    _connect,
    _http,
    start_server,  # noqa: F401  (fixture)
)

OUTSIDE_MESSAGE = "lies outside the directories this server allows"

# ------------------------------------------------------------------ a recording fake codex


@dataclass
class Recorder:
    """Where the fake codex writes each command line it was started with."""

    directory: Path

    def clear(self) -> None:
        for run in self.directory.iterdir():
            run.unlink()

    def runs(self) -> list[list[str]]:
        files = sorted(self.directory.iterdir(), key=lambda f: f.stat().st_mtime_ns)
        return [f.read_bytes().decode().split("\0")[:-1] for f in files]

    def only_run(self) -> list[str]:
        runs = self.runs()
        assert len(runs) == 1, runs
        return runs[0]


def values_of(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == flag]


@dataclass(frozen=True)
class Traps(Layout):
    """The layout of test_properties, and more symlinks in and out of the root."""

    recorder: Recorder


@pytest.fixture
def traps(tmp_path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Traps:
    base = make_layout(tmp_path, workdir)
    root, outside = base.root, base.outside
    (root / "chain").symlink_to(root / "inner")  # chain → inner → sub: inside
    (root / "rel-escape").symlink_to(Path("..") / "outside")  # relative, out
    (root / "sub" / "deeper-escape").symlink_to(Path("..") / ".." / "outside")
    (root / "up").symlink_to(root.parent)
    (root / "link.png").symlink_to(root / "shot.png")
    (root / "secret-link.png").symlink_to(outside / "secret.png")
    (root / "sub" / "pic.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / f"{root.name}-evil").mkdir()  # shares the root's name as a prefix
    recorded = tmp_path / "runs"
    recorded.mkdir()
    monkeypatch.setenv("CODEX_HOME", str(base.home))
    monkeypatch.setenv("FAKE_CODEX_ARGS", str(recorded))
    return Traps(base.root, base.outside, base.home, base.codex, Recorder(recorded))


def fake_settings(traps: Traps, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        cwd=traps.root,
        allowed_roots=(traps.root,),
        codex_path=str(traps.codex),
        backend="exec",  # The fake records exec's command line.
        tool_set="all",
        heartbeat_interval=30.0,
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def client(traps: Traps) -> AsyncIterator[Client]:
    async with Client(build_server(fake_settings(traps))) as connected:
        yield connected


# ---------------------------------------------------------------------- allowed roots


@dataclass(frozen=True)
class Inside:
    """Allowed, and codex gets this path (relative to the root; "" is the root itself)."""

    relative: str


@dataclass(frozen=True)
class Refused:
    """Refused before codex starts, with this in the message."""

    message: str = OUTSIDE_MESSAGE


DIRECTORY_CASES: list[tuple[str, Inside | Refused]] = [
    (".", Inside("")),
    ("sub", Inside("sub")),
    ("sub/", Inside("sub")),
    ("{root}", Inside("")),
    ("{root}/sub", Inside("sub")),
    ("../work/sub", Inside("sub")),  # leaves the root with .. and comes back in
    ("sub/../../work", Inside("")),
    ("{root}/../work/sub", Inside("sub")),
    ("inner", Inside("sub")),  # a symlink that stays inside
    ("chain", Inside("sub")),  # a chain of them
    ("escape", Refused()),  # a symlink inside the root pointing outside
    ("rel-escape", Refused()),  # the same, relative
    ("sub/deeper-escape", Refused()),  # the same, one level down
    ("escape/..", Refused()),  # looks inside; the symlink resolves first
    ("up", Refused()),  # a symlink to the root's parent
    ("dangling", Refused()),  # a dangling symlink to outside
    ("../outside", Refused()),
    ("{outside}", Refused()),
    ("{root}/../outside", Refused()),
    ("../work-evil", Refused()),  # a sibling whose name starts with the root's
    ("/", Refused()),
    ("/etc", Refused()),
    ("~", Refused()),
    ("file.txt", Refused("does not exist or is not a directory")),  # a file, not a directory
    ("missing", Refused("does not exist")),
    ("loop", Refused("does not exist")),
    ("sub\x00/../..", Refused("not a valid path")),
]

IMAGE_CASES: list[tuple[str, Inside | Refused]] = [
    ("shot.png", Inside("shot.png")),
    ("{root}/shot.png", Inside("shot.png")),
    ("sub/pic.png", Inside("sub/pic.png")),
    ("inner/../shot.png", Inside("shot.png")),  # inner is sub, so .. is the root
    ("../work/shot.png", Inside("shot.png")),
    ("link.png", Inside("shot.png")),
    ("escape/../work/shot.png", Inside("shot.png")),  # out through a symlink, back in
    ("escape/secret.png", Refused()),
    ("secret-link.png", Refused()),  # a file symlink pointing outside
    ("../outside/secret.png", Refused()),
    ("{outside}/secret.png", Refused()),
    ("/etc/passwd", Refused()),
    ("sub", Refused("not found")),  # a directory, not an image
    ("missing.png", Refused("image missing.png not found")),
    ("a\x00b.png", Refused("not a valid path")),
]


def expand(path: str, traps: Traps) -> str:
    return path.replace("{root}", str(traps.root)).replace("{outside}", str(traps.outside))


async def check_cases(
    client: Client,
    traps: Traps,
    cases: list[tuple[str, Inside | Refused]],
    call: Any,
    recorded: Any,
) -> None:
    """Runs every case and reports all mismatches at once."""
    problems = []
    for path, expected in cases:
        traps.recorder.clear()
        tool, arguments = call(expand(path, traps))
        result = await client.call_tool(tool, arguments)
        runs = traps.recorder.runs()
        if isinstance(expected, Inside):
            want = str(traps.root / expected.relative) if expected.relative else str(traps.root)
            if result.is_error:
                problems.append(f"{path!r}: refused, expected allowed: {text(result)[:300]}")
            elif [recorded(argv) for argv in runs] != [[want]]:
                problems.append(f"{path!r}: codex got {[recorded(a) for a in runs]}, not {want}")
        else:
            if not result.is_error:
                problems.append(f"{path!r}: allowed, expected refused; codex got {runs}")
            elif expected.message not in text(result):
                problems.append(f"{path!r}: {text(result)[:300]!r} lacks {expected.message!r}")
            if runs:
                problems.append(f"{path!r}: refused, yet codex ran: {runs}")
    assert not problems, "\n".join(problems)


async def test_working_directories_outside_the_root_are_refused(
    client: Client, traps: Traps
) -> None:
    await check_cases(
        client,
        traps,
        DIRECTORY_CASES,
        lambda path: ("start_thread", {"prompt": "x", "working_directory": path}),
        lambda argv: values_of(argv, "--cd"),
    )


async def test_additional_directories_outside_the_root_are_refused(
    client: Client, traps: Traps
) -> None:
    await check_cases(
        client,
        traps,
        DIRECTORY_CASES,
        lambda path: ("start_thread", {"prompt": "x", "additional_directories": [path]}),
        lambda argv: values_of(argv, "--add-dir"),
    )


async def test_images_outside_the_root_are_refused(client: Client, traps: Traps) -> None:
    await check_cases(
        client,
        traps,
        IMAGE_CASES,
        lambda path: ("start_thread", {"prompt": "x", "images": [path]}),
        lambda argv: values_of(argv, "--image"),
    )


async def test_the_other_tools_apply_the_same_roots(client: Client, traps: Traps) -> None:
    """codex's cwd, resume_thread's options, and run_turn's images (from its directory)."""
    some = [case for case in DIRECTORY_CASES if case[0] in (".", "../work/sub", "escape")]
    some += [case for case in DIRECTORY_CASES if case[0] in ("escape/..", "file.txt", "up")]
    await check_cases(
        client,
        traps,
        some,
        lambda path: ("codex", {"prompt": "x", "cwd": path}),
        lambda argv: values_of(argv, "--cd"),
    )
    await check_cases(
        client,
        traps,
        some,
        lambda path: (
            "resume_thread",
            {"thread_id": SESSION_ID, "prompt": "x", "working_directory": path},
        ),
        lambda argv: values_of(argv, "--cd"),
    )

    # A thread working in sub: its images and extra directories are relative to sub.
    started = await client.call_tool("start_thread", {"prompt": "x", "working_directory": "sub"})
    thread_id = structured(started)["thread_id"]
    from_sub = [
        ("../shot.png", Inside("shot.png")),
        ("pic.png", Inside("sub/pic.png")),
        ("../../outside/secret.png", Refused()),
        ("deeper-escape/secret.png", Refused()),
        ("shot.png", Refused("not found")),
    ]
    await check_cases(
        client,
        traps,
        from_sub,
        lambda path: ("run_turn", {"thread_id": thread_id, "prompt": "x", "images": [path]}),
        lambda argv: values_of(argv, "--image"),
    )
    await check_cases(
        client,
        traps,
        [("..", Inside("")), ("../../outside", Refused()), ("deeper-escape", Refused())],
        lambda path: (
            "start_thread",
            {"prompt": "x", "working_directory": "sub", "additional_directories": [path]},
        ),
        lambda argv: values_of(argv, "--add-dir"),
    )


async def test_config_cannot_grant_writes_outside_the_root(client: Client, traps: Traps) -> None:
    """``sandbox_workspace_write.writable_roots`` is --add-dir by another name.

    The same directory is refused as an additional directory; through ``config`` it reached
    codex, which then let commands write there (checked by hand with the real binary).
    """
    refused = await client.call_tool(
        "start_thread",
        {
            "prompt": "x",
            "sandbox_mode": "workspace-write",
            "additional_directories": [str(traps.outside)],
        },
    )
    assert refused.is_error and OUTSIDE_MESSAGE in text(refused)
    for tool, arguments in (
        (
            "start_thread",
            {
                "prompt": "x",
                "sandbox_mode": "workspace-write",
                "config": {"sandbox_workspace_write": {"writable_roots": [str(traps.outside)]}},
            },
        ),
        (
            "codex",
            {
                "prompt": "x",
                "sandbox": "workspace-write",
                "config": {"sandbox_workspace_write.writable_roots": [str(traps.outside)]},
            },
        ),
    ):
        traps.recorder.clear()
        result = await client.call_tool(tool, arguments)
        runs = traps.recorder.runs()
        assert result.is_error, f"{tool} let config widen the sandbox outside the root: {runs}"
        assert "outside" in text(result) or "writable_roots" in text(result), text(result)
        assert runs == []


async def test_a_root_given_through_a_symlink_admits_its_own_directories(traps: Traps) -> None:
    """Settings built in code (not by the CLI, which resolves) with a symlinked root."""
    link = traps.root.parent / "root-link"
    link.symlink_to(traps.root)
    settings = fake_settings(traps, cwd=link, allowed_roots=(link,))
    async with Client(build_server(settings)) as client:
        default = await client.call_tool("start_thread", {"prompt": "x"})
        assert not default.is_error, text(default)
        for path in (".", "sub", str(link / "sub")):
            result = await client.call_tool(
                "start_thread", {"prompt": "x", "working_directory": path}
            )
            assert not result.is_error, f"{path!r}: {text(result)}"


def test_the_cli_resolves_roots_and_cwd(traps: Traps) -> None:
    link = traps.root.parent / "cli-link"
    link.symlink_to(traps.root)
    settings = parse_settings(
        ["--cwd", str(link / "sub" / ".."), "--allowed-root", str(link)], environ={}
    )
    assert settings.allowed_roots == (traps.root,)
    assert settings.cwd == traps.root
    with pytest.raises(SystemExit):
        parse_settings(["--cwd", str(traps.outside), "--allowed-root", str(traps.root)], {})
    a_file = str(traps.root / "file.txt")  # A root must be a directory.
    with pytest.raises(SystemExit):
        parse_settings(["--cwd", str(traps.root), "--allowed-root", a_file], {})


# --------------------------------------------------------------------- sandbox ceiling

RANK = {mode: index for index, mode in enumerate(SANDBOX_MODES)}
PAIRS = [(default, ceiling) for default in SANDBOX_MODES for ceiling in SANDBOX_MODES]


@pytest.mark.parametrize(("default", "ceiling"), PAIRS)
def test_a_default_sandbox_above_the_ceiling_does_not_start(
    default: str, ceiling: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = ["--cwd", str(tmp_path), "--default-sandbox", default, "--max-sandbox", ceiling]
    environ = {"CODEX_MCP_DEFAULT_SANDBOX": default, "CODEX_MCP_MAX_SANDBOX": ceiling}
    if RANK[default] <= RANK[ceiling]:
        built = Settings(cwd=tmp_path, default_sandbox=default, max_sandbox=ceiling)  # type: ignore[arg-type]
        assert (built.default_sandbox, built.max_sandbox) == (default, ceiling)
        for argv, env in ((flags, {}), (["--cwd", str(tmp_path)], environ)):
            parsed = parse_settings(argv, env)
            assert (parsed.default_sandbox, parsed.max_sandbox) == (default, ceiling)
        return
    message = f"--default-sandbox {default} is above --max-sandbox {ceiling}"
    with pytest.raises(SettingsError, match=message):
        Settings(cwd=tmp_path, default_sandbox=default, max_sandbox=ceiling)  # type: ignore[arg-type]
    from_env = f"CODEX_MCP_DEFAULT_SANDBOX {default} is above CODEX_MCP_MAX_SANDBOX {ceiling}"
    for argv, env, said in ((flags, {}, message), (["--cwd", str(tmp_path)], environ, from_env)):
        with pytest.raises(SystemExit) as stopped:
            parse_settings(argv, env)
        assert stopped.value.code == 2
        assert said in capsys.readouterr().err


ALLOWED_PAIRS = [(d, c) for d, c in PAIRS if RANK[d] <= RANK[c]]


@pytest.mark.parametrize(("default", "ceiling"), ALLOWED_PAIRS)
async def test_a_sandbox_above_the_ceiling_is_refused(
    default: str, ceiling: str, traps: Traps
) -> None:
    """Every tool that takes a sandbox, asked for none or each mode, under each setting."""
    problems = []
    settings = fake_settings(traps, default_sandbox=default, max_sandbox=ceiling)
    async with Client(build_server(settings)) as client:
        for asked in (None, *SANDBOX_MODES):
            effective = asked or default
            for tool, arguments in (
                ("start_thread", {"prompt": "x", "sandbox_mode": asked}),
                ("resume_thread", {"thread_id": SESSION_ID, "prompt": "x", "sandbox_mode": asked}),
                ("codex", {"prompt": "x", "sandbox": asked}),
            ):
                arguments = {k: v for k, v in arguments.items() if v is not None}
                traps.recorder.clear()
                result = await client.call_tool(tool, arguments)
                runs = traps.recorder.runs()
                case = f"{tool} asking {asked} (default {default}, ceiling {ceiling})"
                if RANK[effective] > RANK[ceiling]:
                    expected = f"sandbox_mode {effective} is above this server's ceiling ({ceiling}"
                    if not result.is_error or expected not in text(result) or runs:
                        problems.append(f"{case}: not refused as expected: {text(result)[:200]}")
                    continue
                if result.is_error:
                    problems.append(f"{case}: refused: {text(result)[:200]}")
                elif [values_of(argv, "--sandbox") for argv in runs] != [[effective]]:
                    problems.append(f"{case}: codex got {runs}")
                elif tool == "start_thread":
                    # The next turn keeps the thread's sandbox.
                    traps.recorder.clear()
                    follow = {"thread_id": structured(result)["thread_id"], "prompt": "y"}
                    await client.call_tool("run_turn", follow)
                    got = [values_of(argv, "--sandbox") for argv in traps.recorder.runs()]
                    if got != [[effective]]:
                        problems.append(f"{case}: run_turn ran codex with {got}")
    assert not problems, "\n".join(problems)


async def test_the_sandbox_is_always_explicit_so_config_cannot_raise_it(traps: Traps) -> None:
    """Codex ranks --sandbox above config and profiles: it must be on every command line.

    Even where the operator admits ``sandbox_mode`` in a thread's config and profiles.
    """
    (traps.home / "full-access.config.toml").write_text('sandbox_mode = "danger-full-access"\n')
    settings = fake_settings(traps, allow_config_keys=("sandbox_mode",))
    async with Client(build_server(settings)) as client:
        for tool, arguments in (
            ("start_thread", {"prompt": "x", "config": {"sandbox_mode": "danger-full-access"}}),
            ("start_thread", {"prompt": "x", "profile": "full-access"}),
            ("codex", {"prompt": "x", "config": {"sandbox_mode": "danger-full-access"}}),
            ("codex-reply", {"threadId": SESSION_ID, "prompt": "x"}),
        ):
            traps.recorder.clear()
            result = await client.call_tool(tool, arguments)
            assert not result.is_error, text(result)
            assert values_of(traps.recorder.only_run(), "--sandbox") == ["read-only"], tool


# ---------------------------------------------------------------------- HTTP


@pytest.mark.parametrize(
    ("host", "starts"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("0", False),
        ("192.0.2.7", False),
        ("codex.example", False),
        ("127.0.0.1.nip.io", False),
        ("::ffff:192.0.2.7", False),
    ],
)
def test_only_loopback_may_go_without_a_token(host: str, starts: bool, tmp_path: Path) -> None:
    def build(token: str | None) -> Settings:
        return Settings(cwd=tmp_path, transport="streamable-http", host=host, auth_token=token)

    if starts:
        assert build(None).loopback
    else:
        with pytest.raises(SettingsError, match="CODEX_MCP_AUTH_TOKEN"):
            build(None)
        with pytest.raises(SettingsError):
            build("")  # An empty token is no token.
    assert build(TOKEN).auth_token == TOKEN
    assert TOKEN not in repr(build(TOKEN))


async def test_http_refuses_every_request_without_the_token(
    start_server: StartServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What test_server_http leaves out: other methods, near-miss tokens, DEBUG logs."""
    monkeypatch.setenv("CODEX_MCP_LOG_LEVEL", "DEBUG")
    server = start_server(token=TOKEN)
    near_misses = [
        f"Bearer {TOKEN}x",
        f"Bearer x{TOKEN}",
        f"Bearer {TOKEN.upper()}",
        f"Bearer {TOKEN[:-1]}",
        f"Token {TOKEN}",
        f"Basic {TOKEN}",
        TOKEN,
        "Bearer",
    ]
    with anyio.fail_after(60):
        async with _http() as http:
            for method in ("GET", "POST", "DELETE", "PUT"):
                response = await http.request(method, server.url, headers=MCP_HEADERS)
                assert response.status_code == 401, method
            for authorization in near_misses:
                response = await server.initialize(http, Authorization=authorization)
                assert response.status_code == 401, authorization
                assert TOKEN not in response.text
        async with AsyncExitStack() as stack:
            client = await _connect(stack, server.url, token=TOKEN)
            listed = await client.call_tool("list_threads", {})
            assert not listed.is_error
    server.stop()
    log = server.log()
    assert "DEBUG" in log  # The level really was DEBUG.
    assert TOKEN not in log
    assert TOKEN.upper() not in log
    assert TOKEN[:-1] not in log


async def _ok(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse("ok")(scope, receive, send)


@pytest.mark.parametrize("query", ["token", "access_token", "authorization", "bearer"])
async def test_a_token_in_the_url_is_not_accepted(query: str) -> None:
    """Only the Authorization header counts (a URL ends up in logs and histories)."""
    transport = httpx2.ASGITransport(app=BearerTokenMiddleware(_ok, TOKEN))
    async with httpx2.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.post(f"/mcp?{query}={TOKEN}", json=INITIALIZE)
        cookie = await http.post("/mcp", headers={"Cookie": f"{query}={TOKEN}"}, json=INITIALIZE)
    assert response.status_code == 401
    assert cookie.status_code == 401


# --------------------------------------------------------------------------- secrets

SECRETS = {
    "OPENAI_API_KEY": "sk-test-SECRET123",
    "CODEX_API_KEY": "sk-codex-SECRET456",
    "CODEX_MCP_AUTH_TOKEN": "tok-mcp-SECRET789",
}


def leaks(where: str, content: str) -> list[str]:
    return [f"{name} in {where}" for name, value in SECRETS.items() if value in content]


def dump(result: CallToolResult) -> str:
    return json.dumps(result.model_dump(mode="json", by_alias=True), ensure_ascii=False)


@dataclass
class StdioServer:
    client: Client
    log: Path


@pytest.fixture
async def secret_server(
    backend: str, codex_home: Path, workdir: Path, tmp_path: Path
) -> AsyncIterator[StdioServer]:
    """The server over stdio at DEBUG, with API keys (and a token) in its environment, on
    the test's backend (CODEX_MCP_BACKEND, which the fixture sets before this runs)."""
    log = tmp_path / "server.err"
    env = {**codex_env(codex_home), **SECRETS}
    command = [sys.executable, "-m", "codex_mcp_server", "--cwd", str(workdir)]
    command += ["--log-level", "DEBUG"]
    with log.open("w") as errlog:
        params = StdioServerParameters(command=command[0], args=command[1:], env=env)
        async with Client(stdio_client(params, errlog=errlog)) as client:
            yield StdioServer(client, log)
    left = wait_until_gone(codex_home, timeout=5.0, find=codex_only)
    assert left == [], describe(left)


async def everything_a_client_sees(client: Client) -> list[tuple[str, str]]:
    """list_threads, get_thread of each thread, and every resource."""
    seen = [("list_threads", dump(await client.call_tool("list_threads", {})))]
    listed = structured(await client.call_tool("list_threads", {}))["threads"]
    for thread in listed:
        info = await client.call_tool("get_thread", {"thread_id": thread["thread_id"]})
        seen.append((f"get_thread {thread['thread_id']}", dump(info)))
    resources = await client.list_resources()
    for resource in resources.resources:
        read = await client.read_resource(str(resource.uri))
        seen.append((str(resource.uri), read.model_dump_json()))
    for thread in listed:
        uri = f"codex://threads/{thread['thread_id']}"
        seen.append((uri, (await client.read_resource(uri)).model_dump_json()))
    return seen


async def test_api_keys_never_reach_logs_or_results(
    secret_server: StdioServer, model: ScriptedModel, backend: str
) -> None:
    client = secret_server.client
    seen: list[tuple[str, str]] = []
    with anyio.fail_after(90):
        model.add(replies.message("all good"))
        ok = await client.call_tool("start_thread", {"prompt": "say something"})
        assert not ok.is_error, text(ok)
        seen.append(("start_thread", dump(ok)))
        thread_id = structured(ok)["thread_id"]

        model.add(replies.failure("the model is overloaded"))
        failed = await client.call_tool("run_turn", {"thread_id": thread_id, "prompt": "again"})
        assert failed.is_error and "overloaded" in text(failed)
        seen.append(("run_turn (turn.failed)", dump(failed)))

        # codex exec refuses this policy and exits non-zero: its stderr tail is in the error
        # (the app-server takes it, and the turn fails at the unscripted model).
        exited = await client.call_tool(
            "start_thread", {"prompt": "x", "approval_policy": "untrusted"}
        )
        assert exited.is_error
        if backend == "exec":
            assert "exited with code" in text(exited)
        seen.append(("start_thread (codex exit 1)", dump(exited)))

        stopped = await client.call_tool("start_thread", {"prompt": "x", "model": "-bad"})
        assert stopped.is_error
        seen.append(("start_thread (bad flag value)", dump(stopped)))

        seen += await everything_a_client_sees(client)
    found = [leak for where, content in seen for leak in leaks(where, content)]
    log = secret_server.log.read_text(errors="replace")
    assert "DEBUG" in log
    found += leaks("the server's stderr", log)
    assert not found, "\n".join(found)


@pytest.mark.usefixtures("backend")
async def test_commands_codex_runs_do_not_see_the_servers_secrets(
    secret_server: StdioServer, model: ScriptedModel
) -> None:
    """The agent's shell inherits codex's environment unless codex is told to filter it.

    Codex itself needs its API key; the commands it runs for the model do not, and neither
    needs the server's HTTP bearer token. Whatever they print comes back in get_thread and
    the thread resource (and goes to the model).
    """
    client = secret_server.client
    with anyio.fail_after(90):
        model.add(replies.command("env"), replies.message("printed the environment"))
        result = await client.call_tool("start_thread", {"prompt": "print your environment"})
        assert not result.is_error, text(result)
        assert structured(result)["actions"]["commands"][0]["exit_code"] == 0
        seen = [("start_thread", dump(result)), *await everything_a_client_sees(client)]
        shown = list(model.requests[1].function_call_outputs)
    assert "CODEX_HOME=" in "".join(shown)  # The command did print the environment.
    found = [leak for where, content in seen for leak in leaks(where, content)]
    found += [leak for output in shown for leak in leaks("what the model was sent", output)]
    assert not found, "\n".join(found)


@pytest.fixture
def recorded_fake(tmp_path: Path) -> Traps:
    root = tmp_path / "root"
    root.mkdir()
    base = make_layout(tmp_path, root)
    recorded = tmp_path / "runs"
    recorded.mkdir()
    return Traps(base.root, base.outside, base.home, base.codex, Recorder(recorded))


async def test_the_sdk_api_key_stays_off_the_command_line(recorded_fake: Traps) -> None:
    """api_key goes to codex through its environment, never its arguments (which ps shows)."""
    key = SECRETS["CODEX_API_KEY"]
    env = {
        "PATH": os.environ.get("PATH", ""),
        "CODEX_HOME": str(recorded_fake.home),
        "FAKE_CODEX_ARGS": str(recorded_fake.recorder.directory),
    }
    codex = Codex({"api_key": key, "env": env, "codex_path_override": str(recorded_fake.codex)})
    turn = await codex.start_thread({"working_directory": str(recorded_fake.root)}).run("x")
    assert turn.final_response == "ok"
    argv = recorded_fake.recorder.only_run()
    assert not [arg for arg in argv if key in arg], shlex.join(argv)
    assert key not in repr(codex)


@pytest.mark.usefixtures("backend")
async def test_the_sdk_api_key_stays_out_of_errors(
    codex_home: Path, workdir: Path, model: ScriptedModel
) -> None:
    key = SECRETS["CODEX_API_KEY"]
    codex = Codex({"api_key": key, "env": codex_env(codex_home)})
    model.add(replies.failure("quota exceeded"))
    thread = codex.start_thread({"working_directory": str(workdir)})
    with pytest.raises(CodexError) as failed:
        await thread.run("x")
    exited = codex.start_thread({"working_directory": str(workdir), "approval_policy": "untrusted"})
    with pytest.raises(CodexError) as stopped:
        await exited.run("x")
    for error in (failed.value, stopped.value):
        assert key not in str(error) and key not in repr(error), error


# ------------------------------------------------------------------- thread ids


@pytest.mark.usefixtures("backend")
async def test_only_a_whole_thread_id_resumes_a_thread(
    codex_home: Path, workdir: Path, model: ScriptedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A part of a real id once matched its rollout by glob; codex, told to resume the part,
    then started a new, empty thread that the server filed under the part as if resumed."""
    for name, value in codex_env(codex_home).items():
        monkeypatch.setenv(name, value)
    settings = Settings(cwd=workdir, tool_set="all", heartbeat_interval=30.0)
    async with Client(serve(settings)) as first_server:
        model.add(replies.message("the original"))
        thread_id = structured(await first_server.call_tool("start_thread", {"prompt": "x"}))[
            "thread_id"
        ]
    rollouts = sorted((codex_home / "sessions").rglob("rollout-*.jsonl"))
    async with Client(serve(settings)) as server:
        for part in (thread_id[-12:], thread_id[9:], thread_id[:-1], f"x{thread_id}"):
            for tool, arguments in (
                ("resume_thread", {"thread_id": part, "prompt": "hello?"}),
                ("codex-reply", {"threadId": part, "prompt": "hello?"}),
            ):
                refused = await server.call_tool(tool, arguments)
                assert refused.is_error, text(refused)
                assert "not a whole Codex thread id" in text(refused), text(refused)
                assert "exact, full id" in text(refused)
        assert structured(await server.call_tool("list_threads", {}))["threads"] == []
        assert sorted((codex_home / "sessions").rglob("rollout-*.jsonl")) == rollouts
        assert len(model.requests) == 1

        model.add(replies.message("resumed"))
        resumed = await server.call_tool("resume_thread", {"thread_id": thread_id, "prompt": "y"})
        assert not resumed.is_error, text(resumed)
        assert structured(resumed)["final_response"] == "resumed"
        assert "the original" in json.dumps(model.requests[1].input)
