"""Codex's home and the threads persisted there, as the server looks them up."""

from __future__ import annotations

import os
from pathlib import Path

from ..sdk.sessions import find_session as _find_session
from ..sdk.sessions import is_thread_id

__all__ = ["codex_home", "find_session", "is_thread_id"]


def codex_home() -> Path:
    home = os.environ.get("CODEX_HOME")
    return Path(home).expanduser() if home else Path.home() / ".codex"


def find_session(thread_id: str) -> Path | None:
    """The rollout file of ``thread_id``, or ``None`` if Codex has none (or the id is not a
    whole thread id)."""
    return _find_session(codex_home(), thread_id)
