"""Codex's home, the threads persisted there, and what a resumed thread needs to know of its
past (:func:`read_session`)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..sdk import Usage
from ..sdk.sessions import find_session as _find_session
from ..sdk.sessions import is_thread_id

__all__ = ["SessionSummary", "codex_home", "find_session", "is_thread_id", "read_session"]


def codex_home() -> Path:
    home = os.environ.get("CODEX_HOME")
    return Path(home).expanduser() if home else Path.home() / ".codex"


def find_session(thread_id: str) -> Path | None:
    """The rollout file of ``thread_id``, or ``None`` if Codex has none (or the id is not a
    whole thread id)."""
    return _find_session(codex_home(), thread_id)


@dataclass(frozen=True)
class SessionSummary:
    """What a rollout file says about a thread's past."""

    cwd: str | None = None
    turns: int = 0
    """Turns codex started in the thread, in any process."""
    usage: Usage | None = None
    """Tokens used by the whole thread so far: ``codex exec`` reports usage summed over the
    thread, restored from here on resume, so a turn's own usage is the difference."""


def read_session(path: Path) -> SessionSummary:
    """Summarize the rollout at ``path``; lines that do not parse are skipped.

    Lines are only decoded when they can matter (a rollout holds every command's output).
    """
    cwd: str | None = None
    turns = 0
    usage: Usage | None = None
    try:
        with path.open("rb") as file:
            for raw in file:
                if cwd is None and b'"session_meta"' in raw:
                    kind, payload = _parse(raw)
                    if kind == "session_meta" and isinstance(payload.get("cwd"), str):
                        cwd = payload["cwd"]
                elif b'"task_started"' in raw:
                    kind, payload = _parse(raw)
                    turns += kind == "event_msg" and payload.get("type") == "task_started"
                elif b'"token_count"' in raw:
                    kind, payload = _parse(raw)
                    info = payload.get("info")
                    total = info.get("total_token_usage") if isinstance(info, dict) else None
                    if payload.get("type") == "token_count" and isinstance(total, dict):
                        usage = _usage(total)
    except OSError:
        pass
    return SessionSummary(cwd, turns, usage)


def _parse(raw: bytes) -> tuple[Any, dict[str, Any]]:
    """A rollout line's type and payload."""
    try:
        line = json.loads(raw)
    except ValueError:
        return None, {}
    if not isinstance(line, dict) or not isinstance(line.get("payload"), dict):
        return None, {}
    return line.get("type"), line["payload"]


def _usage(total: dict[str, Any]) -> Usage:
    def count(key: str) -> int:
        value = total.get(key)
        return value if isinstance(value, int) and value >= 0 else 0

    return Usage(
        input_tokens=count("input_tokens"),
        cached_input_tokens=count("cached_input_tokens"),
        cache_write_input_tokens=count("cache_write_input_tokens"),
        output_tokens=count("output_tokens"),
        reasoning_output_tokens=count("reasoning_output_tokens"),
    )
