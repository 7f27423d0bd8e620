"""The MCP tools: thin adapters from tool calls to :class:`ThreadService`.

Each tool takes one pydantic input model (see ``models.py``) and returns a result model as
``structuredContent`` with a short text. Problems a model can fix come back as tool errors
(``isError``) whose message names the problem and the fix.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any, TypeVar, get_args, get_origin

import anyio
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, ConfigDict, ValidationError

from ..sdk import CodexError
from .actions import describe_actions
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
    ThreadSummary,
    TurnInfo,
    TurnResult,
    WaitTurnInput,
)
from .policy import PolicyError
from .registry import BusyThreadError, Listener, ThreadRecord, TurnRecord, UnknownThreadError
from .threads import StartFailedError, ThreadService, TurnRequest

__all__ = ["Handler", "build_tools", "invalid_arguments", "make_tool", "thread_info", "turn_model"]

logger = logging.getLogger(__name__)

_MAX_TEXT_RESPONSE = 20_000
_MAX_ITEM_OUTPUT = 65_536

Handler = Callable[[Any, Listener], Awaitable[CallToolResult]]


class _Tools:
    """The default tool set's handlers."""

    def __init__(self, service: ThreadService) -> None:
        self.service = service

    async def start_thread(self, args: StartThreadInput, report: Listener) -> CallToolResult:
        request = TurnRequest(args.prompt, args.images, args.output_schema)
        record, turn = await self.service.start(args, request, report, background=args.background)
        return turn_result(record, turn)

    async def run_turn(self, args: RunTurnInput, report: Listener) -> CallToolResult:
        request = TurnRequest(args.prompt, args.images, args.output_schema)
        record, turn = await self.service.follow_up(
            args.thread_id, request, report, background=args.background
        )
        return turn_result(record, turn)

    async def resume_thread(self, args: ResumeThreadInput, report: Listener) -> CallToolResult:
        request = TurnRequest(args.prompt, args.images, args.output_schema) if args.prompt else None
        record, turn = await self.service.resume(
            args.thread_id, args, request, report, background=args.background
        )
        if turn is None:
            resumed = ResumeResult(thread_id=record.thread_id, status="idle")
            return _result(
                resumed, f"Thread {record.thread_id} resumed; continue it with run_turn."
            )
        return turn_result(record, turn)

    async def wait_turn(self, args: WaitTurnInput, report: Listener) -> CallToolResult:
        record, turn = await self.service.wait(args.thread_id, args.timeout_s, report)
        return turn_result(record, turn)

    async def get_thread(self, args: GetThreadInput, report: Listener) -> CallToolResult:
        record = self.service.registry.get(args.thread_id)
        info = thread_info(record)
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

    async def list_threads(self, args: ListThreadsInput, report: Listener) -> CallToolResult:
        summaries = [
            ThreadSummary(
                thread_id=r.thread_id,
                status="running" if r.running_turn else "idle",
                working_directory=r.working_directory,
                turns=len(r.turns),
                last_prompt=_first_line(r.turns[-1].prompt, 100) if r.turns else "",
                updated_at=_iso(r.updated_at),
            )
            for r in self.service.registry.newest_first()
        ]
        text = "\n".join(
            f"{s.thread_id} [{s.status}] {s.turns} turn(s) {s.working_directory}: {s.last_prompt}"
            for s in summaries
        )
        return _result(ThreadList(threads=summaries), text or "No threads yet.")

    async def interrupt_turn(self, args: InterruptTurnInput, report: Listener) -> CallToolResult:
        record, turn = await self.service.interrupt(args.thread_id)
        if turn is None:
            idle = InterruptResult(thread_id=record.thread_id, turn_id=None, status="idle")
            return _result(idle, f"Thread {record.thread_id} has no running turn.")
        stopped = InterruptResult(
            thread_id=record.thread_id, turn_id=turn.turn_id, status="interrupted"
        )
        return _result(stopped, f"Stopped {turn.turn_id} of thread {record.thread_id}.")


# ------------------------------------------------------------------- results


def turn_result(record: ThreadRecord, turn: TurnRecord) -> CallToolResult:
    """A turn as a tool result: an error result unless it completed or still runs."""
    result = turn_model(TurnResult, record, turn)
    parts = []
    if turn.final_response:
        parts.append(_cap(turn.final_response, _MAX_TEXT_RESPONSE))
    if turn.status == "running":
        parts.append(
            f"Turn {turn.turn_id} is still running ({_elapsed(turn)} s, {turn.lines} progress "
            f"line(s) so far"
            + (f"; last: {turn.last_line}" if turn.last_line else "")
            + "). Call wait_turn to wait for it, or interrupt_turn to stop it."
        )
    elif turn.status != "completed":
        parts.append(f"Turn {turn.status}: {turn.error}")
    summary = describe_actions(result.actions, cwd=record.working_directory)
    if summary:
        parts.append(summary)
    parts.append(f"[thread_id {record.thread_id}, {turn.turn_id}, {turn.status}]")
    is_error = turn.status in ("failed", "interrupted")
    return _result(result, "\n\n".join(parts), is_error=is_error)


def thread_info(record: ThreadRecord, *, full: bool = False) -> ThreadInfo:
    """A thread and its turns; ``full`` keeps long command output whole."""
    return ThreadInfo(
        thread_id=record.thread_id,
        status="running" if record.running_turn else "idle",
        working_directory=record.working_directory,
        options=record.options,
        created_at=_iso(record.created_at),
        turns=[turn_model(TurnInfo, record, t, full=full) for t in record.turns],
    )


ResultT = TypeVar("ResultT", bound=TurnResult)


def turn_model(
    model: type[ResultT], record: ThreadRecord, turn: TurnRecord, *, full: bool = False
) -> ResultT:
    fields: dict[str, Any] = dict(
        thread_id=record.thread_id,
        turn_id=turn.turn_id,
        status=turn.status,
        final_response=turn.final_response,
        structured_output=turn.structured_output,
        actions=turn.actions,
        usage=turn.usage,
        error=turn.error,
    )
    if model is TurnInfo:
        fields.update(
            prompt=turn.prompt,
            started_at=_iso(turn.started_at),
            finished_at=_iso(turn.finished_at) if turn.finished_at else None,
            items=turn.items if full else [_shorten_item(item) for item in turn.items],
        )
    return model(**fields)


def _shorten_item(item: dict[str, Any]) -> dict[str, Any]:
    output = item.get("aggregated_output")
    if isinstance(output, str) and len(output) > _MAX_ITEM_OUTPUT:
        return {**item, "aggregated_output": _cap(output, _MAX_ITEM_OUTPUT)}
    return item


def _result(model: BaseModel, text: str, *, is_error: bool = False) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=model.model_dump(mode="json", by_alias=True),
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


def _elapsed(turn: TurnRecord) -> int:
    return int((turn.finished_at or time.time()) - turn.started_at)


# ------------------------------------------------------------------ registration

WRITES = ToolAnnotations(
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
plans), unless background is true. Returns thread_id (keep it to continue with run_turn), the
final response, a compact record of actions, and token usage.""",
    "run_turn": """Run the next turn of a thread this server knows, with the thread's history
and options: use it for follow-ups ("now fix it", "add tests"). Blocks until the turn ends,
streaming progress, unless background is true. A thread runs one turn at a time. For a thread
from before a server restart, call resume_thread first.""",
    "resume_thread": """Make a thread that Codex persisted earlier (in a previous server run, or
with the codex CLI) known to this server, optionally with new options; with prompt, also run a
turn. Afterwards continue it with run_turn.""",
    "wait_turn": """Wait for the running turn of a thread (started with background: true, or
still running after its call was cut off), streaming its progress from now on. Returns the
turn's result when it ends, or status "running" with what happened so far when timeout_s is
up: then call wait_turn again. Without a running turn, returns the latest turn's result.""",
    "get_thread": """Show a thread: its options, status (idle or running) and every turn with its
prompt, result, actions, usage and items (messages and command output, long output
shortened; the resource codex://threads/{thread_id} has it whole).""",
    "list_threads": "List the threads this server holds, newest first, one line each.",
    "interrupt_turn": """Stop the running turn of a thread. When this returns, the turn is recorded
as interrupted and its codex processes are gone. The thread stays usable.""",
}


def build_tools(service: ThreadService) -> list[Tool]:
    """The default tool set, bound to ``service``."""
    tools = _Tools(service)
    specs: list[tuple[str, str, type[BaseModel], type[BaseModel], Handler, ToolAnnotations]] = [
        ("start_thread", "Start a Codex thread", StartThreadInput, TurnResult,
         tools.start_thread, WRITES),
        ("run_turn", "Run a turn", RunTurnInput, TurnResult, tools.run_turn, WRITES),
        ("resume_thread", "Resume a persisted thread", ResumeThreadInput, ResumeResult,
         tools.resume_thread, WRITES),
        ("wait_turn", "Wait for a turn", WaitTurnInput, TurnResult, tools.wait_turn, _READS),
        ("get_thread", "Show a thread", GetThreadInput, ThreadInfo, tools.get_thread, _READS),
        ("list_threads", "List threads", ListThreadsInput, ThreadList, tools.list_threads,
         _READS),
        ("interrupt_turn", "Interrupt a turn", InterruptTurnInput, InterruptResult,
         tools.interrupt_turn, _STOPS),
    ]  # fmt: skip
    return [
        make_tool(name, title, _DESCRIPTIONS[name], inputs, outputs, handler, annotations)
        for name, title, inputs, outputs, handler, annotations in specs
    ]


def make_tool(
    name: str,
    title: str,
    description: str,
    input_model: type[BaseModel],
    output_model: type[BaseModel],
    handler: Handler,
    annotations: ToolAnnotations,
) -> Tool:
    """An MCP tool whose arguments are ``input_model`` and whose result is ``output_model``."""

    # The input model is the argument model, so the schema is the model's own (aliases such
    # as the `codex` tool's kebab-case fields included) and a misspelt argument is an error.
    # The Tool is built directly: deriving one from `call`'s signature costs start-up time
    # for a model and schema that would be thrown away.
    arguments: type[ArgModelBase] = type(
        input_model.__name__, (ArgModelBase, input_model), {"model_config": _STRICT}
    )

    async def call(ctx: Context, raw: dict[str, Any]) -> CallToolResult:
        try:
            args = arguments.model_validate(raw)
        except ValidationError as exc:
            raise ToolError(invalid_arguments(name, arguments, exc)) from None
        try:
            return await handler(args, _reporter(ctx))
        except (PolicyError, UnknownThreadError, BusyThreadError, StartFailedError) as exc:
            raise ToolError(str(exc)) from None
        except CodexError as exc:
            raise ToolError(str(exc)) from None
        except ValidationError as exc:  # A handler's own model (the `codex` tool's options).
            raise ToolError(invalid_arguments(name, arguments, exc)) from None

    return Tool(
        fn=call,
        name=name,
        title=title,
        description=description,
        parameters=arguments.model_json_schema(by_alias=True),
        fn_metadata=_Arguments(arg_model=arguments, output_model=output_model),
        is_async=True,
        context_kwarg="ctx",
        annotations=annotations,
    )


class _Arguments(FuncMetadata):
    """Decodes JSON-encoded objects and lists only: a prompt that looks like JSON is text.

    Validation is left to the tool itself (``raw`` is the decoded arguments), so that its
    errors read like the server's others instead of pydantic's report.
    """

    def validate_arguments(self, arguments_to_validate: dict[str, Any]) -> dict[str, Any]:
        return {"raw": self.pre_parse_json(arguments_to_validate)}

    def pre_parse_json(self, data: dict[str, Any]) -> dict[str, Any]:
        parsed = dict(data)
        for name, field in self.arg_model.model_fields.items():
            key = field.alias or name
            value = parsed.get(key)
            if isinstance(value, str) and value[:1] in ("{", "[") and _takes_json(field.annotation):
                with contextlib.suppress(ValueError):  # Validation will say what is wrong.
                    parsed[key] = json.loads(value)
        return parsed


def invalid_arguments(tool: str, model: type[BaseModel], exc: ValidationError) -> str:
    """What is wrong with a call's arguments, field by field, and what to send instead."""
    fields = {field.alias or name: field for name, field in model.model_fields.items()}
    lines = [f"Invalid arguments for {tool}:"]
    unknown = False
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"])
        kind = error["type"]
        message = error["msg"].removeprefix("Value error, ").removeprefix("Input ")
        if kind == "missing":
            field = fields.get(where)
            about = f": {_first_sentence(field.description)}" if field and field.description else ""
            lines.append(f"- {where}: required but missing{about}.")
        elif kind == "extra_forbidden":
            unknown = True
            lines.append(f"- {where}: {tool} has no such field.")
        elif not where:  # A check across fields.
            lines.append(f"- {message}")
        else:
            message = message[:1].lower() + message[1:]
            lines.append(f"- {where}: {message}; got {_shown(error.get('input'))}.")
    if unknown:
        lines.append(f"{tool} takes: {', '.join(fields)}.")
    lines.append("Send the call again with these fields corrected.")
    return "\n".join(lines)


_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", type(None): "null"}


def _shown(value: Any) -> str:
    """A rejected value, briefly: scalars as they are (shortened), containers by their type."""
    if isinstance(value, (bool, int, float)) or (isinstance(value, str) and len(value) <= 40):
        return json.dumps(value)
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _first_sentence(text: str) -> str:
    sentence = text.split(". ", 1)[0].strip().rstrip(".")
    return sentence[:1].lower() + sentence[1:]


def _takes_json(annotation: Any) -> bool:
    """Whether a field of this type takes an object or a list (some clients send them as text)."""
    if get_origin(annotation) in (dict, list):
        return True
    return any(_takes_json(arg) for arg in get_args(annotation))


_STRICT = ConfigDict(extra="forbid", populate_by_name=True)


def _reporter(ctx: Context) -> Listener:
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
