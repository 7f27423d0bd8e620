"""Inputs and results of the MCP tools: one pydantic model per tool input.

The descriptions are read by models choosing and calling the tools, so they say what a value
does and when to use it. ``tests/snapshots/tools_list.json`` guards the resulting schemas.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from .actions import Actions
from .allowlist import CONFIG_RULE, PROFILE_RULE
from .settings import ApprovalPolicy, SandboxModeName

__all__ = [
    "AnswerApprovalInput",
    "ApprovalDecision",
    "ApprovalKind",
    "ForkThreadInput",
    "GetThreadInput",
    "InterruptResult",
    "InterruptTurnInput",
    "ListThreadsInput",
    "PendingApproval",
    "ResumeResult",
    "ResumeThreadInput",
    "RunTurnInput",
    "StartThreadInput",
    "SteerResult",
    "SteerTurnInput",
    "ThreadInfo",
    "ThreadList",
    "ThreadOptionsInput",
    "ThreadSummary",
    "TurnInfo",
    "TurnResult",
    "TurnStatus",
    "TurnUsage",
    "WaitTurnInput",
]

TurnStatus = Literal["completed", "failed", "interrupted", "running", "waiting_for_approval"]
ApprovalDecision = Literal["accept", "accept_for_session", "decline"]
ApprovalKind = Literal["command", "file_change", "permissions", "mcp_elicitation"]
ReasoningEffort = Literal["minimal", "low", "medium", "high", "xhigh"]
WebSearch = Literal["disabled", "cached", "live"]

_THREAD_ID = Field(
    description="The Codex thread id returned by start_thread (or resume_thread).",
    min_length=1,
    max_length=200,
)
_PROMPT = Field(
    description="What Codex should do, in plain language. Codex sees the thread's earlier "
    "turns, so a follow-up can refer to them.",
    min_length=1,
)
_IMAGES = Field(
    default=None,
    description="Local image files (PNG, JPEG, ...) to show Codex with the prompt. Relative "
    "paths are relative to the thread's working directory.",
)
_BACKGROUND = Field(
    default=False,
    description="Return as soon as Codex has started the turn (status running) instead of "
    "waiting for it; then call wait_turn. Use it for long tasks: hosts cut off tool calls that "
    "run longer than a minute or two.",
)
_OUTPUT_SCHEMA = Field(
    default=None,
    description='A JSON Schema object ({"type": "object", ...}) the final response must '
    "conform to; the parsed answer is returned as structured_output.",
)


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _no_nul(value: str | None) -> str | None:
    if value is not None and "\x00" in value:
        raise ValueError("must be free of NUL characters")
    return value


Name = Annotated[str, Field(max_length=256), AfterValidator(_no_nul)]


class ThreadOptionsInput(_Input):
    """Options of a thread, applied to all of its turns."""

    working_directory: str | None = Field(
        default=None,
        description="Directory Codex works in (absolute, or relative to the server's). "
        "Default: the server's --cwd.",
    )
    model: Name | None = Field(
        default=None, description="Model to use, e.g. gpt-5.5. Default: Codex's configured one."
    )
    profile: Name | None = Field(
        default=None,
        description="A Codex config profile ($CODEX_HOME/<profile>.config.toml) to layer on "
        f"the configuration. {PROFILE_RULE}",
    )
    sandbox_mode: SandboxModeName | None = Field(
        default=None,
        description="What commands Codex runs may do: read-only (inspect only), "
        "workspace-write (edit files in the working directory), danger-full-access. "
        "Default: the server's --default-sandbox; the server's --max-sandbox caps it.",
    )
    approval_policy: ApprovalPolicy | None = Field(
        default=None,
        description="When Codex asks before acting: never (the default: it does what the "
        "sandbox allows and nothing more), on-request (it may ask to run a command outside "
        "the sandbox or to write where it may not), untrusted (it asks before commands that "
        "are not known to be safe). On the app-server backend the person at the host is "
        "asked (or the turn waits: see answer_approval); on exec nobody can answer.",
    )
    reasoning_effort: ReasoningEffort | None = Field(
        default=None, description="How hard the model thinks. Higher is slower."
    )
    network_access: bool | None = Field(
        default=None,
        description="Allow network access to commands in the workspace-write sandbox.",
    )
    web_search: WebSearch | None = Field(
        default=None, description="Let Codex search the web: disabled, cached or live."
    )
    skip_git_repo_check: bool = Field(
        default=False,
        description="Run even if the working directory is not inside a Git repository.",
    )
    additional_directories: list[str] | None = Field(
        default=None, description="More directories Codex may write to besides the working one."
    )
    config: dict[str, Any] | None = Field(
        default=None,
        description='Codex config overrides as a nested object, e.g. {"model_verbosity": "low"}; '
        f"flattened to --config key=value. Applied after the server's own --config. {CONFIG_RULE}",
    )


class StartThreadInput(ThreadOptionsInput):
    prompt: str = _PROMPT
    images: list[str] | None = _IMAGES
    output_schema: dict[str, Any] | None = _OUTPUT_SCHEMA
    background: bool = _BACKGROUND


class RunTurnInput(_Input):
    thread_id: str = _THREAD_ID
    prompt: str = _PROMPT
    images: list[str] | None = _IMAGES
    output_schema: dict[str, Any] | None = _OUTPUT_SCHEMA
    background: bool = _BACKGROUND


class ResumeThreadInput(ThreadOptionsInput):
    thread_id: str = Field(
        description="Id of a thread Codex persisted earlier (by this server before a restart, "
        "or by the codex CLI); it must exist under $CODEX_HOME/sessions.",
        min_length=1,
        max_length=200,
    )
    prompt: str | None = Field(
        default=None,
        description="If given, also run a turn with this prompt; otherwise only register the "
        "thread so run_turn can continue it.",
        min_length=1,
    )
    images: list[str] | None = _IMAGES
    output_schema: dict[str, Any] | None = _OUTPUT_SCHEMA
    background: bool = _BACKGROUND


class ForkThreadInput(ThreadOptionsInput):
    """Options of the fork: those not given are the source thread's (when this server knows
    it; otherwise the server's defaults, in the directory the source ran in)."""

    thread_id: str = Field(
        description="The thread to copy: one this server knows, or one Codex persisted (even "
        "one another Codex process holds open, which run_turn and resume_thread cannot use).",
        min_length=1,
        max_length=200,
    )
    prompt: str | None = Field(
        default=None,
        description="If given, run the fork's first turn with this prompt; otherwise only "
        "create the fork (continue it with run_turn).",
        min_length=1,
    )
    images: list[str] | None = _IMAGES
    output_schema: dict[str, Any] | None = _OUTPUT_SCHEMA
    background: bool = _BACKGROUND


class SteerTurnInput(_Input):
    thread_id: str = _THREAD_ID
    prompt: str = Field(
        description='What to add to the running turn: a correction or more detail ("focus on '
        'the tests", "don\'t touch the schema"). Codex reads it at its next step, without '
        "stopping what it does.",
        min_length=1,
    )


def _git_ref(value: str | None) -> str | None:
    # Codex hands the branch to git: one that reads as an option would change the command.
    if value is not None and (value.startswith("-") or any(c.isspace() for c in value)):
        raise ValueError("must be a branch name: no leading '-', no whitespace")
    return value


class ReviewInput(ThreadOptionsInput):
    """A review on a new thread (the thread options apply) or on ``thread_id``."""

    thread_id: str | None = Field(
        default=None,
        description="Review on this thread (it must be idle), with its history and options. "
        "Without it, a new thread starts in working_directory for the review.",
        min_length=1,
        max_length=200,
    )
    target: Literal["uncommitted_changes", "base_branch", "commit"] = Field(
        default="uncommitted_changes",
        description="What to review: uncommitted_changes (staged, unstaged and untracked), "
        "base_branch (the current branch against base_branch), or commit (commit_sha).",
    )
    base_branch: Annotated[Name, AfterValidator(_git_ref)] | None = Field(
        default=None,
        description='With target base_branch: the branch to compare with, e.g. "main".',
    )
    commit_sha: str | None = Field(
        default=None,
        description="With target commit: the commit to review (its hex id, 7 to 40 digits).",
        pattern=r"^[0-9a-fA-F]{7,40}$",
    )
    background: bool = _BACKGROUND

    @model_validator(mode="after")
    def _consistent(self) -> ReviewInput:
        if self.target == "base_branch" and self.base_branch is None:
            raise ValueError('target "base_branch" needs base_branch (e.g. "main")')
        if self.target == "commit" and self.commit_sha is None:
            raise ValueError('target "commit" needs commit_sha (the commit\'s hex id)')
        if self.thread_id is not None:
            given = self.model_fields_set & set(ThreadOptionsInput.model_fields)
            if given:
                raise ValueError(
                    f"{', '.join(sorted(given))}: thread options apply to a new thread only; "
                    "with thread_id the review runs with that thread's options (leave them out)"
                )
        return self

    def review_target(self) -> dict[str, Any]:
        """The target as app-server's ``ReviewTarget``."""
        if self.target == "base_branch":
            return {"type": "baseBranch", "branch": self.base_branch}
        if self.target == "commit":
            return {"type": "commit", "sha": self.commit_sha}
        return {"type": "uncommittedChanges"}

    def label(self) -> str:
        """The review as the turn's prompt in results and get_thread."""
        if self.target == "base_branch":
            return f"[review] changes against {self.base_branch}"
        if self.target == "commit":
            return f"[review] commit {self.commit_sha}"
        return "[review] uncommitted changes"


GET_THREAD_DEFAULT_TURNS = 20
GET_THREAD_MAX_TURNS = 100


class GetThreadInput(_Input):
    thread_id: str = _THREAD_ID
    limit: int = Field(
        default=GET_THREAD_DEFAULT_TURNS,
        ge=1,
        le=GET_THREAD_MAX_TURNS,
        description="How many turns to show: the latest ones (after skipping offset), listed "
        f"oldest first. Default {GET_THREAD_DEFAULT_TURNS}, at most {GET_THREAD_MAX_TURNS}.",
    )
    offset: int = Field(
        default=0,
        ge=0,
        description="How many of the most recent turns to skip: page back through a long "
        "thread with offset = the previous offset + limit.",
    )


class ListThreadsInput(_Input):
    pass


class InterruptTurnInput(_Input):
    thread_id: str = _THREAD_ID


class AnswerApprovalInput(_Input):
    thread_id: str = _THREAD_ID
    request_id: str = Field(
        description="The pending request's id, from the turn result's pending list "
        "(approval-1, ...).",
        min_length=1,
        max_length=100,
    )
    decision: ApprovalDecision = Field(
        description="accept (this once), accept_for_session (and don't ask again for the like "
        "in this thread; only where the request offers it) or decline (Codex goes on without "
        "it). Decide as the person at the host would, or ask them: it is their machine."
    )
    content: dict[str, Any] | None = Field(
        default=None,
        description="For an MCP server's question (kind mcp_elicitation) accepted: the answer, "
        "as an object of the request's form.",
    )


WAIT_DEFAULT_S = 50.0
WAIT_MAX_S = 110.0


class WaitTurnInput(_Input):
    thread_id: str = _THREAD_ID
    timeout_s: float = Field(
        default=WAIT_DEFAULT_S,
        ge=0,
        le=WAIT_MAX_S,
        description=f"How long to wait, in seconds (default {WAIT_DEFAULT_S:g}, at most "
        f"{WAIT_MAX_S:g}): below Codex's 60 s and Claude Code's 120 s limits on a tool call, "
        "so the answer comes before the host gives up. Call again to keep waiting.",
    )


# ----------------------------------------------------------------------------- results


class TurnUsage(BaseModel):
    input_tokens: int = Field(description="Input tokens of this turn.")
    cached_input_tokens: int = Field(description="Of which served from the prompt cache.")
    output_tokens: int = Field(description="Output tokens of this turn.")
    reasoning_output_tokens: int = Field(description="Of which spent on reasoning.")


_NEXT_STEP = Field(description="What to do next with this thread.")


class PendingApproval(BaseModel):
    """A request of Codex waiting for a decision (answer it with answer_approval)."""

    request_id: str = Field(description="Pass it to answer_approval.")
    kind: ApprovalKind = Field(
        description="command (run outside the sandbox), file_change (write files), "
        "permissions, or mcp_elicitation (a question from one of Codex's MCP servers)."
    )
    command: str | None = Field(default=None, description="The command Codex wants to run.")
    cwd: str | None = Field(default=None, description="Where the command would run.")
    files: list[str] = Field(default_factory=list, description="The files it would change.")
    diff: str | None = Field(default=None, description="The change, as a unified diff (cut).")
    reason: str | None = Field(default=None, description="Codex's reason for asking.")
    message: str | None = Field(default=None, description="An MCP server's question.")
    decisions: list[ApprovalDecision] = Field(description="The decisions this request takes.")


class TurnResult(BaseModel):
    """The result of a turn: what a model acts on first, then the details. Long texts are
    cut, with a pointer to the resource codex://threads/{thread_id} that has them whole."""

    thread_id: str = Field(description="The Codex thread id; pass it to run_turn to continue.")
    turn_id: str = Field(description="This turn's id within the thread (turn-1, turn-2, ...).")
    status: TurnStatus = Field(
        description="completed, failed, interrupted, running, or waiting_for_approval (running, "
        "and Codex waits for an answer to a request in pending)."
    )
    final_response: str = Field(
        description="Text of Codex's last message ('' if none); a long one is cut, and says "
        "where the whole text is."
    )
    error: str | None = Field(
        default=None,
        description="Why the turn failed, if it did; on a completed turn, a note on its result.",
    )
    next_step: str = _NEXT_STEP
    structured_output: Any = Field(
        default=None,
        description="The final response parsed as JSON when an output_schema was given "
        "(null when too large for a result: read it from the resource).",
    )
    actions: Actions = Field(description="What Codex did: commands, file changes, tools, ...")
    usage: TurnUsage | None = Field(default=None, description="Tokens used by this turn.")
    diff: str | None = Field(
        default=None,
        description="The turn's changes to files as one unified diff, to review what Codex "
        "changed without reading the files (app-server backend; a long one is cut, and says "
        "where the whole diff is).",
    )
    pending: list[PendingApproval] = Field(
        default_factory=list,
        description="Requests of Codex waiting for a decision: answer each with "
        "answer_approval; one left unanswered is declined after the server's approval timeout.",
    )


class ResumeResult(TurnResult):
    """The result of resume_thread: a turn's when a prompt was given, else just the thread."""

    turn_id: str | None = Field(  # type: ignore[assignment]
        default=None, description="The turn run with the prompt; null without a prompt."
    )
    status: TurnStatus | Literal["idle"] = Field(  # type: ignore[assignment]
        description="idle: the thread is registered and no turn ran; otherwise the turn's."
    )
    final_response: str = Field(default="", description="Text of Codex's last message.")
    actions: Actions = Field(default_factory=Actions, description="What Codex did.")


class TurnInfo(TurnResult):
    prompt: str = Field(description="The turn's prompt (a long one is cut).")
    started_at: str = Field(description="When the turn started (ISO 8601, UTC).")
    finished_at: str | None = Field(default=None, description="When it ended, if it has.")
    items: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Every item Codex completed in the turn (long texts cut; none when they "
        "do not fit in the result: see items_left_out).",
    )
    items_left_out: int = Field(
        default=0,
        description="Items not shown to keep the result small; the resource has them.",
    )


class ThreadInfo(BaseModel):
    thread_id: str = Field(description="The Codex thread id.")
    status: Literal["idle", "running"] = Field(description="running while a turn is under way.")
    turn_count: int = Field(description="Turns this server holds for the thread.")
    next_step: str = _NEXT_STEP
    resource: str = Field(
        description="URI of the MCP resource with every turn and item whole (resources/read)."
    )
    working_directory: str = Field(description="Directory Codex works in.")
    options: dict[str, Any] = Field(description="The thread's options as given.")
    created_at: str = Field(description="When this server first saw the thread (ISO 8601).")
    turns: list[TurnInfo] = Field(
        description="The turns asked for (limit, offset), oldest first; older turns are left "
        "out first when the result would grow too large."
    )


class ThreadSummary(BaseModel):
    thread_id: str
    status: Literal["idle", "running"]
    working_directory: str
    turns: int = Field(description="Number of turns run by this server.")
    last_prompt: str = Field(description="First line of the latest prompt, shortened.")
    updated_at: str = Field(description="When the latest turn started (ISO 8601).")


class ThreadList(BaseModel):
    threads: list[ThreadSummary] = Field(description="Newest first.")


class SteerResult(BaseModel):
    thread_id: str
    turn_id: str = Field(description="The running turn that took the input.")
    status: Literal["running"] = Field(description="The turn goes on with the added input.")
    next_step: str = _NEXT_STEP


class InterruptResult(BaseModel):
    thread_id: str
    turn_id: str | None = Field(description="The turn that was stopped, if one was running.")
    status: Literal["interrupted", "idle"] = Field(
        description="interrupted: a running turn was stopped and its processes are gone; "
        "idle: nothing was running."
    )
    next_step: str = _NEXT_STEP
