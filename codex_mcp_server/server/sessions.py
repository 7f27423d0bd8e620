"""Where Codex persists threads: ``$CODEX_HOME/sessions/YYYY/MM/DD/rollout-…-<id>.jsonl``."""

from __future__ import annotations

import os
import re
from pathlib import Path

import anyio

__all__ = ["codex_home", "find_session", "session_saved", "wait_for_session"]

_POLL_S = 0.05
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


def session_saved(thread_id: str) -> bool:
    """Whether codex has written the thread's rollout, so that it can be resumed."""
    path = find_session(thread_id)
    try:
        return path is not None and path.stat().st_size > 0
    except OSError:
        return False


async def wait_for_session(thread_id: str, timeout_s: float) -> bool:
    """Wait up to ``timeout_s`` for codex to save the thread (a few tenths of a second after
    it names it); stopping codex before that loses the thread."""
    for _ in range(round(timeout_s / _POLL_S)):
        if session_saved(thread_id):
            return True
        await anyio.sleep(_POLL_S)
    return session_saved(thread_id)
