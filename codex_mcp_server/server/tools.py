"""The MCP tools: thin adapters from tool calls to threads, turns and the registry.

Each tool takes one pydantic input model (see ``models.py``) and returns a result model as
``structuredContent`` with a short text. Problems a model can fix come back as tool errors
(``isError``) whose message names the problem and the fix.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, TypeVar

import anyio
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, ConfigDict, ValidationError

from ..sdk import Codex, CodexError, CodexOptions, Input, ThreadOptions, serialize_config_overrides
from .actions import describe_actions, summarize_actions
from .models import (
    GetThreadInput,
    InterruptResult,
    InterruptTurnInput,
    ListThreadsInput,
    ResumeResult,
    ResumeThreadInput,
    RunTurnInput,
    StartThreadInput,
    ThreadInfo,
    ThreadList,
    ThreadOptionsInput,
    ThreadSummary,
    TurnInfo,
    TurnResult,
)
from .policy import PolicyError, check_output_schema, check_sandbox, resolve_dir, resolve_files
from .registry import BusyThreadError, Registry, ThreadRecord, TurnRecord, UnknownThreadError
from .sessions import codex_home, find_session
from .settings import Settings
from .turns import Report, execute_turn

__all__ = ["CodexTools", "build_tools"]

logger = logging.getLogger(__name__)

_MAX_TEXT_RESPONSE = 20_000
_MAX_ITEM_OUTPUT = 65_536
_INTERRUPT_WAIT = 5.0


class CodexTools:
    """The state and behaviour behind the tools: settings, registry and running turns."""

    def __init__(self, settings: Settings, registry: Registry | None = None) -> None:
        self.settings = settings
        self.registry = registry or Registry()
        self._active: set[TurnRecord] = set()

    # ------------------------------------------------------------------ turn tools

    async def start_thread(self, args: StartThreadInput, report: Report) -> CallToolResult:
        thread_options, cwd, codex = self._prepare_thread(args)
        images = self._images(args.images, cwd)
        check_output_schema(args.output_schema)
        thread = codex.start_thread(thread_options)
        turn = TurnRecord("turn-1", args.prompt, has_output_schema=args.output_schema is not None)
        options = _options_snapshot(args)

        def on_started(thread_id: str) -> ThreadRecord:
            record = ThreadRecord(thread_id, thread, str(cwd), options, turns=[turn])
            self.registry.add(record)
            return record

        record = await self._run(
            thread, turn, args.prompt, images, args.output_schema, on_started, report, cwd
        )
        if record is None:
            raise ToolError(f"Codex could not start the thread: {turn.error}")
        return self._turn_result(record, turn)

    async def run_turn(self, args: RunTurnInput, report: Report) -> CallToolResult:
        record = self.registry.get(args.thread_id)
        self._ensure_idle(record)
        cwd = Path(record.working_directory)
        images = self._images(args.images, cwd)
        check_output_schema(args.output_schema)
        turn = TurnRecord(record.next_turn_id(), args.prompt, args.output_schema is not None)
        record.turns.append(turn)
        await self._run(
            record.thread,
            turn,
            args.prompt,
            images,
            args.output_schema,
            lambda _id: record,
            report,
            cwd,
        )
        return self._turn_result(record, turn)

    async def resume_thread(self, args: ResumeThreadInput, report: Report) -> CallToolResult:
        known = self.registry.find(args.thread_id)
        if known is not None:
            self._ensure_idle(known)
        if find_session(args.thread_id) is None:
            raise ToolError(
                f"No Codex session {args.thread_id!r} under {codex_home() / 'sessions'}: "
                "Codex has not persisted a thread with this id here. Check the id (list_threads "
                "shows the ones this server knows), or point CODEX_HOME at the Codex home that "
                "has it."
            )
        thread_options, cwd, codex = self._prepare_thread(args)
        images = self._images(args.images, cwd)
        check_output_schema(args.output_schema)
        thread = codex.resume_thread(args.thread_id, thread_options)
        record = ThreadRecord(args.thread_id, thread, str(cwd), _options_snapshot(args))
        if known is not None:
            record.turns, record.cumulative_usage = known.turns, known.cumulative_usage
        self.registry.add(record)
        if args.prompt is None:
            return _result(
                _thread_info(record), f"Thread {args.thread_id} resumed; continue it with run_turn."
            )
        turn = TurnRecord(record.next_turn_id(), args.prompt, args.output_schema is not None)
        record.turns.append(turn)
        await self._run(
            thread, turn, args.prompt, images, args.output_schema, lambda _id: record, report, cwd
        )
        return self._turn_result(record, turn)

    # -------------------------------------------------------------- reading tools

    async def get_thread(self, args: GetThreadInput) -> CallToolResult:
        record = self.registry.get(args.thread_id)
        info = _thread_info(record)
        lines = [
            f"Thread {record.thread_id}: {record.status}, {len(record.turns)} turn(s), "
            f"in {record.working_directory}"
        ]
        for turn in info.turns:
            lines.append(
                f"{turn.turn_id} [{turn.status}] {_first_line(turn.prompt, 80)}"
                + (f" → {_first_line(turn.final_response, 120)}" if turn.final_response else "")
                + (f" (error: {_first_line(turn.error, 200)})" if turn.error else "")
            )
        return _result(info, "\n".join(lines))

    async def list_threads(self, args: ListThreadsInput) -> CallToolResult:
        summaries = [
            ThreadSummary(
                thread_id=r.thread_id,
                status="running" if r.running_turn else "idle",
                working_directory=r.working_directory,
                turns=len(r.turns),
                last_prompt=_first_line(r.turns[-1].prompt, 100) if r.turns else "",
                updated_at=_iso(r.turns[-1].started_at if r.turns else r.created_at),
            )
            for r in self.registry.newest_first()
        ]
        text = "\n".join(
            f"{s.thread_id} [{s.status}] {s.turns} turn(s) {s.working_directory}: {s.last_prompt}"
            for s in summaries
        )
        return _result(ThreadList(threads=summaries), text or "No threads yet.")

    async def interrupt_turn(self, args: InterruptTurnInput) -> CallToolResult:
        record = self.registry.get(args.thread_id)
        turn = record.running_turn
        if turn is None:
            result = InterruptResult(thread_id=record.thread_id, turn_id=None, status="idle")
            return _result(result, f"Thread {record.thread_id} has no running turn.")
        await self._stop(turn)
        result = InterruptResult(
            thread_id=record.thread_id, turn_id=turn.turn_id, status="interrupted"
        )
        return _result(result, f"Stopped {turn.turn_id} of thread {record.thread_id}.")

    # --------------------------------------------------------------------- shutdown

    async def shutdown(self) -> None:
        """Stop every running turn; returns when their codex processes are gone."""
        with anyio.CancelScope(shield=True):
            async with anyio.create_task_group() as group:
                for turn in list(self._active):
                    group.start_soon(self._stop, turn)

    # -------------------------------------------------------------------- helpers

    async def _stop(self, turn: TurnRecord) -> None:
        turn.cancel_scope.cancel()
        with anyio.move_on_after(_INTERRUPT_WAIT):
            await turn.done.wait()

    async def _run(
        self,
        thread: Any,
        turn: TurnRecord,
        prompt: str,
        images: list[str],
        schema: dict[str, Any] | None,
        on_started: Callable[[str], ThreadRecord],
        report: Report,
        cwd: Path,
    ) -> ThreadRecord | None:
        input: Input = prompt
        if images:
            input = [{"type": "text", "text": prompt}]
            input += [{"type": "local_image", "path": path} for path in images]
        self._active.add(turn)
        try:
            return await execute_turn(
                thread,
                turn,
                input,
                schema,
                on_thread_started=on_started,
                report=report,
                cwd=str(cwd),
                heartbeat_interval=self.settings.heartbeat_interval,
            )
        finally:
            self._active.discard(turn)

    def _ensure_idle(self, record: ThreadRecord) -> None:
        if (turn := record.running_turn) is not None:
            raise BusyThreadError(record.thread_id, turn.turn_id)

    def _images(self, images: list[str] | None, cwd: Path) -> list[str]:
        return resolve_files(images, self.settings, cwd)

    def _prepare_thread(self, args: ThreadOptionsInput) -> tuple[ThreadOptions, Path, Codex]:
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
        codex_options: CodexOptions = {"config_overrides": [*settings.config, *thread_config]}
        if settings.codex_path:
            codex_options["codex_path_override"] = settings.codex_path
        if settings.idle_timeout:
            codex_options["idle_timeout"] = settings.idle_timeout
        return options, cwd, Codex(codex_options)

    def _turn_result(self, record: ThreadRecord, turn: TurnRecord) -> CallToolResult:
        result = _turn_model(TurnResult, record, turn)
        parts = []
        if turn.final_response:
            parts.append(_cap(turn.final_response, _MAX_TEXT_RESPONSE))
        if turn.status != "completed":
            parts.append(f"Turn {turn.status}: {turn.error}")
        summary = describe_actions(result.actions, cwd=record.working_directory)
        if summary:
            parts.append(summary)
        parts.append(f"[thread_id {record.thread_id}, {turn.turn_id}, {turn.status}]")
        return _result(result, "\n\n".join(parts), is_error=turn.status != "completed")


def _thread_info(record: ThreadRecord) -> ThreadInfo:
    return ThreadInfo(
        thread_id=record.thread_id,
        status="running" if record.running_turn else "idle",
        working_directory=record.working_directory,
        options=record.options,
        created_at=_iso(record.created_at),
        turns=[_turn_model(TurnInfo, record, t) for t in record.turns],
    )


ResultT = TypeVar("ResultT", bound=TurnResult)


def _turn_model(model: type[ResultT], record: ThreadRecord, turn: TurnRecord) -> ResultT:
    fields: dict[str, Any] = dict(
        thread_id=record.thread_id,
        turn_id=turn.turn_id,
        status=turn.status,
        final_response=turn.final_response,
        structured_output=turn.structured_output,
        actions=summarize_actions(turn.items),
        usage=turn.usage,
        error=turn.error,
    )
    if model is TurnInfo:
        fields.update(
            prompt=turn.prompt,
            started_at=_iso(turn.started_at),
            finished_at=_iso(turn.finished_at) if turn.finished_at else None,
            items=[_shorten_item(item) for item in turn.items],
        )
    return model(**fields)


def _shorten_item(item: dict[str, Any]) -> dict[str, Any]:
    output = item.get("aggregated_output")
    if isinstance(output, str) and len(output) > _MAX_ITEM_OUTPUT:
        return {**item, "aggregated_output": _cap(output, _MAX_ITEM_OUTPUT)}
    return item


def _options_snapshot(args: ThreadOptionsInput) -> dict[str, Any]:
    return args.model_dump(
        include=set(ThreadOptionsInput.model_fields), exclude_none=True, mode="json"
    )


def _result(model: BaseModel, text: str, *, is_error: bool = False) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=model.model_dump(mode="json"),
        is_error=is_error,
    )


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit} more characters; see get_thread]"


def _first_line(text: str, limit: int) -> str:
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds")


# ------------------------------------------------------------------ registration

_WRITES = ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=True
)
_READS = ToolAnnotations(read_only_hint=True, open_world_hint=False)
_STOPS = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)

_DESCRIPTIONS = {
    "start_thread": """Start a new Codex thread and run its first turn. Codex is OpenAI's coding
agent: it reads code, runs commands and edits files in working_directory (within the sandbox)
to do what the prompt asks. Blocks until the turn ends, streaming progress (commands, edits,
plans). Returns thread_id (keep it to continue with run_turn), the final response, a compact
record of actions, and token usage.""",
    "run_turn": """Run the next turn of a thread this server knows, with the thread's history
and options: use it for follow-ups ("now fix it", "add tests"). Blocks until the turn ends,
streaming progress. A thread runs one turn at a time. For a thread from before a server
restart, call resume_thread first.""",
    "resume_thread": """Make a thread that Codex persisted earlier (in a previous server run, or
with the codex CLI) known to this server, optionally with new options; with prompt, also run a
turn. Afterwards continue it with run_turn.""",
    "get_thread": """Show a thread: its options, status (idle or running) and every turn with its
prompt, result, actions, usage and items (full command output and messages).""",
    "list_threads": "List the threads this server holds, newest first, one line each.",
    "interrupt_turn": """Stop the running turn of a thread. When this returns, the turn is recorded
as interrupted and its codex processes are gone. The thread stays usable.""",
}

ToolHandler = Callable[[Any, Report], Awaitable[CallToolResult]]


def build_tools(tools: CodexTools) -> list[Tool]:
    """The default tool set, bound to ``tools``."""
    return [
        _tool(
            "start_thread",
            "Start a Codex thread",
            StartThreadInput,
            TurnResult,
            tools.start_thread,
            _WRITES,
        ),
        _tool("run_turn", "Run a turn", RunTurnInput, TurnResult, tools.run_turn, _WRITES),
        _tool(
            "resume_thread",
            "Resume a persisted thread",
            ResumeThreadInput,
            ResumeResult,
            tools.resume_thread,
            _WRITES,
        ),
        _tool(
            "get_thread",
            "Show a thread",
            GetThreadInput,
            ThreadInfo,
            _no_report(tools.get_thread),
            _READS,
        ),
        _tool(
            "list_threads",
            "List threads",
            ListThreadsInput,
            ThreadList,
            _no_report(tools.list_threads),
            _READS,
        ),
        _tool(
            "interrupt_turn",
            "Interrupt a turn",
            InterruptTurnInput,
            InterruptResult,
            _no_report(tools.interrupt_turn),
            _STOPS,
        ),
    ]


def _no_report(handler: Callable[[Any], Awaitable[CallToolResult]]) -> ToolHandler:
    async def call(args: Any, report: Report) -> CallToolResult:
        return await handler(args)

    return call


def _tool(
    name: str,
    title: str,
    input_model: type[BaseModel],
    output_model: type[BaseModel],
    handler: ToolHandler,
    annotations: ToolAnnotations,
) -> Tool:
    async def call(ctx: Context, **arguments: Any) -> CallToolResult:
        try:
            args = input_model.model_validate(arguments)
            return await handler(args, _reporter(ctx))
        except (PolicyError, UnknownThreadError, BusyThreadError, CodexError) as exc:
            raise ToolError(str(exc)) from None
        except ValidationError as exc:
            raise ToolError(f"Invalid arguments: {exc}") from None

    call.__annotations__ = {"ctx": Context, "return": Annotated[CallToolResult, output_model]}
    tool = Tool.from_function(
        call,
        name=name,
        title=title,
        description=_DESCRIPTIONS[name],
        annotations=annotations,
        structured_output=True,
    )
    # The input model is the argument model, so the schema is the model's own (aliases such
    # as the `codex` tool's kebab-case fields included) and a misspelt argument is an error.
    arguments: type[ArgModelBase] = type(
        input_model.__name__, (ArgModelBase, input_model), {"model_config": _STRICT}
    )
    tool.fn_metadata.arg_model = arguments
    tool.parameters = arguments.model_json_schema(by_alias=True)
    return tool


_STRICT = ConfigDict(extra="forbid", populate_by_name=True)


def _reporter(ctx: Context) -> Report:
    count = 0
    lock = anyio.Lock()

    async def report(message: str) -> None:
        nonlocal count
        # One at a time so that progress values reach the client strictly increasing.
        async with lock:
            count += 1
            try:
                await ctx.report_progress(count, None, message)
            except Exception:
                # A lost progress notification must not fail the turn itself.
                logger.debug("progress notification failed", exc_info=True)

    return report
