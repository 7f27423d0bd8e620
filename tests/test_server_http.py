"""The server over streamable HTTP: a real subprocess on a local port, on the real binary."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from codex_mcp_server.server import Settings
from codex_mcp_server.server.http import (
    BearerTokenMiddleware,
    allowed_hosts,
    mcp_app,
    transport_security,
)
from codex_mcp_server.testing import ScriptedModel, codex_env, replies

from .procs import codex_only, describe, wait_until_gone
from .server_support import ProgressLog, cancel_a_hanging_turn, structured, text

pytestmark = pytest.mark.usefixtures("backend")

TOKEN = "s3cret-token-for-tests"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw-test", "version": "0"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class HttpServer:
    process: subprocess.Popen[bytes]
    host: str
    port: int
    stdout: Path
    stderr: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/mcp"

    def log(self) -> str:
        return self.stderr.read_text(errors="replace")

    async def initialize(self, http: httpx2.AsyncClient, **headers: str) -> httpx2.Response:
        """POST a raw ``initialize`` request with the MCP ``Accept`` header plus ``headers``."""
        return await http.post(self.url, json=INITIALIZE, headers={**MCP_HEADERS, **headers})

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited early:\n{self.log()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"the server did not listen within {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers: never leave the server behind."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


StartServer = Callable[..., HttpServer]


@pytest.fixture
def start_server(
    backend: str, codex_home: Path, workdir: Path, tmp_path: Path
) -> Iterator[StartServer]:
    """Starts the server over HTTP on a free port and waits until it accepts connections."""
    started: list[HttpServer] = []

    def start(
        *, token: str | None = None, host: str = "127.0.0.1", extra: Sequence[str] = ()
    ) -> HttpServer:
        env = codex_env(codex_home)
        env.pop("CODEX_MCP_AUTH_TOKEN", None)
        if token is not None:
            env["CODEX_MCP_AUTH_TOKEN"] = token
        port = _free_port()
        n = len(started)
        stdout, stderr = tmp_path / f"server-{n}.out", tmp_path / f"server-{n}.err"
        command = [
            sys.executable,
            "-m",
            "codex_mcp_server",
            "--transport",
            "streamable-http",
            "--host",
            host,
            "--port",
            str(port),
            "--cwd",
            str(workdir),
            *extra,
        ]
        with stdout.open("wb") as out, stderr.open("wb") as err:
            process = subprocess.Popen(
                command, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err
            )
        server = HttpServer(process, host, port, stdout, stderr)
        started.append(server)
        server.wait_ready()
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


def _http(token: str | None = None) -> httpx2.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    timeout = httpx2.Timeout(10.0, read=60.0)
    return httpx2.AsyncClient(headers=headers, timeout=timeout, trust_env=False)


async def _connect(
    stack: AsyncExitStack,
    url: str,
    token: str | None = None,
    mode: Literal["auto", "legacy"] = "auto",
) -> Client:
    http = await stack.enter_async_context(_http(token))
    transport = streamable_http_client(url, http_client=http)
    client: Client = await stack.enter_async_context(Client(transport, mode=mode))
    return client


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_tools_and_progress_over_http(
    start_server: StartServer, model: ScriptedModel, mode: Literal["auto", "legacy"]
) -> None:
    server = start_server()
    model.add(replies.command("echo hi"), replies.message("done"))
    progress = ProgressLog()
    with anyio.fail_after(60):
        async with AsyncExitStack() as stack:
            client = await _connect(stack, server.url, mode=mode)
            result = await client.call_tool(
                "start_thread", {"prompt": "run echo hi"}, progress_callback=progress
            )
            assert not result.is_error, text(result)
            turn = structured(result)
            assert turn["status"] == "completed"
            assert turn["final_response"] == "done"
            assert progress.messages == ["$ echo hi", "✓ $ echo hi (exit 0)", "message: done"]
            listed = structured(await client.call_tool("list_threads", {}))
            assert turn["thread_id"] in str(listed)
    server.stop()
    assert server.process.returncode == 0
    assert server.stdout.read_text() == ""  # Logs go to stderr.
    assert "starting MCP over HTTP at http://127.0.0.1" in server.log()


async def test_a_configured_token_is_required_on_every_request(
    start_server: StartServer,
) -> None:
    server = start_server(token=TOKEN)
    with anyio.fail_after(60):
        async with _http() as http:
            missing = await server.initialize(http)
            assert missing.status_code == 401
            assert missing.headers["www-authenticate"] == 'Bearer realm="codex-mcp-server"'
            assert missing.json()["error"] == "unauthorized"

            basic = await server.initialize(http, Authorization="Basic dXNlcjpwYXNz")
            assert basic.status_code == 401

            wrong = await server.initialize(http, Authorization="Bearer not-the-token")
            assert wrong.status_code == 401
            assert wrong.headers["www-authenticate"] == (
                'Bearer realm="codex-mcp-server", error="invalid_token"'
            )
            assert wrong.json()["error"] == "invalid_token"

            other_path = await http.get(f"http://127.0.0.1:{server.port}/")
            assert other_path.status_code == 401

        async with AsyncExitStack() as stack:
            client = await _connect(stack, server.url, token=TOKEN)
            names = [tool.name for tool in (await client.list_tools()).tools]
            assert "start_thread" in names
    server.stop()
    assert server.process.returncode == 0
    assert TOKEN not in server.log()
    assert "wrong bearer token" in server.log()


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_cancelled_call_over_http_stops_the_turn(
    start_server: StartServer,
    codex_home: Path,
    model: ScriptedModel,
    mode: Literal["auto", "legacy"],
) -> None:
    server = start_server(token=TOKEN)
    with anyio.fail_after(60):
        async with AsyncExitStack() as stack:
            client = await _connect(stack, server.url, token=TOKEN, mode=mode)
            model.add(replies.message("ready"))
            first = await client.call_tool("start_thread", {"prompt": "begin"})
            assert not first.is_error, text(first)
            thread_id = structured(first)["thread_id"]

            await cancel_a_hanging_turn(client, model, codex_home, thread_id, 2)


async def test_a_query_string_never_reaches_the_log(start_server: StartServer) -> None:
    # A careless client puts the token in the URL; uvicorn's access log (on at INFO) used to
    # write it out with the request line.
    server = start_server(token=TOKEN)
    with anyio.fail_after(30):
        async with _http() as http:
            refused = await http.get(f"{server.url}?token=leaked-{TOKEN}&x=1")
            assert refused.status_code == 401
            authorized = await http.post(
                f"{server.url}?api_key=leaked-too",
                json=INITIALIZE,
                headers={**MCP_HEADERS, "Authorization": f"Bearer {TOKEN}"},
            )
            assert authorized.status_code == 200
        while True:  # The access log is written once a response has ended.
            if server.log().count('"POST /mcp?') + server.log().count('"GET /mcp?') == 2:
                break
            await anyio.sleep(0.05)
    log = server.log()
    assert '"GET /mcp?…' in log and '"POST /mcp?…' in log
    assert "leaked" not in log and "token=" not in log and TOKEN not in log


async def test_a_foreign_host_or_origin_is_refused(start_server: StartServer) -> None:
    server = start_server()
    with anyio.fail_after(30):
        async with _http() as http:
            rebound = await server.initialize(http, Host=f"attacker.example:{server.port}")
            assert rebound.status_code == 421
            cross_site = await server.initialize(http, Origin="http://attacker.example")
            assert cross_site.status_code == 403
            same = await server.initialize(http, Origin=f"http://127.0.0.1:{server.port}")
            assert same.status_code == 200


async def test_a_proxy_name_given_by_allowed_host_is_accepted(start_server: StartServer) -> None:
    # A reverse proxy on this machine forwards the public name in Host (and browsers behind
    # TLS send an https Origin); loopback names still work, others are still refused.
    server = start_server(token=TOKEN, extra=["--allowed-host", "Codex.Example.com"])
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with anyio.fail_after(30):
        async with _http() as http:
            for headers, status in [
                ({"Host": "codex.example.com"}, 200),
                ({"Host": "codex.example.com", "Origin": "https://codex.example.com"}, 200),
                ({"Host": f"localhost:{server.port}"}, 200),
                ({"Host": "codex.example.com:8443"}, 421),
                ({"Host": "attacker.example"}, 421),
                ({"Host": "codex.example.com", "Origin": "https://attacker.example"}, 403),
            ]:
                response = await server.initialize(http, **auth, **headers)
                assert response.status_code == status, headers


async def test_our_rebinding_protection_on_a_loopback_the_sdk_does_not_know(
    start_server: StartServer,
) -> None:
    # 127.0.0.2 is loopback (no token needed) but not one of the SDK's own hosts, so the
    # list built from the bind address is what protects it.
    server = start_server(host="127.0.0.2")
    with anyio.fail_after(30):
        async with _http() as http:
            own = await server.initialize(http)
            assert own.status_code == 200
            for host in ("attacker.example", "127.0.0.1", "127.0.0.2"):
                refused = await server.initialize(http, Host=host)
                assert refused.status_code == 421, host


def test_a_public_bind_without_a_token_does_not_start(codex_home: Path, workdir: Path) -> None:
    env = codex_env(codex_home)
    env.pop("CODEX_MCP_AUTH_TOKEN", None)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "codex_mcp_server",
            "--transport",
            "streamable-http",
            "--host",
            "0.0.0.0",
            "--port",
            str(_free_port()),
            "--cwd",
            str(workdir),
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "--host 0.0.0.0 is reachable from other machines" in result.stderr
    assert "CODEX_MCP_AUTH_TOKEN" in result.stderr
    assert result.stdout == ""


def test_a_taken_port_fails_at_start_with_a_clear_message(codex_home: Path, workdir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "codex_mcp_server",
                "--transport",
                "streamable-http",
                "--port",
                str(port),
                "--cwd",
                str(workdir),
            ],
            env=codex_env(codex_home),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode != 0
    assert "address already in use" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("signum", "mode"),
    [(signal.SIGTERM, "auto"), (signal.SIGTERM, "legacy"), (signal.SIGINT, "legacy")],
)
async def test_a_signal_mid_turn_stops_codex_and_the_server(
    start_server: StartServer,
    codex_home: Path,
    model: ScriptedModel,
    signum: int,
    mode: Literal["auto", "legacy"],
) -> None:
    server = start_server()
    model.add(replies.hang())
    with anyio.fail_after(60):
        async with AsyncExitStack() as stack:
            client = await _connect(stack, server.url, mode=mode)
            async with anyio.create_task_group() as group:

                async def long_turn() -> None:
                    with suppress(Exception):  # The server goes away: any error will do.
                        await client.call_tool("start_thread", {"prompt": "x"})

                group.start_soon(long_turn)
                await anyio.to_thread.run_sync(model.wait_for_requests, 1, 20.0)
                assert codex_only(codex_home) != []
                started = time.monotonic()
                server.process.send_signal(signum)
                returncode = await anyio.to_thread.run_sync(server.process.wait, 15)
                stopped_in = time.monotonic() - started
                group.cancel_scope.cancel()
    assert returncode == 0, server.log()
    assert stopped_in < 5.0, server.log()
    left = wait_until_gone(codex_home, timeout=1.0)
    assert left == [], describe(left)
    assert "Traceback" not in server.log()


# ---------------------------------------------------------------------------- in process


async def _ok(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse("ok")(scope, receive, send)


@pytest.mark.parametrize(
    ("authorization", "status", "challenge"),
    [
        (None, 401, 'Bearer realm="codex-mcp-server"'),
        ("Basic dXNlcjpwYXNz", 401, 'Bearer realm="codex-mcp-server"'),
        ("Bearer", 401, 'Bearer realm="codex-mcp-server", error="invalid_token"'),
        (f"Bearer {TOKEN}x", 401, 'Bearer realm="codex-mcp-server", error="invalid_token"'),
        (f"Bearer {TOKEN[:-1]}", 401, 'Bearer realm="codex-mcp-server", error="invalid_token"'),
        (f"Bearer {TOKEN}", 200, None),
        (f"bearer  {TOKEN} ", 200, None),
    ],
)
async def test_the_bearer_middleware(
    authorization: str | None, status: int, challenge: str | None
) -> None:
    app = BearerTokenMiddleware(_ok, TOKEN)
    headers = {"Authorization": authorization} if authorization is not None else {}
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.get("/mcp", headers=headers)
    assert response.status_code == status
    assert response.headers.get("www-authenticate") == challenge


@pytest.mark.parametrize(
    ("port", "host", "status"),
    [
        (80, "127.0.0.1", 200),
        (80, "localhost", 200),
        (80, "[::1]", 200),
        (80, "127.0.0.1:80", 200),
        (80, "attacker.example", 421),
        (8000, "127.0.0.1", 421),
        (8000, "127.0.0.1:8000", 200),
    ],
)
async def test_loopback_on_port_80_accepts_a_host_without_the_port(
    workdir: Path, port: int, host: str, status: int
) -> None:
    # Standard clients leave the scheme's default port out of Host; on port 80 every one of
    # them used to get 421. The app is driven in-process: binding port 80 needs privileges.
    app = mcp_app(Settings(cwd=workdir, transport="streamable-http", port=port))
    transport = httpx2.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx2.AsyncClient(transport=transport, base_url=f"http://{host}") as http,
    ):
        response = await http.post("/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Host": host})
    assert response.status_code == status, response.text


def test_allowed_hosts_come_from_the_bind_address(workdir: Path) -> None:
    assert allowed_hosts("192.0.2.7", 8123) == ["192.0.2.7:8123"]
    assert allowed_hosts("Codex.Example", 80) == ["codex.example:80", "codex.example"]
    assert allowed_hosts("2001:db8::1", 9000) == ["[2001:db8::1]:9000"]
    wildcard = allowed_hosts("0.0.0.0", 8000)
    assert {"127.0.0.1:8000", "localhost:8000", "[::1]:8000"} <= set(wildcard)
    assert f"{socket.gethostname().lower()}:8000" in wildcard
    assert "0.0.0.0:8000" not in wildcard

    # The SDK protects its own loopback names; anything else gets our list.
    assert transport_security(Settings(cwd=workdir, transport="streamable-http")) is None
    # ... but not the bare names that clients send on port 80.
    on_80 = transport_security(Settings(cwd=workdir, transport="streamable-http", port=80))
    assert on_80 is not None
    assert {"127.0.0.1", "localhost", "[::1]", "127.0.0.1:*"} <= set(on_80.allowed_hosts)
    assert {"http://127.0.0.1", "http://localhost:*"} <= set(on_80.allowed_origins)
    public = Settings(
        cwd=workdir,
        transport="streamable-http",
        host="192.0.2.7",
        port=8123,
        auth_token=TOKEN,
    )
    security = transport_security(public)
    assert security is not None
    assert security.enable_dns_rebinding_protection
    assert security.allowed_hosts == ["192.0.2.7:8123"]
    assert security.allowed_origins == ["http://192.0.2.7:8123"]

    security = transport_security(replace(public, allowed_hosts=("codex.example.com:8443",)))
    assert security is not None
    assert security.allowed_hosts == ["192.0.2.7:8123", "codex.example.com:8443"]
    assert security.allowed_origins == [
        "http://192.0.2.7:8123",
        "http://codex.example.com:8443",
        "https://codex.example.com:8443",
    ]
