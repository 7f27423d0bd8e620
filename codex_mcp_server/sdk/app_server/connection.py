"""One ``codex app-server`` process and the JSON-RPC conversation with it.

:class:`Connection` starts the process (in its own session, so that it and everything it
starts can be stopped together), says ``initialize``, and runs one reader task that routes
what codex prints: responses to the waiting :meth:`Connection.call`, notifications to the
subscriber of their thread, and codex's requests to a handler run in a task of its own (an
answer may take a person minutes; the reader never waits for it). Lines of any length are
read; stderr is drained and its tail kept for error messages. When the process dies, every
pending call and subscriber fails with :class:`AppServerExitedError`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from subprocess import PIPE
from typing import Any

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ..errors import CodexError, CodexExecError
from ..events import loads_json
from ..locate import CodexBinary
from ..processes import MARKER_ENV, ProcessTree, read_lines, spawn

__all__ = [
    "AppServerError",
    "AppServerExitedError",
    "Connection",
    "Message",
    "RequestHandler",
]

logger = logging.getLogger("codex_mcp_server.sdk.app_server")

Message = dict[str, Any]
RequestHandler = Callable[[str, Mapping[str, Any]], Awaitable[Any]]
"""Answers one request of codex (``method``, ``params``) with its ``result``."""

CLIENT_NAME = "codex_sdk_py"
_STDERR_TAIL = 2000
_STDERR_KEEP = 64 * 1024
_STOP_GRACE = 2.0
_START_TIMEOUT = 30.0
_OVERLOADED = -32001
_FILE_CHANGES_KEPT = 256
_RETRIES = 3
# Notifications nobody here reads (TurnEvents gives them no event): opting out spares
# codex the work and us the traffic. Each one read costs the reader and the turn's task a
# wake-up: on a warm turn these status notices were 4 of the 12 lines codex sent.
OPT_OUT = (
    "item/commandExecution/outputDelta",
    "item/reasoning/summaryTextDelta",
    "item/reasoning/summaryPartAdded",
    "item/reasoning/textDelta",
    "item/fileChange/outputDelta",
    "item/plan/delta",
    "thread/status/changed",
    "thread/readState/changed",
    "account/rateLimits/updated",
)


class AppServerError(CodexError):
    """Codex answered a request with a JSON-RPC error."""

    def __init__(self, method: str, code: int, message: str) -> None:
        super().__init__(message)
        self.method = method
        self.code = code
        self.message = message


class AppServerExitedError(CodexExecError):
    """The ``codex app-server`` process ended; what it was doing failed with it."""

    def __init__(self, exit_code: int | None, signal: int | None, stderr_tail: str) -> None:
        super().__init__(exit_code, signal, stderr_tail, program="codex app-server")


class _Pending:
    def __init__(self) -> None:
        self.done = anyio.Event()
        self.response: Message | None = None
        self.error: BaseException | None = None


class Connection:
    """A running ``codex app-server``; create with :meth:`open` inside a task group."""

    def __init__(
        self,
        binary: CodexBinary,
        args: Sequence[str],
        env: Mapping[str, str],
        on_request: RequestHandler,
    ) -> None:
        self._command = [binary.path, *args, "app-server", "--listen", "stdio://"]
        self._env = dict(env)
        self._on_request = on_request
        self._process: anyio.abc.Process | None = None
        self._tree: ProcessTree | None = None
        self._pending: dict[str, _Pending] = {}
        self._subscribers: dict[str, MemoryObjectSendStream[Message]] = {}
        self._write_lock = anyio.Lock()
        self._stderr = bytearray()
        self.failure: AppServerExitedError | None = None
        self.loaded: dict[str, dict[str, Any]] = {}
        """Threads loaded in this process (started or resumed by us), least recently used
        first, each with the turn settings its last ``turn/start`` gave (they persist in
        codex for the thread's later turns)."""
        self.file_changes: dict[str, Any] = {}
        """The ``changes`` of file-change items under way, by item id: codex's approval
        request for one carries no diff (the latest few kept)."""
        self.exited = anyio.Event()

    @property
    def alive(self) -> bool:
        return self.failure is None and not self.exited.is_set()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def open(self, group: anyio.abc.TaskGroup) -> None:
        """Start the process and its reader tasks in ``group``, then say ``initialize``."""
        marker = f"{os.getpid()}-{uuid.uuid4().hex}"
        self._env[MARKER_ENV] = marker
        self._process = await spawn(self._command, self._env, PIPE)
        self._tree = ProcessTree(self._process.pid, f"{MARKER_ENV}={marker}")
        group.start_soon(self._read_stdout, group)
        group.start_soon(self._drain_stderr)
        group.start_soon(self._watch_exit)
        from ... import __version__

        with anyio.move_on_after(_START_TIMEOUT) as scope:
            await self._initialize(__version__)
        if scope.cancelled_caught:
            raise CodexError(
                f"codex app-server did not answer `initialize` within {_START_TIMEOUT:g} s "
                f"({self._command[0]}): {self.stderr_tail() or 'nothing on stderr'}"
            )

    async def _initialize(self, version: str) -> None:
        await self.call(
            "initialize",
            {
                "clientInfo": {
                    "name": CLIENT_NAME,
                    "title": "codex_mcp_server",
                    "version": version,
                },
                "capabilities": {
                    "experimentalApi": True,
                    "optOutNotificationMethods": list(OPT_OUT),
                },
            },
        )
        await self.notify("initialized")

    # ------------------------------------------------------------------ requests

    async def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """Send a request and return its result; retries while codex is overloaded."""
        for attempt in range(_RETRIES):
            try:
                return await self._call_once(method, params)
            except AppServerError as exc:
                if exc.code != _OVERLOADED or attempt == _RETRIES - 1:
                    raise
                await anyio.sleep(0.25 * 2**attempt)
        raise AssertionError("unreachable")

    async def _call_once(self, method: str, params: Mapping[str, Any] | None) -> Any:
        self.check_alive()
        request_id = uuid.uuid4().hex
        pending = self._pending[request_id] = _Pending()
        message: Message = {"id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        try:
            await self._write(message)
            await pending.done.wait()
        finally:
            self._pending.pop(request_id, None)
        if pending.error is not None:
            raise pending.error
        assert pending.response is not None
        error = pending.response.get("error")
        if error is not None:
            code = error.get("code") if isinstance(error, dict) else None
            text = error.get("message") if isinstance(error, dict) else None
            raise AppServerError(method, int(code or 0), str(text or error))
        return pending.response.get("result")

    async def notify(self, method: str, params: Mapping[str, Any] | None = None) -> None:
        message: Message = {"method": method}
        if params is not None:
            message["params"] = params
        await self._write(message)

    async def _write(self, message: Message) -> None:
        self.check_alive()
        assert self._process is not None and self._process.stdin is not None
        data = (json.dumps(message, ensure_ascii=False) + "\n").encode("utf-8", "surrogatepass")
        async with self._write_lock:
            try:
                await self._process.stdin.send(data)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, BrokenPipeError):
                await self.exited.wait()
                self.check_alive()
                raise

    def check_alive(self) -> None:
        """Raise why the process is gone (its exit, or a deliberate stop), if it is."""
        if self.failure is not None:
            raise self.failure
        if self.exited.is_set():
            raise AppServerExitedError(None, None, "the process was stopped")

    # ------------------------------------------------------------------ routing

    def subscribe(self, thread_id: str) -> MemoryObjectReceiveStream[Message]:
        """The notifications of ``thread_id`` from now on, until :meth:`unsubscribe`.

        The stream ends (``EndOfStream``) when the process dies; :attr:`failure` says why.
        """
        self.check_alive()
        send, receive = anyio.create_memory_object_stream[Message](math.inf)
        old = self._subscribers.pop(thread_id, None)
        if old is not None:
            old.close()
        self._subscribers[thread_id] = send
        return receive

    def unsubscribe(self, thread_id: str, stream: MemoryObjectReceiveStream[Message]) -> None:
        send = self._subscribers.get(thread_id)
        if send is not None and send.statistics().open_receive_streams <= 1:
            del self._subscribers[thread_id]
            send.close()
        stream.close()

    async def _read_stdout(self, group: anyio.abc.TaskGroup) -> None:
        assert self._process is not None and self._process.stdout is not None
        try:
            async for line in read_lines(self._process.stdout):
                try:
                    message = loads_json(line)
                except (ValueError, RecursionError):
                    logger.warning("codex app-server printed a line that is not JSON: %.200r", line)
                    continue
                if isinstance(message, dict):
                    self._route(message, group)
        finally:
            with anyio.CancelScope(shield=True):
                await self._ended()

    def _route(self, message: Message, group: anyio.abc.TaskGroup) -> None:
        if "method" in message and "id" in message:
            group.start_soon(self._answer, message)
        elif "id" in message:
            pending = self._pending.get(str(message.get("id")))
            if pending is not None:
                pending.response = message
                pending.done.set()
        elif isinstance(message.get("method"), str):
            params = message.get("params")
            self._note_file_change(str(message["method"]), params)
            thread_id = params.get("threadId") if isinstance(params, dict) else None
            send = self._subscribers.get(thread_id) if isinstance(thread_id, str) else None
            if send is not None:
                with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                    send.send_nowait(message)

    def _note_file_change(self, method: str, params: Any) -> None:
        # Here, on the reader, so that it is known before the request that follows it.
        item = params.get("item") if isinstance(params, dict) else None
        if not isinstance(item, dict) or item.get("type") != "fileChange":
            return
        item_id = str(item.get("id"))
        if method == "item/started":
            self.file_changes[item_id] = item.get("changes")
            while len(self.file_changes) > _FILE_CHANGES_KEPT:
                del self.file_changes[next(iter(self.file_changes))]
        elif method == "item/completed":
            self.file_changes.pop(item_id, None)

    async def _answer(self, message: Message) -> None:
        method = str(message.get("method"))
        params = message.get("params")
        reply: Message = {"id": message["id"]}
        try:
            reply["result"] = await self._on_request(
                method, params if isinstance(params, dict) else {}
            )
        except Exception as exc:  # The answer must go out whatever went wrong.
            logger.exception("answering codex's %s failed", method)
            reply["error"] = {"code": -32603, "message": f"the client failed: {exc}"}
        with contextlib.suppress(CodexError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            await self._write(reply)

    async def _watch_exit(self) -> None:
        # npm's `codex` is a node launcher with the real binary as its child: when the
        # launcher dies, the binary would keep our pipes open and the reader would never see
        # the end. Whatever exits, its process group goes with it.
        assert self._process is not None and self._tree is not None
        await self._process.wait()
        if not self.exited.is_set():
            self._tree.signal(signal.SIGKILL)

    async def _drain_stderr(self) -> None:
        assert self._process is not None and self._process.stderr is not None
        with contextlib.suppress(
            anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError
        ):
            while True:
                self._stderr += await self._process.stderr.receive(65536)
                if len(self._stderr) > 2 * _STDERR_KEEP:
                    del self._stderr[:-_STDERR_KEEP]

    async def _ended(self) -> None:
        assert self._process is not None
        returncode = await self._process.wait()
        if self.failure is None and not self.exited.is_set():
            self.failure = AppServerExitedError(
                returncode if returncode >= 0 else None,
                -returncode if returncode < 0 else None,
                self.stderr_tail(),
            )
            logger.warning("%s", self.failure)
            if self._tree is not None:
                # A dead app-server leaves its commands behind (those in sessions of their
                # own too): stop whatever carries its marker.
                self._tree.cancelled = True
                await self._tree.stop(self._process)
        self.exited.set()
        for pending in list(self._pending.values()):
            pending.error = self.failure or AppServerExitedError(None, None, "stopped")
            pending.done.set()
        for send in list(self._subscribers.values()):
            send.close()
        self._subscribers.clear()

    def stderr_tail(self) -> str:
        text = bytes(self._stderr[-4 * _STDERR_TAIL :]).decode("utf-8", "replace")
        text = text.split("Stack backtrace:", 1)[0]
        lines = [line for line in text.splitlines() if line.strip()]
        return "\n".join(lines)[-_STDERR_TAIL:].strip()

    # ------------------------------------------------------------------ stopping

    async def aclose(self) -> None:
        """Close stdin (codex exits), then TERM and KILL what is left; reap it all."""
        process, tree = self._process, self._tree
        if process is None or tree is None:
            return
        with anyio.CancelScope(shield=True):
            self.exited.set()  # A deliberate stop, not a failure.
            if process.stdin is not None:
                with contextlib.suppress(Exception):
                    await process.stdin.aclose()
            with anyio.move_on_after(_STOP_GRACE):
                await process.wait()
            tree.cancelled = True  # Stop the rest: commands codex left behind.
            await tree.stop(process)

    def kill_processes(self, pids: Sequence[int]) -> None:
        """Stop the process trees rooted at ``pids`` (commands a turn started)."""
        if self._process is None:
            return
        for pid in _descendants_of(pids, exclude=self._process.pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def _descendants_of(roots: Sequence[int], exclude: int) -> list[int]:
    """``roots`` and every process below them (by parent pid), deepest last."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return [pid for pid in roots if pid != exclude]
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found: list[int] = []
    queue = [pid for pid in roots if pid != exclude]
    while queue:
        pid = queue.pop()
        if pid in found:
            continue
        found.append(pid)
        queue.extend(children.get(pid, ()))
    return found
