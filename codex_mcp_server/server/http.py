"""MCP over streamable HTTP: ``codex-mcp-server --transport streamable-http``.

The server is the SDK's streamable HTTP app, served at ``http://HOST:PORT/mcp`` by uvicorn
inside the running event loop. It keeps the SDK's defaults (stateful sessions, SSE
responses): those are the settings under which progress notifications and
``notifications/cancelled`` reach a running tool over HTTP, for both the legacy
(``initialize``) protocol era and the 2026-07-28 one. ``stateless_http`` loses
cancellation, ``json_response`` loses progress.

Security:

* **Bearer token.** When ``CODEX_MCP_AUTH_TOKEN`` is set, every request must carry
  ``Authorization: Bearer <token>``; anything else gets ``401`` with a
  ``WWW-Authenticate: Bearer realm="codex-mcp-server"`` challenge. The token is compared in
  constant time and never logged. A host other than loopback without a token is refused at
  start (see :mod:`.settings`).
* **DNS-rebinding protection** stays on: the ``Host`` (and ``Origin``, when sent) header
  must name the address the server is bound to, so a web page whose name was rebound to
  this machine cannot reach it. On 127.0.0.1, localhost and ::1 the SDK sets this up; for
  other binds :func:`transport_security` builds the list from the bind address and port
  (a wildcard bind such as ``0.0.0.0`` admits loopback, this machine's host name and the
  address of its default route). ``--allowed-host`` adds names, such as the public name of
  a reverse proxy in front of the server, which forwards the client's ``Host``. On port 80
  clients leave the port out of ``Host``, so the bare names are allowed there too.
* **No secrets in the log.** uvicorn's access log names each request's path; its query
  string, where a careless client may have put the token, is replaced by ``?…``.

Which threads a client sees: **all clients of one server share its thread registry.**
The token is a single shared secret, so everyone who holds it is the same principal;
there is no per-user identity to partition threads by. Threads are keyed by Codex thread
ids, which are random UUIDs nobody can guess, and they must outlive the MCP session that
created them: a host that reconnects (a new MCP session after a network blip, a restarted
editor, the 2026-07-28 protocol, which has no sessions at all) has to find its threads
again with ``list_threads``, ``get_thread`` and ``run_turn``. ``list_threads`` therefore
lists every thread of the server, and any client may continue or interrupt any of them.
Give people who must not see each other's threads separate servers (their own port,
token and ``CODEX_HOME``).

Shutdown: on SIGTERM or SIGINT uvicorn stops accepting connections, requests still running
are cancelled (a tool call so cancelled stops its turn) and open streams end; then the
app's lifespan ends, which stops every codex turn left (see :func:`.app.build_server`)
before the process exits with status 0.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import uvicorn
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .app import build_server
from .settings import Settings

__all__ = [
    "MCP_PATH",
    "REALM",
    "BearerTokenMiddleware",
    "mcp_app",
    "serve_http",
    "transport_security",
]

logger = logging.getLogger("codex_mcp_server.http")

MCP_PATH = "/mcp"
REALM = "codex-mcp-server"

# Hosts for which the SDK turns DNS-rebinding protection on by itself, and the names it
# then accepts (with any port).
_SDK_PROTECTED_HOSTS = ("127.0.0.1", "localhost", "::1")
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
# Open streams end at once on shutdown; this only bounds a request that will not finish.
_GRACEFUL_SHUTDOWN_SECONDS = 5


class BearerTokenMiddleware:
    """Answers ``401`` to any request without ``Authorization: Bearer <token>``.

    A pure ASGI middleware around the whole app. The SDK's own auth (``AuthSettings`` with a
    ``TokenVerifier``) makes the server an OAuth resource server: it needs the issuer URL of
    an authorization server and publishes protected-resource metadata pointing at it. A
    static shared token has no issuer, so the check is done here instead.
    """

    def __init__(self, app: ASGIApp, token: str) -> None:
        if not token:
            raise ValueError("the bearer token must not be empty")
        self.app = app
        self._expected = token.encode("utf-8")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):  # lifespan
            await self.app(scope, receive, send)
            return
        presented = _bearer_credentials(scope)
        if presented is not None and hmac.compare_digest(presented, self._expected):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        where = f"{client[0]}:{client[1]}" if client else "unknown client"
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        if presented is None:
            logger.info("refused a request without a bearer token from %s", where)
            challenge = f'Bearer realm="{REALM}"'
            body = {"error": "unauthorized", "error_description": "bearer token required"}
        else:
            logger.warning("refused a request with a wrong bearer token from %s", where)
            challenge = f'Bearer realm="{REALM}", error="invalid_token"'
            body = {"error": "invalid_token", "error_description": "the bearer token is wrong"}
        response = JSONResponse(body, status_code=401, headers={"WWW-Authenticate": challenge})
        await response(scope, receive, send)


def _bearer_credentials(scope: Scope) -> bytes | None:
    """The token of the request's ``Authorization: Bearer`` header, or None if it has none."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"authorization":
            scheme, _, credentials = value.strip().partition(b" ")
            if scheme.lower() != b"bearer":
                return None
            return bytes(credentials.strip())
    return None


def transport_security(settings: Settings) -> TransportSecuritySettings | None:
    """DNS-rebinding protection for the bind address and the ``--allowed-host`` names; None
    where the SDK sets it up itself (a loopback bind on a port other than 80, with no other
    names)."""
    if settings.host in _SDK_PROTECTED_HOSTS:
        if not settings.allowed_hosts and settings.port != 80:
            return None
        # What the SDK would allow, as it spells it: any port on a loopback name.
        hosts = [f"{name}:*" for name in _LOOPBACK_NAMES]
        if settings.port == 80:  # Clients leave the default port out of Host.
            hosts += _LOOPBACK_NAMES
    else:
        hosts = allowed_hosts(settings.host, settings.port)
    origins = [f"http://{host}" for host in hosts]
    for extra in settings.allowed_hosts:
        hosts.append(extra)
        # Behind a TLS-terminating proxy, browsers send an https origin.
        origins += [f"http://{extra}", f"https://{extra}"]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


def allowed_hosts(host: str, port: int) -> list[str]:
    """``Host`` header values that name a server bound to ``host:port``."""
    names = [host]
    try:
        wildcard = ipaddress.ip_address(host).is_unspecified
    except ValueError:
        wildcard = False
    if wildcard:
        names = ["127.0.0.1", "localhost", "::1", *_this_machine()]
    allowed: list[str] = []
    for name in dict.fromkeys(n.lower() for n in names if n):
        bracketed = f"[{name}]" if ":" in name else name
        allowed.append(f"{bracketed}:{port}")
        if port == 80:  # Clients leave the default port out of Host.
            allowed.append(bracketed)
    return allowed


def _this_machine() -> list[str]:
    """This machine's host names, the addresses they resolve to, and its outgoing addresses."""
    names = [socket.gethostname(), socket.getfqdn()]
    found = list(names)
    for name in names:
        try:
            infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
        except OSError:
            continue
        found.extend(str(info[4][0]) for info in infos)
    # The address of the interface the default route leaves through (what other machines
    # usually connect to). Connecting a UDP socket sends nothing; it only picks a route.
    for family, probe in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as udp:
                udp.connect((probe, 9))
                found.append(str(udp.getsockname()[0]))
        except OSError:
            continue
    return [name.split("%", 1)[0] for name in found]


class _RedactQuery(logging.Filter):
    """Cuts the query string out of uvicorn's access log lines: a client that put its token
    in the URL (``/mcp?token=…``) is refused, and the token must not reach the log either."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                f"{arg.partition('?')[0]}?…" if isinstance(arg, str) and "?" in arg else arg
                for arg in record.args
            )
        return True


_REDACT_QUERY = _RedactQuery()


class _CancelOnStop:
    """Cancels the requests still running when the server stops, and refuses new ones.

    uvicorn's graceful shutdown waits for open responses to end. A ``tools/call`` of the
    2026-07-28 protocol runs its tool inside its HTTP request and streams until the turn
    ends, and legacy sessions hold a GET stream open for as long as the client likes, so
    waiting would last until the shutdown timeout. Cancelling a running tool stops its turn
    (as ``notifications/cancelled`` does); a response that had started is ended cleanly.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._running: set[anyio.CancelScope] = set()
        self._stopping = False

    def stop(self) -> None:
        self._stopping = True
        for scope in list(self._running):
            scope.cancel()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._stopping:
            await _shutting_down(scope, receive, send)
            return
        started = finished = False

        async def tracked_send(message: Message) -> None:
            nonlocal started, finished
            if message["type"] == "http.response.start":
                started = True
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                finished = True
            await send(message)

        with anyio.CancelScope() as cancel_scope:
            self._running.add(cancel_scope)
            try:
                await self.app(scope, receive, tracked_send)
            finally:
                self._running.discard(cancel_scope)
        if not cancel_scope.cancelled_caught:
            return
        if not started:
            await _shutting_down(scope, receive, send)
        elif not finished:
            await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _shutting_down(scope: Scope, receive: Receive, send: Send) -> None:
    body = {"error": "unavailable", "error_description": "the server is shutting down"}
    await JSONResponse(body, status_code=503)(scope, receive, send)


class _Server(uvicorn.Server):
    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        # serve_http owns SIGTERM/SIGINT. uvicorn's own handling would re-raise the signal
        # once it has shut down, killing the process by signal instead of exiting cleanly.
        yield


def mcp_app(settings: Settings) -> Starlette:
    """The MCP endpoint at :data:`MCP_PATH`, with DNS-rebinding protection (no token check)."""
    return build_server(settings).streamable_http_app(
        streamable_http_path=MCP_PATH,
        transport_security=transport_security(settings),
        host=settings.host,
    )


async def serve_http(settings: Settings) -> None:
    """Serve MCP over streamable HTTP until SIGTERM or SIGINT."""
    requests = _CancelOnStop(mcp_app(settings))
    asgi: ASGIApp = requests
    if settings.auth_token:
        asgi = BearerTokenMiddleware(requests, settings.auth_token)
    config = uvicorn.Config(
        asgi,
        host=settings.host,
        port=settings.port,
        log_config=None,  # Keep the process's logging (stderr); uvicorn's would use stdout.
        log_level=settings.log_level.lower(),
        lifespan="on",
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_SECONDS,
    )
    server = _Server(config)
    logging.getLogger("uvicorn.access").addFilter(_REDACT_QUERY)  # Added once, however often.
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    logger.info(
        "starting MCP over HTTP at http://%s:%d%s (%s)",
        host,
        settings.port,
        MCP_PATH,
        "bearer token required" if settings.auth_token else "no token",
    )
    failed: SystemExit | None = None
    async with anyio.create_task_group() as group:

        async def stop_on_signal() -> None:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for signum in signals:
                    name = signal.Signals(signum).name
                    if server.should_exit:
                        # Dying now would orphan codex processes; the stop is bounded anyway.
                        logger.info("received %s; already stopping", name)
                        continue
                    logger.info("received %s; stopping", name)
                    server.should_exit = True
                    requests.stop()

        group.start_soon(stop_on_signal)
        try:
            await server.serve()
        except SystemExit as exc:
            # uvicorn exits when it cannot start (it has logged why, e.g. the port is taken);
            # raised here, it would come out of the task group wrapped in an exception group.
            failed = exc
        finally:
            group.cancel_scope.cancel()
    if failed is not None:
        raise failed
