"""Where codex persists threads: ``$CODEX_HOME/sessions/YYYY/MM/DD/rollout-<time>-<id>.jsonl``."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["find_session", "is_thread_id", "session_saved"]

# Codex names threads by UUID and files them as rollout-<local time>-<uuid>.jsonl. Only a
# whole id names a thread: a glob on a part of one would pick some other thread's rollout,
# and codex, told to resume the part, would start an empty thread under that name.
_THREAD_ID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_ROLLOUT = re.compile(r"rollout-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-(?P<id>.{36})\.jsonl")


def is_thread_id(text: str) -> bool:
    """Whether ``text`` has the form of a whole Codex thread id (a UUID)."""
    return _THREAD_ID.fullmatch(text) is not None


def find_session(codex_home: Path, thread_id: str) -> Path | None:
    """The rollout file of ``thread_id`` under ``codex_home``, or ``None`` if codex has none
    (or the id is not a whole thread id)."""
    if not is_thread_id(thread_id):
        return None
    for path in (codex_home / "sessions").glob(f"*/*/*/rollout-*{thread_id}.jsonl"):
        named = _ROLLOUT.fullmatch(path.name)
        if named is not None and named["id"] == thread_id:
            return path
    return None


def session_saved(codex_home: Path, thread_id: str) -> bool:
    """Whether codex has written the thread's rollout, so that it can be resumed."""
    path = find_session(codex_home, thread_id)
    try:
        return path is not None and path.stat().st_size > 0
    except OSError:
        return False
