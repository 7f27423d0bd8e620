"""Where Codex persists threads: ``$CODEX_HOME/sessions/YYYY/MM/DD/rollout-…-<id>.jsonl``."""

from __future__ import annotations

import os
import re
from pathlib import Path

import anyio

__all__ = ["codex_home", "find_session", "is_thread_id", "session_saved", "wait_for_session"]

_POLL_S = 0.05
# Codex names threads by UUID and files them as rollout-<local time>-<uuid>.jsonl. Only a
# whole id names a thread: a glob on a part of one would pick some other thread's rollout,
# and codex, told to resume the part, would start an empty thread under that name.
_THREAD_ID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_ROLLOUT = re.compile(r"rollout-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-(?P<id>.{36})\.jsonl")


def codex_home() -> Path:
    home = os.environ.get("CODEX_HOME")
    return Path(home).expanduser() if home else Path.home() / ".codex"


def find_session(thread_id: str) -> Path | None:
    """The rollout file of ``thread_id``, or ``None`` if Codex has none (or the id is not a
    whole thread id)."""
    if not is_thread_id(thread_id):
        return None
    sessions = codex_home() / "sessions"
    for path in sessions.glob(f"*/*/*/rollout-*{thread_id}.jsonl"):
        named = _ROLLOUT.fullmatch(path.name)
        if named is not None and named["id"] == thread_id:
            return path
    return None


def is_thread_id(text: str) -> bool:
    """Whether ``text`` has the form of a whole Codex thread id (a UUID)."""
    return _THREAD_ID.fullmatch(text) is not None


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
