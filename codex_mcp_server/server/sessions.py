"""Where Codex persists threads: ``$CODEX_HOME/sessions/YYYY/MM/DD/rollout-…-<id>.jsonl``."""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["codex_home", "find_session"]

_THREAD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,199}")


def codex_home() -> Path:
    home = os.environ.get("CODEX_HOME")
    return Path(home).expanduser() if home else Path.home() / ".codex"


def find_session(thread_id: str) -> Path | None:
    """The rollout file of ``thread_id``, or ``None`` if Codex has none (or the id is odd)."""
    if not _THREAD_ID.fullmatch(thread_id):
        return None
    sessions = codex_home() / "sessions"
    return next(iter(sessions.glob(f"*/*/*/rollout-*-{thread_id}.jsonl")), None)
