"""Codex's requests for consent during a turn (app-server backend), put to the person at the host.

Codex asks before it runs a command outside its sandbox or writes a file it may not (approval
policy ``on-request`` or ``untrusted``), and its own MCP servers may ask questions
(elicitations). Each request becomes an :class:`Approval`: what a person needs to decide (the
command and where it runs, or the files and the diff, and codex's reason) and the decisions that
make sense (accept once, accept for the session where codex offers it, decline).

It reaches the person as an MCP elicitation when the tool call following the turn can ask one
(see :class:`~codex_mcp_server.server.registry.Asker`); otherwise the turn shows it as pending
(``waiting_for_approval``) until ``answer_approval``. Whatever happens, codex gets an answer: a
request nobody answers within the approval timeout is declined, and so is every request still
open when its turn ends. A person's "no" is ``decline``, never ``cancel``: codex's ``cancel``
ends the whole turn.

Knows nothing of MCP: the asker is given by the tool layer.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from ..sdk.app_server.engine import default_answer
from .models import ApprovalDecision, ApprovalKind, PendingApproval
from .progress import one_line, relative_path, unwrap_command

if TYPE_CHECKING:
    from .registry import TurnRecord

__all__ = ["DIFF_MAX", "Approval", "answer_request", "describe_request"]

logger = logging.getLogger(__name__)

DIFF_MAX = 8_000
"""Most characters of a file change's diff shown to a person (and in a pending request)."""

_TO_CODEX = {"accept": "accept", "accept_for_session": "acceptForSession", "decline": "decline"}
_LABELS = {
    "accept": "Yes, this once",
    "accept_for_session": "Yes, and don't ask again for this in this session",
    "decline": "No (Codex goes on without it)",
}
_MCP = "mcpServer/elicitation/request"


@dataclass(eq=False)
class Approval:
    """One request of codex waiting for a person's decision."""

    request_id: str
    kind: ApprovalKind
    params: Mapping[str, Any]
    decisions: list[ApprovalDecision]
    message: str
    """What a person reads to decide."""
    schema: dict[str, Any]
    """The form of the elicitation (codex's own for an MCP server's question)."""
    command: str | None = None
    cwd: str | None = None
    files: list[str] = field(default_factory=list)
    diff: str | None = None
    reason: str | None = None
    asked: bool = False
    """A person is being asked through the host (else it waits for answer_approval)."""
    answered: anyio.Event = field(default_factory=anyio.Event)
    decision: ApprovalDecision | None = None
    content: dict[str, Any] | None = None
    how: str = ""

    def decide(
        self, decision: ApprovalDecision, how: str, content: dict[str, Any] | None = None
    ) -> None:
        if self.answered.is_set():
            return  # The first answer counts (the host's, answer_approval's or the timeout's).
        self.decision, self.content, self.how = decision, content, how
        self.answered.set()

    def codex_answer(self) -> Any:
        """The result codex expects for this request."""
        decision = self.decision or "decline"
        if self.kind in ("command", "file_change"):
            return {"decision": _TO_CODEX[decision]}
        if self.kind == "permissions":
            granted = self.params.get("permissions") if decision != "decline" else None
            scope = "session" if decision == "accept_for_session" else "turn"
            return {"permissions": dict(granted or {}), "scope": scope}
        if decision == "decline":
            return {"action": "decline", "content": None, "_meta": None}
        return {"action": "accept", "content": self.content or {}, "_meta": None}

    def summary(self) -> str:
        """One line: what codex wants."""
        if self.kind == "command":
            where = f" (in {self.cwd})" if self.cwd else ""
            text = f"run `{self.command}`{where}"
        elif self.kind == "file_change":
            text = f"change {', '.join(self.files) or 'files'}"
        elif self.kind == "permissions":
            text = "more permissions"
        else:
            text = f"an answer for {self.params.get('serverName') or 'an MCP server'}"
        if self.reason:
            text += f": {self.reason}"
        return one_line(text, 160)

    def info(self) -> PendingApproval:
        return PendingApproval(
            request_id=self.request_id,
            kind=self.kind,
            command=self.command,
            cwd=self.cwd,
            files=self.files,
            diff=self.diff,
            reason=self.reason,
            message=self.message if self.kind == "mcp_elicitation" else None,
            decisions=self.decisions,
        )


def describe_request(
    method: str, params: Mapping[str, Any], request_id: str, cwd: str | None
) -> Approval | None:
    """The request as a person sees it, or ``None`` for one nobody is asked about."""
    reason = _text(params.get("reason")) or None
    if method == "item/commandExecution/requestApproval":
        command = unwrap_command(params.get("command"))
        where = _text(params.get("cwd")) or cwd
        offered = params.get("availableDecisions")
        decisions: list[ApprovalDecision] = ["accept"]
        # Codex lists what it takes; without a list it takes all three.
        if not isinstance(offered, list) or "acceptForSession" in offered:
            decisions.append("accept_for_session")
        decisions.append("decline")
        message = f"Codex wants to run a command outside its sandbox:\n\n    {command}\n\n"
        message += f"in {where}" if where else ""
        message += f"\n\nCodex's reason: {reason}" if reason else ""
        return Approval(
            request_id, "command", params, decisions, message, _form(decisions),
            command=command, cwd=where, reason=reason,
        )  # fmt: skip
    if method == "item/fileChange/requestApproval":
        files, diff = _changes(params.get("changes"), cwd)
        decisions = ["accept", "accept_for_session", "decline"]
        message = "Codex wants to change files it may not write on its own:\n\n"
        message += "\n".join(f"    {path}" for path in files) or "    (files not named)"
        message += f"\n\n{diff}" if diff else ""
        message += f"\n\nCodex's reason: {reason}" if reason else ""
        return Approval(
            request_id, "file_change", params, decisions, message, _form(decisions),
            files=files, diff=diff, reason=reason,
        )  # fmt: skip
    if method == "item/permissions/requestApproval":
        decisions = ["accept", "accept_for_session", "decline"]
        granted = one_line(repr(params.get("permissions")), 400)
        message = f"Codex asks for more permissions: {granted}"
        message += f"\n\nCodex's reason: {reason}" if reason else ""
        return Approval(
            request_id, "permissions", params, decisions, message, _form(decisions),
            reason=reason,
        )  # fmt: skip
    if method == _MCP:
        server = _text(params.get("serverName")) or "an MCP server"
        message = _text(params.get("message"))
        if params.get("mode") == "url" and params.get("url"):
            message += f"\n\n{params.get('url')}"
        schema = params.get("requestedSchema")
        if not isinstance(schema, dict):
            schema = {"type": "object", "properties": {}}
        return Approval(
            request_id, "mcp_elicitation", params, ["accept", "decline"],
            f"{server} (an MCP server of Codex) asks: {message}", dict(schema),
        )  # fmt: skip
    return None


async def answer_request(
    turn: TurnRecord, wait_s: float, cwd: str, method: str, params: Mapping[str, Any]
) -> Any:
    """What codex gets for ``method``: a person's decision, or decline after ``wait_s``."""
    approval = describe_request(method, params, f"approval-{turn.approvals_seen + 1}", cwd)
    if approval is None:
        return default_answer(method)
    turn.approvals_seen += 1
    turn.pending[approval.request_id] = approval
    try:
        async with anyio.create_task_group() as group:
            asker = turn.askers[-1] if turn.askers else None
            if asker is not None:
                approval.asked = True
                await turn.publish(f"asking the host ({approval.request_id}): {approval.summary()}")
                group.start_soon(_ask, turn, asker, approval)
            else:
                await _leave_pending(turn, approval)
            with anyio.move_on_after(wait_s):
                await approval.answered.wait()
            group.cancel_scope.cancel()
        if not approval.answered.is_set():
            approval.decide("decline", f"nobody answered within {wait_s:g} s")
        await turn.publish(
            f"{approval.decision} ({approval.how}): {approval.summary()}"
            if approval.decision != "decline"
            else f"declined ({approval.how}): {approval.summary()}"
        )
        return approval.codex_answer()
    finally:
        turn.settle_approval(approval)


async def _leave_pending(turn: TurnRecord, approval: Approval) -> None:
    approval.asked = False
    choices = " or ".join(repr(d) for d in approval.decisions)
    await turn.publish(
        f"waiting for approval {approval.request_id}: {approval.summary()}; answer with "
        f"answer_approval(request_id={approval.request_id!r}, decision={choices})"
    )
    turn.attention.set()


async def _ask(turn: TurnRecord, asker: Any, approval: Approval) -> None:
    try:
        action, content = await asker.ask(approval.message, approval.schema)
    except Exception as exc:  # No back-channel, no elicitation, the host went away...
        logger.info("asking the host about %s failed: %s", approval.request_id, exc)
        await _leave_pending(turn, approval)
        return
    if action != "accept":
        approval.decide("decline", f"the host answered {action}")
    elif approval.kind == "mcp_elicitation":
        approval.decide("accept", "the host accepted", content)
    else:
        chosen = (content or {}).get("decision")
        if chosen in approval.decisions:
            approval.decide(chosen, "the host's answer")
        else:
            approval.decide("decline", f"the host answered {chosen!r}, not one of the choices")


def _form(decisions: list[ApprovalDecision]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "decision": {
                "type": "string",
                "title": "Allow it?",
                "oneOf": [{"const": d, "title": _LABELS[d]} for d in decisions],
                "default": "decline",
            }
        },
        "required": ["decision"],
    }


def _changes(changes: Any, cwd: str | None) -> tuple[list[str], str | None]:
    files: list[str] = []
    diffs: list[str] = []
    for change in changes if isinstance(changes, list) else ():
        if not isinstance(change, Mapping):
            continue
        path = relative_path(_text(change.get("path")), cwd)
        kind = change.get("kind")
        kind = kind.get("type") if isinstance(kind, Mapping) else kind
        files.append(f"{path} ({kind})" if kind else path)
        if diff := _text(change.get("diff")):
            diffs.append(diff if diff.startswith(("---", "diff")) else f"--- {path}\n{diff}")
    text = "\n".join(diffs)
    if len(text) > DIFF_MAX:
        text = f"{text[:DIFF_MAX]}\n… [{len(text) - DIFF_MAX} more characters of diff]"
    return files, text or None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)
