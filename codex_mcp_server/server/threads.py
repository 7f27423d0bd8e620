"""Threads and turns as the tools see them: start, continue, resume, wait, interrupt.

Knows nothing of MCP. A turn runs either in the task of the call that asked for it (its
cancellation stops the turn) or, with ``background``, in the task group of :meth:`running`,
which the server's lifespan holds open; :meth:`shutdown` stops every turn either way.
"""

from __future__ import annotations

import functools
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc

from ..sdk import (
    Codex,
    CodexError,
    CodexOptions,
    Input,
    NoActiveTurnError,
    Thread,
    ThreadOptions,
    UnsupportedByEngineError,
    serialize_config_overrides,
)
from ..sdk.engine import Engine
from .approvals import answer_request
from .models import ApprovalDecision, ThreadOptionsInput
from .policy import (
    PolicyError,
    check_again,
    check_codex_home,
    check_config,
    check_output_schema,
    check_profile,
    check_sandbox,
    enforced_overrides,
    resolve_dir,
    resolve_files,
)
from .progress import one_line
from .registry import Asker, BusyThreadError, Listener, Registry, ThreadRecord, TurnRecord
from .scratch import Scratch
from .sessions import codex_home, find_session, is_thread_id, read_session
from .settings import Settings
from .turns import TurnQueue, execute_turn

__all__ = ["StartFailedError", "ThreadService", "TurnRequest"]

logger = logging.getLogger(__name__)

_STOP_WAIT = 5.0
_HIDE_SECRETS = "shell_environment_policy.ignore_default_excludes=false"
_SAVE_WAIT = 1.0


class StartFailedError(RuntimeError):
    """Codex ended before it named the thread: there is no thread to report on."""


class _RefusedAtStartError(CodexError):
    """A turn's check as it left the queue failed; recorded as the turn's failure."""


def _check_at_start(directories: list[str], settings: Settings, sandbox: str) -> Callable[[], None]:
    def check() -> None:
        try:
            check_again(directories, settings, sandbox)
        except PolicyError as exc:
            raise _RefusedAtStartError(str(exc)) from None

    return check


class TurnRequest:
    """A prompt with its images and output schema, checked against the settings."""

    def __init__(
        self,
        prompt: str,
        images: list[str] | None = None,
        output_schema: dict[str, Any] | None = None,
        review_target: dict[str, Any] | None = None,
    ) -> None:
        check_output_schema(output_schema)
        self.prompt = prompt
        self.images = images or []
        self.output_schema = output_schema
        self.review_target = review_target
        """With it, the turn is Codex's code review of this target; ``prompt`` labels it."""

    def input(self, settings: Settings, cwd: Path) -> Input:
        images = resolve_files(self.images, settings, cwd)
        if not images:
            return self.prompt
        entries: Input = [{"type": "text", "text": self.prompt}]
        return [*entries, *({"type": "local_image", "path": path} for path in images)]


class ThreadService:
    """The registry and every running turn, under the server's settings."""

    def __init__(
        self, settings: Settings, registry: Registry | None = None, engine: Engine | None = None
    ) -> None:
        self.settings = settings
        self.registry = registry or Registry()
        self.registry.on_leave = self._left
        self.codex = Codex(_codex_options(settings), engine=engine or settings.backend)
        self._queue = TurnQueue(settings.max_concurrent_turns)
        self._active: set[TurnRecord] = set()
        self._group: anyio.abc.TaskGroup | None = None
        self._scratch: Scratch | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[ThreadService]:
        """Hold the engine and a task group for background turns; stop every turn on exit."""
        async with self.codex, anyio.create_task_group() as group:
            self._group = group
            try:
                yield self
            finally:
                self._group = None
                await self.shutdown()
                group.cancel_scope.cancel()
                if self._scratch is not None:
                    self._scratch.close()
                    self._scratch = None

    def scratch(self) -> Path:
        """The server's private directory for files codex reads (instructions, schemas).

        Under Codex's home, which no thread can write (see ``check_codex_home``; with /tmp
        writable, a command of one thread could rewrite another's instructions there), made
        0700 for the server's user, and removed when the server stops (or, if it is killed,
        by the next server: see :mod:`.scratch`).
        """
        if self._scratch is None:
            self._scratch = Scratch(codex_home() / "codex-mcp-server")
        return self._scratch.path

    def text_file(self, text: str) -> str:
        """A file holding ``text``, for config keys that take a path.

        Give it to the thread that reads it with :meth:`keep_files`, or remove it.
        """
        fd, path = tempfile.mkstemp(dir=self.scratch(), suffix=".md")
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        return path

    def keep_files(self, record: ThreadRecord | None, files: list[str]) -> None:
        """Keep ``files`` while ``record``'s thread stays in the registry (none: remove them)."""
        if record is not None and self.registry.find(record.thread_id) is record:
            record.files += files
        else:  # It has left already (codex had not saved it, say).
            _remove_files(files)

    # ------------------------------------------------------------------ turns

    async def start(
        self,
        options: ThreadOptionsInput,
        request: TurnRequest,
        listener: Listener | None = None,
        *,
        background: bool = False,
        server_config: dict[str, Any] | None = None,
    ) -> tuple[ThreadRecord, TurnRecord]:
        """A new thread and its first turn.

        ``server_config`` is config the server itself sets (the drop-in's instruction
        files), after the client's, unchecked.
        """
        thread_options, cwd = self._prepare(options, server_config)
        input = request.input(self.settings, cwd)
        thread = self.codex.start_thread(thread_options)
        turn = TurnRecord("turn-1", request.prompt)
        directories = [str(cwd), *thread_options.get("additional_directories", [])]
        turn.before_start = _check_at_start(
            directories, self.settings, str(thread_options["sandbox_mode"])
        )
        snapshot = _snapshot(options)
        started: list[ThreadRecord] = []

        def on_started(thread_id: str) -> ThreadRecord:
            record = ThreadRecord(thread_id, thread, str(cwd), snapshot)
            record.additional_directories = list(thread_options.get("additional_directories", []))
            record.turns.append(turn)
            self.registry.add(record)
            started.append(record)
            return record

        await self._launch(thread, turn, input, request, on_started, cwd, listener, background)
        if not started:
            reason = turn.error or f"the turn ended as {turn.status} before codex named it"
            raise StartFailedError(f"Codex could not start the thread: {reason}")
        return started[0], turn

    async def follow_up(
        self,
        thread_id: str,
        request: TurnRequest,
        listener: Listener | None = None,
        *,
        background: bool = False,
    ) -> tuple[ThreadRecord, TurnRecord]:
        """The next turn of a thread: one this server knows, or one Codex saved."""
        if self.registry.find(thread_id) is None and (path := find_session(thread_id)):
            # Hosts such as `codex exec` start a new server for each of their sessions: resume
            # the thread where it ran (it passed or skipped the git check there before).
            past = await anyio.to_thread.run_sync(read_session, path)
            options = ThreadOptionsInput(working_directory=past.cwd, skip_git_repo_check=True)
            resumed, turn = await self.resume(
                thread_id, options, request, listener, background=background
            )
            assert turn is not None
            return resumed, turn
        record = self.registry.get(thread_id)
        _ensure_idle(record)
        sandbox = record.options.get("sandbox_mode") or self.settings.default_sandbox
        directories = [record.working_directory, *record.additional_directories]
        check_again(directories, self.settings, sandbox)
        cwd = Path(record.working_directory)
        input = request.input(self.settings, cwd)
        turn = record.new_turn(request.prompt)
        turn.before_start = _check_at_start(directories, self.settings, sandbox)
        self.registry.touch(record)
        await self._launch(
            record.thread, turn, input, request, lambda _: record, cwd, listener, background
        )
        return record, turn

    async def resume(
        self,
        thread_id: str,
        options: ThreadOptionsInput,
        request: TurnRequest | None,
        listener: Listener | None = None,
        *,
        background: bool = False,
    ) -> tuple[ThreadRecord, TurnRecord | None]:
        """Register a thread codex persisted, with ``options``; run ``request`` if given."""
        known = self.registry.find(thread_id)
        if known is not None:
            _ensure_idle(known)
        path = self._session_path(thread_id)
        thread_options, cwd = self._prepare(options)
        input = request.input(self.settings, cwd) if request else ""
        thread = self.codex.resume_thread(thread_id, thread_options)
        try:
            await thread.start()  # Loads it where the engine holds threads: fails early.
        except CodexError as exc:
            raise StartFailedError(f"Codex could not resume thread {thread_id}: {exc}") from None
        record = ThreadRecord(thread_id, thread, str(cwd), _snapshot(options))
        record.additional_directories = list(thread_options.get("additional_directories", []))
        if known is not None:
            record.turns, record.cumulative_usage = known.turns, known.cumulative_usage
        past = await anyio.to_thread.run_sync(read_session, path)
        record.earlier_turns = max(0, past.turns - len(record.turns))
        record.cumulative_usage = past.usage or record.cumulative_usage
        self.registry.add(record)
        if request is None:
            return record, None
        turn = await self._run_new_turn(
            record, thread_options, input, request, listener, background
        )
        return record, turn

    async def steer(self, thread_id: str, prompt: str) -> tuple[ThreadRecord, TurnRecord]:
        """Add ``prompt`` to the thread's running turn (the model reads it on its next step)."""
        record = self.get(thread_id)
        turn = record.running_turn
        # The engine says why not: no live thread (exec), or no turn running in codex.
        await self.codex.engine.steer_turn(thread_id, prompt)
        if turn is None:  # Codex took it as this server's turn ended: it went to no turn.
            raise NoActiveTurnError(thread_id)
        turn.prompt = f"{turn.prompt}\n\n[steered] {prompt}"
        await turn.publish(f"steered: {one_line(prompt, 120)}")
        return record, turn

    async def review(
        self,
        options: ThreadOptionsInput,
        thread_id: str | None,
        request: TurnRequest,
        listener: Listener | None = None,
        *,
        background: bool = False,
    ) -> tuple[ThreadRecord, TurnRecord]:
        """Codex's code review of ``request.review_target`` as a turn: of ``thread_id``, or of
        a new thread in ``options.working_directory``."""
        if self.codex.engine.name == "exec":
            raise UnsupportedByEngineError("A code review", "exec")
        if thread_id is not None:
            return await self.follow_up(thread_id, request, listener, background=background)
        return await self.start(options, request, listener, background=background)

    async def fork(
        self,
        source_id: str,
        options: ThreadOptionsInput,
        request: TurnRequest | None,
        listener: Listener | None = None,
        *,
        background: bool = False,
    ) -> tuple[ThreadRecord, TurnRecord | None]:
        """A new thread with ``source_id``'s history copied, registered as a started thread
        (with the source's options, those given winning); runs ``request`` if given."""
        known = self.registry.find(source_id)
        given = options.model_dump(include=set(ThreadOptionsInput.model_fields), exclude_unset=True)
        if known is not None:
            options = ThreadOptionsInput(**{**known.options, **given})
            if options.working_directory is None:
                options.working_directory = known.working_directory
        else:
            path = self._session_path(source_id)
            if options.working_directory is None:
                past = await anyio.to_thread.run_sync(read_session, path)
                options = ThreadOptionsInput(
                    **{**given, "working_directory": past.cwd, "skip_git_repo_check": True}
                )
        thread_options, cwd = self._prepare(options)
        source = known.thread if known is not None else self.codex.resume_thread(source_id)
        try:
            thread = await source.fork(thread_options)
        except UnsupportedByEngineError:
            raise
        except CodexError as exc:
            raise StartFailedError(f"Codex could not fork thread {source_id}: {exc}") from None
        assert thread.id is not None
        record = ThreadRecord(thread.id, thread, str(cwd), _snapshot(options))
        record.additional_directories = list(thread_options.get("additional_directories", []))
        self.registry.add(record)
        if request is None:
            return record, None
        input = request.input(self.settings, cwd)
        turn = await self._run_new_turn(
            record, thread_options, input, request, listener, background
        )
        return record, turn

    async def _run_new_turn(
        self,
        record: ThreadRecord,
        thread_options: ThreadOptions,
        input: Input,
        request: TurnRequest,
        listener: Listener | None,
        background: bool,
    ) -> TurnRecord:
        """The first turn of a thread just registered (resumed or forked)."""
        turn = record.new_turn(request.prompt)
        directories = [record.working_directory, *record.additional_directories]
        turn.before_start = _check_at_start(
            directories, self.settings, str(thread_options["sandbox_mode"])
        )
        cwd = Path(record.working_directory)
        await self._launch(
            record.thread, turn, input, request, lambda _: record, cwd, listener, background
        )
        return turn

    def _session_path(self, thread_id: str) -> Path:
        if not is_thread_id(thread_id):
            raise PolicyError(
                f"No Codex session {thread_id!r}: that is not a whole Codex thread id. Thread "
                "ids are UUIDs such as 0199a213-81c0-7800-8aa1-bbab2a035a53, and only the "
                "exact, full id resumes a thread: pass it as list_threads or a turn result "
                "gave it."
            )
        if (path := find_session(thread_id)) is None:
            raise PolicyError(
                f"No Codex session {thread_id!r} under {codex_home() / 'sessions'}: Codex has "
                "not persisted a thread with this id here. Check the id (list_threads shows the "
                "ones this server knows), or point CODEX_HOME at the Codex home that has it."
            )
        return path

    async def wait(
        self, thread_id: str, timeout_s: float, listener: Listener | None = None
    ) -> tuple[ThreadRecord, TurnRecord]:
        """The thread's running turn once it ends, or still running after ``timeout_s``.

        Without a running turn, the latest turn as it ended.
        """
        record = self.get(thread_id)
        if not record.turns:
            raise PolicyError(f"Thread {thread_id} has run no turn yet; use run_turn.")
        turn = record.turns[-1]
        if turn.status == "running":
            async with turn.listening(listener):
                with anyio.move_on_after(timeout_s):
                    await turn.ended_or_waiting()
        return record, turn

    async def answer_approval(
        self,
        thread_id: str,
        request_id: str,
        decision: ApprovalDecision,
        content: dict[str, Any] | None = None,
    ) -> tuple[ThreadRecord, TurnRecord]:
        """Give codex the decision on one of its pending requests."""
        record = self.get(thread_id)
        if self.codex.engine.name == "exec":
            raise UnsupportedByEngineError("Answering Codex's approvals", "exec")
        turn = record.running_turn
        approval = turn.pending.get(request_id) if turn is not None else None
        if turn is None or approval is None:
            waiting = ", ".join(turn.pending) if turn is not None else ""
            raise PolicyError(
                f"Thread {thread_id} has no pending request {request_id!r}"
                + (f"; pending: {waiting}." if waiting else " (nothing waits for an answer).")
                + " A request is declined when its turn ends or nobody answers it within "
                f"{self.settings.approval_timeout:g} s; get_thread shows what waits."
            )
        if decision not in approval.decisions:
            raise PolicyError(
                f"Request {request_id} of thread {thread_id} takes "
                f"{' or '.join(approval.decisions)}, not {decision!r}."
            )
        approval.decide(decision, "answer_approval", content)
        turn.settle_approval(approval)
        return record, turn

    async def interrupt(self, thread_id: str) -> tuple[ThreadRecord, TurnRecord | None]:
        """Stop the thread's running turn; returns once its codex processes are gone."""
        record = self.get(thread_id)
        turn = record.running_turn
        if turn is not None:
            await self._stop(turn)
        return record, turn

    def get(self, thread_id: str) -> ThreadRecord:
        """The thread's record; for one Codex saved but this server has not seen, an error
        that says so and how to continue it."""
        if self.registry.find(thread_id) is None and (path := find_session(thread_id)):
            raise PolicyError(
                f"Thread {thread_id} did not run in this server (it ran in an earlier one, or "
                f"in the codex CLI; hosts such as `codex exec` start a new server each time), "
                f"so no turn of it runs here. Codex saved it in {path}: run_turn continues it "
                "where it ran, resume_thread does with the options you give."
            )
        return self.registry.get(thread_id)

    async def shutdown(self) -> None:
        """Stop every running turn; returns when their codex processes are gone."""
        with anyio.CancelScope(shield=True):
            async with anyio.create_task_group() as group:
                for turn in list(self._active):
                    group.start_soon(self._stop, turn)

    # ---------------------------------------------------------------- helpers

    async def _launch(
        self,
        thread: Thread,
        turn: TurnRecord,
        input: Input,
        request: TurnRequest,
        on_started: Callable[[str], ThreadRecord],
        cwd: Path,
        listener: Listener | None,
        background: bool,
    ) -> None:
        async def execute() -> None:
            self._active.add(turn)
            try:
                await execute_turn(
                    thread,
                    turn,
                    input,
                    request.output_schema,
                    on_thread_started=on_started,
                    cwd=str(cwd),
                    heartbeat_interval=self.settings.heartbeat_interval,
                    queue=self._queue,
                    on_request=functools.partial(
                        answer_request, turn, self.settings.approval_timeout, str(cwd)
                    ),
                    review_target=request.review_target,
                )
            finally:
                self._active.discard(turn)
                if turn.status != "completed":
                    with anyio.CancelScope(shield=True):
                        await self._forget_unsaved(turn)
                self.registry.settle(turn)

        if not background and not self._may_wait_for_an_answer(thread, listener):
            async with turn.listening(listener):
                await execute()
            return
        if self._group is None:
            raise RuntimeError("background turns need ThreadService.running()")
        if not background:
            # Nobody at this call can answer Codex's questions: the turn runs in the server's
            # group, and the call returns when one waits (answer_approval answers it).
            self._group.start_soon(_guarded, execute, turn)
            try:
                async with turn.listening(listener):
                    await turn.ended_or_waiting()
            except anyio.get_cancelled_exc_class():
                turn.stop_reason = "The turn was cancelled by the client."
                with anyio.CancelScope(shield=True):
                    await self._stop(turn)
                raise
            return
        self._group.start_soon(_guarded, execute, turn)
        # The caller needs the thread id, so wait for codex to name the thread (after any
        # wait in the queue), not for the turn.
        try:
            async with turn.listening(listener):  # Says so if the turn queues.
                await turn.thread_known.wait()
        except anyio.get_cancelled_exc_class():
            if not turn.thread_known.is_set():
                # The caller gave up before it learnt the thread id, most likely while the
                # turn queued: nobody asked for the turn any more, so it must not run later
                # (a new thread would run a prompt its client has no id for).
                turn.stop_reason = "The turn was cancelled by the client before it started."
                with anyio.CancelScope(shield=True):
                    await self._stop(turn)
            raise

    def _may_wait_for_an_answer(self, thread: Thread, listener: Listener | None) -> bool:
        """Whether codex may ask during a turn of ``thread`` and this caller cannot answer."""
        if self.codex.engine.name == "exec" or thread.options.get("approval_policy") == "never":
            return False
        if self.settings.tool_set == "codex":
            return False  # No answer_approval: the request waits for its timeout, then no.
        return not (isinstance(listener, Asker) and listener.can_ask)

    async def _forget_unsaved(self, turn: TurnRecord) -> None:
        # Codex saves a new thread a few tenths of a second after naming it; stopped before
        # that, the thread cannot be resumed, so it must not look like one that can.
        if turn.thread_id is None or await self.codex.engine.thread_saved(turn.thread_id, 0):
            return
        self.registry.remove(turn.thread_id)
        turn.error = (
            f"{turn.error or 'The turn ended early.'} Codex had not saved thread "
            f"{turn.thread_id} yet, so it cannot be continued: start a new thread."
        )

    async def _stop(self, turn: TurnRecord) -> None:
        if turn.thread_id is not None:
            # Give codex the moment it needs to save a new thread, so that it stays usable.
            await self.codex.engine.thread_saved(turn.thread_id, _SAVE_WAIT)
        turn.cancel_scope.cancel()
        with anyio.move_on_after(_STOP_WAIT):
            await turn.done.wait()

    def _left(self, record: ThreadRecord) -> None:
        _remove_files(record.files)
        record.files = []
        if self.registry.find(record.thread_id) is None and self._group is not None:
            # Let other Codex processes (the user's app, TUI, another server) take the thread.
            self._group.start_soon(self.codex.engine.release_thread, record.thread_id)

    def _prepare(
        self, args: ThreadOptionsInput, server_config: dict[str, Any] | None = None
    ) -> tuple[ThreadOptions, Path]:
        settings = self.settings
        cwd = resolve_dir(args.working_directory, settings, "working_directory")
        sandbox = args.sandbox_mode or settings.default_sandbox
        check_sandbox(sandbox, settings)
        extra = [
            str(resolve_dir(d, settings, "additional directory", cwd))
            for d in args.additional_directories or ()
        ]
        options: ThreadOptions = {
            "working_directory": str(cwd),
            "sandbox_mode": sandbox,
            "approval_policy": args.approval_policy or settings.approval_policy,
            "skip_git_repo_check": args.skip_git_repo_check,
        }
        if model := args.model or settings.default_model:
            options["model"] = model
        if args.profile:
            options["profile"] = args.profile
        if args.reasoning_effort:
            options["model_reasoning_effort"] = args.reasoning_effort
        if args.network_access is not None:
            options["network_access_enabled"] = args.network_access
        if args.web_search:
            options["web_search_mode"] = args.web_search
        if extra:
            options["additional_directories"] = extra
        try:
            thread_config = serialize_config_overrides(args.config) if args.config else []
        except CodexError as exc:
            raise PolicyError(f"config: {exc}") from None
        check_config(args.config, settings)
        check_profile(args.profile, settings)
        check_codex_home([cwd, *map(Path, extra)], sandbox)
        own = serialize_config_overrides(server_config) if server_config else []
        # Last, so no thread config undoes it: commands do not see *KEY*/*SECRET*/*TOKEN*
        # variables (the server's API keys and its HTTP token); codex loads no project
        # config and keeps /tmp read-only when it must (see enforced_overrides).
        options["config_overrides"] = [
            *thread_config,
            *own,
            _HIDE_SECRETS,
            *enforced_overrides(settings, cwd),
        ]
        return options, cwd


def _codex_options(settings: Settings) -> CodexOptions:
    options: CodexOptions = {
        "config_overrides": list(settings.config),
        "env": {k: v for k, v in os.environ.items() if k != "CODEX_MCP_AUTH_TOKEN"},
        # Under Codex's home, which no thread may write (see check_codex_home).
        "scratch_directory": str(codex_home() / "codex-mcp-server"),
    }
    if settings.codex_path:
        options["codex_path_override"] = settings.codex_path
    if settings.idle_timeout:
        options["idle_timeout"] = settings.idle_timeout
    return options


def _remove_files(paths: list[str]) -> None:
    for path in paths:
        Path(path).unlink(missing_ok=True)


def _ensure_idle(record: ThreadRecord) -> None:
    if (turn := record.running_turn) is not None:
        raise BusyThreadError(record.thread_id, turn.turn_id)


async def _guarded(execute: Callable[[], Any], turn: TurnRecord) -> None:
    # A bug in one background turn must not take the server's task group (and every other
    # turn) down with it.
    try:
        await execute()
    except Exception:
        logger.exception("background %s failed", turn.turn_id)
        if turn.status == "running":
            turn.finish("failed", "The server failed while running this turn; see its log.")
        turn.thread_known.set()
        turn.done.set()


def _snapshot(options: ThreadOptionsInput) -> dict[str, Any]:
    return options.model_dump(
        include=set(ThreadOptionsInput.model_fields), exclude_none=True, mode="json"
    )
