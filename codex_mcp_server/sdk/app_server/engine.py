"""The ``app-server`` engine: one long-lived ``codex app-server`` holding warm threads.

A turn on a loaded thread is a ``turn/start`` request and the notifications that follow, with
no process to start: a fraction of what a ``codex exec`` run costs. The process is started on
first use; if it dies, the turns it ran fail with its exit code and stderr, and the next call
starts a new one, which loads (``thread/resume``) each thread again as it is used.

Cancelling a turn sends ``turn/interrupt``, waits for the turn's end, and then stops what its
commands left running (background terminals survive an interrupt).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, cast

import anyio
import anyio.abc

from ..config import parse_config_override, serialize_config_overrides, to_toml_value
from ..engine import ClosingContext, TurnInput
from ..errors import (
    CodexError,
    CodexIdleTimeoutError,
    CodexNotFoundError,
    InvalidOptionsError,
    NoActiveTurnError,
    TurnCancelledError,
)
from ..events import ThreadEvent, Usage
from ..locate import CodexBinary, find_codex
from ..options import CodexOptions, ThreadOptions, TurnOptions
from ..processes import orphans
from .connection import AppServerError, Connection, Message, RequestHandler
from .events import TurnEvents

__all__ = ["AppServerEngine", "ThreadLockedError"]

_INTERRUPT_WAIT = 5.0
_CANCEL_POLL = 0.1
_WRITER_LOCK = "active writer"


class ThreadLockedError(AppServerError):
    """Another Codex process holds the thread (its writer lock)."""


class AppServerEngine(ClosingContext):
    """Runs turns on one ``codex app-server``; enter it (``async with``) before use."""

    name = "app-server"
    max_loaded_threads = 64
    """Threads kept loaded in the app-server; beyond, idle ones are unsubscribed."""

    def __init__(self, options: CodexOptions | None = None) -> None:
        self._options: CodexOptions = dict(options or {})  # type: ignore[assignment]
        config = self._options.get("config")
        overrides = [
            *(serialize_config_overrides(config) if config is not None else ()),
            *self._options.get("config_overrides", ()),
        ]
        if base_url := self._options.get("base_url"):
            overrides.append(f"openai_base_url={to_toml_value(base_url, 'base_url')}")
        self._global_args = [arg for override in overrides for arg in ("--config", override)]
        self._global_config = dict(parse_config_override(override) for override in overrides)
        self._binary: CodexBinary | None = None
        self._connection: Connection | None = None
        self._starting = anyio.Lock()
        self._stack: AsyncExitStack | None = None
        self._group: anyio.abc.TaskGroup | None = None
        self._usage: dict[str, Usage] = {}
        self._handlers: dict[str, RequestHandler] = {}
        """Who answers codex's requests for each thread whose turn gave ``on_request``."""
        self._active: dict[str, str] = {}
        """The running turn's id per thread (``turn/steer`` must name it)."""
        self._running: set[str] = set()
        self.on_request: RequestHandler | None = None
        """Answers codex's requests (approvals, questions); without it they are declined."""

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> AppServerEngine:
        stack = AsyncExitStack()
        self._group = await stack.enter_async_context(anyio.create_task_group())
        self._stack = stack
        return self

    async def aclose(self) -> None:
        """Stop the app-server and everything under it; returns once they are reaped."""
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.aclose()  # Shielded: it completes even when we are cancelled.
        stack, group = self._stack, self._group
        self._stack = self._group = None
        if stack is not None and group is not None:
            group.cancel_scope.cancel()  # The reader tasks of dead processes, if any.
            await stack.aclose()

    @property
    def binary(self) -> CodexBinary:
        if self._binary is None:
            env = self._options.get("env")
            self._binary = find_codex(
                self._options.get("codex_path_override"), env.get("PATH") if env else None
            )
        return self._binary

    @property
    def pid(self) -> int | None:
        """The app-server's process id, while one runs."""
        connection = self._connection
        return connection.pid if connection is not None and connection.alive else None

    async def connect(self) -> Connection:
        """The running app-server, started (again) if there is none."""
        if self._group is None:
            raise CodexError(
                "The app-server engine runs a process that must be stopped: use "
                "`async with Codex(options, engine='app-server') as codex:`"
            )
        async with self._starting:
            connection = self._connection
            if connection is not None and connection.alive:
                return connection
            if connection is not None:
                await connection.aclose()
            connection = Connection(self.binary, self._global_args, self._env(), self._answer)
            try:
                await connection.open(self._group)
            except CodexNotFoundError:
                self._binary = None  # Look again next time: codex may have been reinstalled.
                raise
            except BaseException:
                await connection.aclose()
                raise
            self._connection = connection
            return connection

    def _env(self) -> dict[str, str]:
        given = self._options.get("env")
        env = dict(given) if given is not None else dict(os.environ)
        if api_key := self._options.get("api_key"):
            env["CODEX_API_KEY"] = api_key
        if self.binary.path_dirs:
            current = env.get("PATH", "")
            env["PATH"] = os.pathsep.join([*self.binary.path_dirs, *([current] if current else [])])
        return env

    # ------------------------------------------------------------------ threads

    async def start_thread(self, options: ThreadOptions) -> str:
        _check_git(options)
        connection = await self.connect()
        result = await connection.call("thread/start", self._thread_params(options))
        thread_id = str(result["thread"]["id"])
        await self._loaded(connection, thread_id)
        return thread_id

    async def resume_thread(self, thread_id: str, options: ThreadOptions) -> None:
        await self._load(await self.connect(), thread_id, options)

    async def _load(self, connection: Connection, thread_id: str, options: ThreadOptions) -> None:
        if thread_id in connection.loaded:
            await self._loaded(connection, thread_id)
            return
        _check_git(options)
        params = {"threadId": thread_id, "excludeTurns": True, **self._thread_params(options)}
        try:
            await connection.call("thread/resume", params)
        except AppServerError as exc:
            if _WRITER_LOCK in exc.message:
                raise ThreadLockedError(
                    exc.method,
                    exc.code,
                    f"Thread {thread_id} is open in another Codex process (the Codex app or "
                    "TUI, `codex exec`, or another server), which holds its writer lock. Close "
                    "it there and try again, or fork it (fork_thread; Thread.fork in the SDK) "
                    "to go on in a new thread with a copy of its history.",
                ) from None
            raise
        await self._loaded(connection, thread_id)

    async def _loaded(self, connection: Connection, thread_id: str) -> None:
        """Note ``thread_id`` as just used; let go of the least recently used idle threads
        past :attr:`max_loaded_threads` (each loaded thread holds its session in codex)."""
        connection.loaded[thread_id] = connection.loaded.pop(thread_id, {})
        idle = [t for t in connection.loaded if t not in self._running and t != thread_id]
        for old in idle[: max(0, len(connection.loaded) - self.max_loaded_threads)]:
            await self.release_thread(old)

    async def release_thread(self, thread_id: str) -> None:
        connection = self._connection
        self._usage.pop(thread_id, None)
        if connection is None or not connection.alive or thread_id not in connection.loaded:
            return
        del connection.loaded[thread_id]
        with contextlib.suppress(CodexError):  # It goes with the process anyway.
            await connection.call("thread/unsubscribe", {"threadId": thread_id})

    async def thread_saved(self, thread_id: str, timeout_s: float) -> bool:
        return True  # The app-server keeps the thread loaded; it persists it itself.

    async def fork_thread(self, thread_id: str, options: ThreadOptions) -> str:
        connection = await self.connect()
        # Forking reads the rollout: it works while another process holds the source.
        params = {**self._thread_params(options), "threadId": thread_id, "excludeTurns": True}
        result = await connection.call("thread/fork", params)
        fork = str(result["thread"]["id"])
        await self._loaded(connection, fork)
        return fork

    async def steer_turn(self, thread_id: str, prompt: str) -> str:
        connection = self._connection
        turn_id = self._active.get(thread_id)
        if connection is None or not connection.alive or turn_id is None:
            raise NoActiveTurnError(thread_id)
        params = {
            "threadId": thread_id,
            "expectedTurnId": turn_id,
            "input": [{"type": "text", "text": prompt}],
        }
        try:
            result = await connection.call("turn/steer", params)
        except AppServerError as exc:
            # The turn ended between our look and codex's (or codex has none running).
            if "active turn" in exc.message or "no active" in exc.message.lower():
                raise NoActiveTurnError(thread_id) from None
            raise
        return str(result.get("turnId") or turn_id) if isinstance(result, dict) else turn_id

    # ------------------------------------------------------------------ turns

    async def run_turn(
        self,
        thread_id: str | None,
        options: ThreadOptions,
        turn: TurnInput,
        turn_options: TurnOptions,
    ) -> AsyncIterator[ThreadEvent]:
        connection = await self.connect()
        if thread_id is None:
            thread_id = await self.start_thread(options)
            yield cast(ThreadEvent, {"type": "thread.started", "thread_id": thread_id})
        else:
            await self._load(connection, thread_id, options)
        idle_timeout = turn_options.get("idle_timeout", self._options.get("idle_timeout"))
        cancel_event = turn_options.get("cancel_event")
        stream = connection.subscribe(thread_id)
        events: TurnEvents | None = None
        if (handler := turn_options.get("on_request")) is not None:
            self._handlers[thread_id] = handler
        self._running.add(thread_id)
        # After the app-server started (on first use, above): it is no orphan of this turn.
        run = orphans.begin()
        try:
            if turn.review_target is not None:
                # The review is a turn of the thread itself (inline), with its own prompt.
                review = {"threadId": thread_id, "target": dict(turn.review_target)}
                started = await connection.call("review/start", {**review, "delivery": "inline"})
            else:
                settings = self._turn_settings(options)
                held = connection.loaded.get(thread_id, {})
                # Codex keeps a turn's settings for the thread's later turns; sending them
                # again when nothing changed costs codex a rebuild of the turn's context.
                changed = {key: value for key, value in settings.items() if held.get(key) != value}
                started = await connection.call(
                    "turn/start", self._turn_params(thread_id, changed, turn)
                )
                held.update(changed)
            events = TurnEvents(str(started["turn"]["id"]), self._usage.get(thread_id))
            self._active[thread_id] = events.turn_id
            last_progress = anyio.current_time()
            last_warning: str | None = None
            while not events.ended:
                wait = (
                    idle_timeout - (anyio.current_time() - last_progress) if idle_timeout else None
                )
                if cancel_event is not None:
                    wait = _CANCEL_POLL if wait is None else min(wait, _CANCEL_POLL)
                message: Message | None = None
                with anyio.move_on_after(wait if wait is not None else float("inf")):
                    try:
                        message = await stream.receive()
                    except anyio.EndOfStream:
                        connection.check_alive()
                        raise CodexError("codex app-server stopped routing this thread") from None
                if message is None:
                    if cancel_event is not None and cancel_event.is_set():
                        raise TurnCancelledError("The turn was cancelled")
                    if idle_timeout and anyio.current_time() - last_progress >= idle_timeout:
                        raise CodexIdleTimeoutError(idle_timeout, last_warning)
                    continue
                params = message.get("params")
                for event in events.feed(
                    str(message.get("method")), params if isinstance(params, dict) else {}
                ):
                    if event["type"] == "error":
                        last_warning = str(event.get("message", ""))
                    else:
                        last_progress = anyio.current_time()
                    yield event
            if events.usage is not None:
                self._usage[thread_id] = events.usage
        finally:
            if handler is not None and self._handlers.get(thread_id) is handler:
                del self._handlers[thread_id]
            if events is not None:
                self._active.pop(thread_id, None)
            with anyio.CancelScope(shield=True):
                if events is not None and not events.ended:
                    await self._interrupt(connection, thread_id, events, stream)
                connection.unsubscribe(thread_id, stream)
                self._running.discard(thread_id)
                # Commands that left the app-server's tree (env -i setsid ...) and were
                # reparented to a subreaper server: see adopt_orphans.
                await orphans.end(run)

    async def _interrupt(
        self,
        connection: Connection,
        thread_id: str,
        events: TurnEvents,
        stream: anyio.abc.ObjectReceiveStream[Message],
    ) -> None:
        with anyio.move_on_after(_INTERRUPT_WAIT):
            try:
                await connection.call(
                    "turn/interrupt", {"threadId": thread_id, "turnId": events.turn_id}
                )
                async for message in stream:
                    params = message.get("params")
                    events.feed(
                        str(message.get("method")), params if isinstance(params, dict) else {}
                    )
                    if events.ended:
                        break
                # An interrupt leaves background terminals running.
                await connection.call("thread/backgroundTerminals/clean", {"threadId": thread_id})
            except CodexError:
                pass  # The turn ended on its own, or the process is gone: stop what is left.
        connection.kill_processes(sorted(events.command_pids))

    # ------------------------------------------------------------------ parameters

    def _thread_params(self, options: ThreadOptions) -> dict[str, Any]:
        params: dict[str, Any] = {"cwd": str(options.get("working_directory") or os.getcwd())}
        if model := options.get("model"):
            params["model"] = model
        if sandbox := options.get("sandbox_mode"):
            params["sandbox"] = str(sandbox)
        if policy := options.get("approval_policy"):
            params["approvalPolicy"] = str(policy)
        if source := options.get("thread_source"):
            params["threadSource"] = source
        config = self._thread_config(options)
        if config:
            params["config"] = config
        return params

    def _thread_config(self, options: ThreadOptions) -> dict[str, Any]:
        """The thread's config as dotted keys, later keys winning as later flags do in exec."""
        config: dict[str, Any] = {}
        if profile := options.get("profile"):
            # app-server takes no profile per thread: layer the profile's file ourselves.
            config.update(load_profile(self._codex_home(), profile))
        for override in options.get("config_overrides", ()):
            key, value = parse_config_override(override)
            config[key] = value
        if effort := options.get("model_reasoning_effort"):
            config["model_reasoning_effort"] = str(effort)
        if (network := options.get("network_access_enabled")) is not None:
            config["sandbox_workspace_write.network_access"] = bool(network)
        if mode := options.get("web_search_mode"):
            config["web_search"] = str(mode)
        elif (enabled := options.get("web_search_enabled")) is not None:
            config["web_search"] = "live" if enabled else "disabled"
        if directories := options.get("additional_directories"):
            config["sandbox_workspace_write.writable_roots"] = [str(d) for d in directories]
        return config

    def _turn_settings(self, options: ThreadOptions) -> dict[str, Any]:
        """The thread's options as ``turn/start`` settings: a thread loaded earlier
        (resume_thread with new options) takes them from there, as exec takes them per run."""
        settings: dict[str, Any] = {}
        if cwd := options.get("working_directory"):
            settings["cwd"] = str(cwd)
        if model := options.get("model"):
            settings["model"] = model
        if policy := options.get("approval_policy"):
            settings["approvalPolicy"] = str(policy)
        if effort := options.get("model_reasoning_effort"):
            settings["effort"] = str(effort)
        if (sandbox := self._sandbox_policy(options)) is not None:
            settings["sandboxPolicy"] = sandbox
        return settings

    def _turn_params(
        self, thread_id: str, settings: Mapping[str, Any], turn: TurnInput
    ) -> dict[str, Any]:
        inputs: list[dict[str, Any]] = [{"type": "text", "text": turn.prompt}]
        inputs += [{"type": "localImage", "path": str(path)} for path in turn.images]
        params: dict[str, Any] = {"threadId": thread_id, "input": inputs, **settings}
        if turn.output_schema is not None:
            params["outputSchema"] = dict(turn.output_schema)
        return params

    def _sandbox_policy(self, options: ThreadOptions) -> dict[str, Any] | None:
        """The thread's sandbox as a turn's ``sandboxPolicy``, from its mode and config."""
        mode = options.get("sandbox_mode")
        if mode is None:
            return None
        if mode == "danger-full-access":
            return {"type": "dangerFullAccess"}
        if mode == "read-only":
            return {"type": "readOnly", "networkAccess": False}
        # Only workspace-write reads config: parsing it (and a profile's file) costs every turn.
        config = {**self._global_config, **self._thread_config(options)}

        def flag(key: str) -> bool:
            return config.get(f"sandbox_workspace_write.{key}") is True

        roots = config.get("sandbox_workspace_write.writable_roots") or []
        return {
            "type": "workspaceWrite",
            "writableRoots": [str(root) for root in roots],
            "networkAccess": flag("network_access"),
            "excludeTmpdirEnvVar": flag("exclude_tmpdir_env_var"),
            "excludeSlashTmp": flag("exclude_slash_tmp"),
        }

    def _codex_home(self) -> Path:
        env: Mapping[str, str] = self._options.get("env") or os.environ
        home = env.get("CODEX_HOME")
        return Path(home).expanduser() if home else Path.home() / ".codex"

    # ------------------------------------------------------------------ codex's requests

    async def _answer(self, method: str, params: Mapping[str, Any]) -> Any:
        thread_id = params.get("threadId")
        handler = self._handlers.get(thread_id) if isinstance(thread_id, str) else None
        handler = handler or self.on_request
        if handler is None:
            return default_answer(method)
        connection = self._connection
        if method == "item/fileChange/requestApproval" and connection is not None:
            changes = connection.file_changes.get(str(params.get("itemId")))
            params = {**params, "changes": changes or []}
        return await handler(method, params)


def _check_git(options: ThreadOptions) -> None:
    """``codex exec``'s rule, which the app-server does not apply: work only inside a Git
    repository unless ``skip_git_repo_check`` says otherwise (the same words as exec's)."""
    if options.get("skip_git_repo_check"):
        return
    directory = Path(options.get("working_directory") or os.getcwd()).absolute()
    if not any((path / ".git").exists() for path in (directory, *directory.parents)):
        raise InvalidOptionsError(
            f"Not inside a trusted directory and --skip-git-repo-check was not specified "
            f"({directory} is not inside a Git repository)."
        )


def default_answer(method: str) -> Any:
    """What to answer codex when nobody can decide: no to everything that asks for consent."""
    if method in ("item/commandExecution/requestApproval", "item/fileChange/requestApproval"):
        return {"decision": "decline"}
    if method in ("execCommandApproval", "applyPatchApproval"):
        return {"decision": "denied"}
    if method == "mcpServer/elicitation/request":
        return {"action": "decline", "content": None}
    if method == "item/tool/requestUserInput":
        return {"answers": {}}
    if method == "item/permissions/requestApproval":
        return {"permissions": {}, "scope": "turn"}
    raise CodexError(f"unsupported request {method}")


def load_profile(codex_home: Path, profile: str) -> dict[str, Any]:
    """The keys of ``$CODEX_HOME/<profile>.config.toml``, flattened to dotted keys."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    if not profile.replace("-", "").replace("_", "").isalnum():
        raise InvalidOptionsError(
            f"profile {profile!r}: expected a name of letters, digits, - or _"
        )
    path = codex_home / f"{profile}.config.toml"
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidOptionsError(f"profile {profile!r} not found: no {path}") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidOptionsError(f"profile {profile!r}: cannot read {path}: {exc}") from None
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for key, child in value.items():
                walk(f"{prefix}.{key}" if prefix else key, child)
        else:
            flat[prefix] = value

    walk("", table)
    return flat
