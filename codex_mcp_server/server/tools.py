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
from typing import Any, Literal, TypeVar, get_args, get_origin

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
    AnswerApprovalInput,
    ForkThreadInput,
    GetThreadInput,
    InterruptResult,
    InterruptTurnInput,
    ListThreadsInput,
    ResumeResult,
    ResumeThreadInput,
    ReviewInput,
    RunTurnInput,
    StartThreadInput,
    SteerResult,
    SteerTurnInput,
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

__all__ = [
    "Handler",
    "build_tools",
    "cap_text",
    "invalid_arguments",
    "make_tool",
    "next_step",
    "resource_uri",
    "thread_info",
    "thread_page",
    "turn_model",
]

logger = logging.getLogger(__name__)

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
        record, turn = await self.service.resume(
            args.thread_id, args, _optional_request(args), report, background=args.background
        )
        if turn is None:
            return _idle(record, f"Thread {record.thread_id} resumed.")
        return turn_result(record, turn)

    async def fork_thread(self, args: ForkThreadInput, report: Listener) -> CallToolResult:
        record, turn = await self.service.fork(
            args.thread_id, args, _optional_request(args), report, background=args.background
        )
        if turn is None:
            return _idle(record, f"Thread {args.thread_id} forked as {record.thread_id}.")
        return turn_result(record, turn)

    async def answer_approval(self, args: AnswerApprovalInput, report: Listener) -> CallToolResult:
        record, turn = await self.service.answer_approval(
            args.thread_id, args.request_id, args.decision, args.content
        )
        return turn_result(record, turn)

    async def review(self, args: ReviewInput, report: Listener) -> CallToolResult:
        request = TurnRequest(args.label(), review_target=args.review_target())
        record, turn = await self.service.review(
            args, args.thread_id, request, report, background=args.background
        )
        return turn_result(record, turn)

    async def steer_turn(self, args: SteerTurnInput, report: Listener) -> CallToolResult:
        record, turn = await self.service.steer(args.thread_id, args.prompt)
        step = next_step(record.thread_id, "running")
        steered = SteerResult(
            thread_id=record.thread_id, turn_id=turn.turn_id, status="running", next_step=step
        )
        return _result(steered, f"Added to {turn.turn_id} of thread {record.thread_id}. {step}")

    async def wait_turn(self, args: WaitTurnInput, report: Listener) -> CallToolResult:
        record, turn = await self.service.wait(args.thread_id, args.timeout_s, report)
        return turn_result(record, turn)

    async def get_thread(self, args: GetThreadInput, report: Listener) -> CallToolResult:
        record = self.service.get(args.thread_id)
        info = thread_page(record, args.limit, args.offset)
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
        lines.append(info.next_step)
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
        step = next_step(record.thread_id, "idle")
        if turn is None:
            idle = InterruptResult(
                thread_id=record.thread_id, turn_id=None, status="idle", next_step=step
            )
            return _result(idle, f"Thread {record.thread_id} has no running turn. {step}")
        stopped = InterruptResult(
            thread_id=record.thread_id, turn_id=turn.turn_id, status="interrupted", next_step=step
        )
        return _result(stopped, f"Stopped {turn.turn_id} of thread {record.thread_id}. {step}")


# ------------------------------------------------------------------- results
#
# Hosts hand their model only the structuredContent of a successful result (Claude Code and
# Codex never show it the text), and only the text of an error result. So structuredContent
# stands on its own, leads with what a model acts on, and is bounded in size; an error's text
# leads with the cause, the thread id and the next step. Whatever is cut says where the whole
# is: the thread's resource.

RESPONSE_MAX = 20_000
"""Longest final response (or error, or JSON of structured output) in a result."""
ACTIONS_MAX = 50
"""Most entries per list of a result's actions."""
DIFF_MAX = 20_000
"""Longest diff in a result (the resource has it whole)."""
PROMPT_MAX = 4_000
ITEM_TEXT_MAX = 4_000
"""Longest text in an item shown by get_thread."""
THREAD_RESULT_MAX = 400_000
"""About the most characters of JSON get_thread returns."""


def resource_uri(thread_id: str) -> str:
    return f"codex://threads/{thread_id}"


def next_step(thread_id: str, status: str) -> str:
    """What a model can do next with a thread whose latest turn has ``status``."""
    if status == "running":
        return (
            f"Call wait_turn(thread_id={thread_id!r}) for the result, or interrupt_turn to "
            "stop the turn."
        )
    if status == "waiting_for_approval":
        return (
            "Codex waits for a decision on each request in pending: ask the person at the "
            f"host (it is their machine), then answer_approval(thread_id={thread_id!r}, "
            "request_id=..., decision=...); wait_turn then waits for the result. A request "
            "left unanswered is declined after the server's approval timeout."
        )
    if status == "failed":
        return (
            f"Act on the error; then run_turn(thread_id={thread_id!r}) continues the thread "
            "(unless the error says to start a new one)."
        )
    if status == "interrupted":
        return (
            f"run_turn(thread_id={thread_id!r}, prompt=...) continues the thread (unless the "
            "error says to start a new one)."
        )
    return f"Continue the thread with run_turn(thread_id={thread_id!r}, prompt=...)."


def turn_result(record: ThreadRecord, turn: TurnRecord) -> CallToolResult:
    """A turn as a tool result: an error result unless it completed or still runs."""
    result = turn_model(TurnResult, record, turn)
    is_error = turn.status in ("failed", "interrupted")
    parts = []
    if is_error:
        parts.append(
            f"Turn {turn.turn_id} of thread {record.thread_id} {turn.status}: {result.error}\n"
            f"Next: {result.next_step}"
        )
    if result.final_response:
        parts.append(result.final_response)
    if turn.pending:
        parts.append(
            "Codex waits for approval:\n"
            + "\n".join(
                f"- {a.request_id}: {a.summary()} [{' / '.join(a.decisions)}]"
                for a in turn.pending.values()
            )
        )
    elif turn.status == "running":
        parts.append(
            f"Turn {turn.turn_id} is still running ({_elapsed(turn)} s, {turn.lines} progress "
            f"line(s) so far"
            + (f"; last: {turn.last_line}" if turn.last_line else "")
            + "). Call wait_turn to wait for it, or interrupt_turn to stop it."
        )
    elif turn.status == "completed" and result.error:
        parts.append(f"Note: {result.error}")
    summary = describe_actions(turn.actions, cwd=record.working_directory)
    if summary:
        parts.append(summary)
    if turn.diff:
        parts.append(_diff_summary(turn.diff))
    parts.append(f"[thread_id {record.thread_id}, {turn.turn_id}, {turn.shown_status}]")
    return _result(result, "\n\n".join(parts), is_error=is_error)


def _diff_summary(diff: str) -> str:
    files = added = removed = 0
    for line in diff.splitlines():
        if line.startswith("diff --git "):
            files += 1
        elif line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
    return f"Diff: {files} file(s), +{added} -{removed} lines (the result's diff field)."


def thread_info(record: ThreadRecord, *, full: bool = False) -> ThreadInfo:
    """A thread and every turn, whole: what the resource shows."""
    return _thread_model(record, [turn_model(TurnInfo, record, t, full=full) for t in record.turns])


def thread_page(record: ThreadRecord, limit: int, offset: int) -> ThreadInfo:
    """The turns get_thread asked for, within :data:`THREAD_RESULT_MAX` characters: the
    newest first keep their items, then older turns without, then none."""
    end = max(0, len(record.turns) - offset)
    page = record.turns[max(0, end - limit) : end]
    budget = THREAD_RESULT_MAX
    shown: list[TurnInfo] = []
    for turn in reversed(page):
        info = turn_model(TurnInfo, record, turn)
        size = len(info.model_dump_json())
        if size > budget and info.items:
            info.items_left_out, info.items = len(info.items), []
            size = len(info.model_dump_json())
        if size > budget:
            break
        budget -= size
        shown.append(info)
    shown.reverse()
    older = end - len(shown)
    uri = resource_uri(record.thread_id)
    if older:
        hint = (
            f"{older} older turn(s) not shown: get_thread(thread_id={record.thread_id!r}, "
            f"offset={offset + len(shown)}) pages back; {uri} has every turn whole."
        )
    else:
        hint = f"{uri} has every turn and item whole."
    thread = _thread_model(record, shown)
    thread.next_step = f"{next_step(record.thread_id, thread.status)} {hint}"
    return thread


def _thread_model(record: ThreadRecord, turns: list[TurnInfo]) -> ThreadInfo:
    status: Literal["idle", "running"] = "running" if record.running_turn else "idle"
    return ThreadInfo(
        thread_id=record.thread_id,
        status=status,
        turn_count=len(record.turns),
        next_step=next_step(record.thread_id, status),
        resource=resource_uri(record.thread_id),
        working_directory=record.working_directory,
        options=record.options,
        created_at=_iso(record.created_at),
        turns=turns,
    )


ResultT = TypeVar("ResultT", bound=TurnResult)


def turn_model(
    model: type[ResultT], record: ThreadRecord, turn: TurnRecord, *, full: bool = False
) -> ResultT:
    """``turn`` as ``model``; long texts cut with a pointer to the resource unless ``full``."""
    uri = resource_uri(record.thread_id)

    def cap(text: str, limit: int) -> str:
        return text if full else cap_text(text, limit, uri)

    structured_output = turn.structured_output
    step = next_step(record.thread_id, turn.shown_status)
    if not full and structured_output is not None:
        size = _json_size(structured_output)
        if size is None or size > RESPONSE_MAX:
            structured_output = None
            step = f"{step} structured_output ({size or 'too deep'} characters) is left out of "
            step += f"this result: read it from {uri}."
    fields: dict[str, Any] = dict(
        thread_id=record.thread_id,
        turn_id=turn.turn_id,
        status=turn.shown_status,
        final_response=cap(turn.final_response, RESPONSE_MAX),
        error=cap(turn.error, RESPONSE_MAX) if turn.error else None,
        next_step=step,
        structured_output=structured_output,
        actions=turn.actions if full else turn.actions.capped(ACTIONS_MAX),
        usage=turn.usage,
        diff=cap(turn.diff, DIFF_MAX) if turn.diff else None,
        pending=[approval.info() for approval in turn.pending.values()],
    )
    if model is TurnInfo:
        fields.update(
            prompt=cap(turn.prompt, PROMPT_MAX),
            started_at=_iso(turn.started_at),
            finished_at=_iso(turn.finished_at) if turn.finished_at else None,
            items=turn.items if full else [_clip(item, uri) for item in turn.items],
        )
    return model(**fields)


def cap_text(text: str, limit: int, uri: str) -> str:
    """``text`` cut to about ``limit`` characters, saying where the whole is."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit} more characters: read {uri}]"


def _clip(value: Any, uri: str, depth: int = 0) -> Any:
    """An item with every long text cut (and nesting past 20 levels elided)."""
    if isinstance(value, str):
        return cap_text(value, ITEM_TEXT_MAX, uri)
    if depth > 20 and isinstance(value, (dict, list)):
        return f"[nested too deep to show: read {uri}]"
    if isinstance(value, dict):
        return {key: _clip(item, uri, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [_clip(item, uri, depth + 1) for item in value]
    return value


def _json_size(value: Any) -> int | None:
    try:
        return len(json.dumps(value))
    except (ValueError, RecursionError):
        return None


def _optional_request(args: ResumeThreadInput | ForkThreadInput) -> TurnRequest | None:
    """The turn to run with a resume or a fork, if a prompt asks for one."""
    return TurnRequest(args.prompt, args.images, args.output_schema) if args.prompt else None


def _idle(record: ThreadRecord, said: str) -> CallToolResult:
    """A thread registered without a turn, and what to do next."""
    step = next_step(record.thread_id, "idle")
    idle = ResumeResult(thread_id=record.thread_id, status="idle", next_step=step)
    return _result(idle, f"{said} {step}")


def _result(model: BaseModel, text: str, *, is_error: bool = False) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=model.model_dump(mode="json", by_alias=True),
        is_error=is_error,
    )


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

_STEERS = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
)

_DESCRIPTIONS = {
    "start_thread": """Start a new Codex thread and run its first turn. Codex is OpenAI's coding
agent: it reads code, runs commands and edits files in working_directory (within the sandbox)
to do what the prompt asks. Blocks until the turn ends, streaming progress (commands, edits,
plans), unless background is true. Returns thread_id (keep it to continue with run_turn), the
final response, a compact record of actions, and token usage.""",
    "run_turn": """Run the next turn of a thread, with the thread's history and options: use
it for follow-ups ("now fix it", "add tests"). Blocks until the turn ends, streaming progress,
unless background is true. A thread runs one turn at a time. A thread from an earlier server
run (or the codex CLI) is resumed in the directory it ran in, with the server's defaults; call
resume_thread first to give it other options.""",
    "resume_thread": """Make a thread that Codex persisted earlier (in a previous server run, or
with the codex CLI) known to this server, optionally with new options; with prompt, also run a
turn. Afterwards continue it with run_turn.""",
    "wait_turn": """Wait for the running turn of a thread (started with background: true, or
still running after its call was cut off), streaming its progress from now on. Returns the
turn's result when it ends, or status "running" with what happened so far when timeout_s is
up: then call wait_turn again. Without a running turn, returns the latest turn's result.""",
    "get_thread": """Show a thread: its status (idle or running), options and latest turns (limit,
default 20; offset pages back), each with its prompt, result, actions, usage and items
(messages and command output). Long texts are cut and the result stays small; the resource
codex://threads/{thread_id} has every turn and item whole.""",
    "list_threads": "List the threads this server holds, newest first, one line each.",
    "steer_turn": """Add input to the running turn of a thread, without stopping it: a
correction or more detail while Codex works ("use the new API", "skip the docs"). Codex reads
it at its next step and the same turn goes on; wait_turn gives its result. Only while a turn
runs (otherwise use run_turn). Needs the app-server backend.""",
    "fork_thread": """Copy a thread into a new one with the same history, to try another
direction without changing the original, or to go on with a thread another Codex process (the
Codex app, TUI or CLI) holds open, which run_turn and resume_thread refuse. Options not given
are the source's. With prompt, runs the fork's first turn (as start_thread does). Returns the
new thread_id. Needs the app-server backend.""",
    "answer_approval": """Answer a request Codex made during a turn (run a command outside its
sandbox, change files, or an MCP server's question) when the turn shows status
waiting_for_approval: hosts that cannot show Codex's questions to a person, and background
turns, get them in the turn result's pending list. Decide as the person at the host would (ask
them: it is their machine): accept, accept_for_session where offered, or decline (Codex goes on
without it). Returns the turn's state; wait_turn then waits for its result. Needs the
app-server backend.""",
    "review": """Codex's code review of uncommitted changes (the default target), of the
current branch against a base branch, or of a commit, in a Git repository: on a new thread in
working_directory, or on thread_id (with its history). Blocks until the review ends, streaming
progress, unless background is true. The final response is the review: an overall verdict and
each finding with its file and lines. Codex is asked to review, not to change anything; the
thread's sandbox applies as for any turn. Needs the app-server backend.""",
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
        ("steer_turn", "Steer a running turn", SteerTurnInput, SteerResult, tools.steer_turn,
         _STEERS),
        ("fork_thread", "Fork a thread", ForkThreadInput, ResumeResult, tools.fork_thread,
         WRITES),
        ("answer_approval", "Answer Codex's request", AnswerApprovalInput, TurnResult,
         tools.answer_approval, WRITES),
        ("review", "Review code changes", ReviewInput, TurnResult, tools.review, WRITES),
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
            raise ToolError(_naming_the_thread(str(exc), raw)) from None
        except CodexError as exc:
            raise ToolError(_naming_the_thread(str(exc), raw)) from None
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


def _naming_the_thread(message: str, arguments: dict[str, Any]) -> str:
    # An error result is all a host shows its model: it must say which thread it is about.
    for key in ("thread_id", "threadId", "conversationId"):
        thread_id = arguments.get(key)
        if isinstance(thread_id, str) and thread_id:
            return message if thread_id in message else f"{message} (thread_id {thread_id})"
    return message


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


class _Reporter:
    """A tool call's listener: progress notifications, and questions to the person at the
    host when the client takes elicitations."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._count = 0
        self._lock = anyio.Lock()
        capabilities = ctx.client_capabilities
        self.can_ask = bool(
            capabilities is not None
            and capabilities.elicitation is not None
            and getattr(ctx.session, "can_send_request", True)
        )

    async def __call__(self, message: str) -> None:
        # One at a time so that progress values reach the client strictly increasing.
        async with self._lock:
            self._count += 1
            try:
                await self._ctx.report_progress(self._count, None, message)
            except Exception:
                # A lost progress notification must not fail the turn itself.
                logger.debug("progress notification failed", exc_info=True)

    async def ask(self, message: str, schema: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
        result = await self._ctx.session.elicit_form(
            message, schema, related_request_id=self._ctx.request_id
        )
        content = result.content if isinstance(result.content, dict) else None
        return str(result.action), content


def _reporter(ctx: Context) -> Listener:
    return _Reporter(ctx)
