"""Options of :class:`Codex`, of threads and of turns, and the four enums.

Options are ``TypedDict``s so that editors complete them and plain dicts work as in the
TypeScript SDK. Enum members are ``str`` subclasses: ``SandboxMode.READ_ONLY == "read-only"``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from enum import Enum
from typing import Any, Union

from typing_extensions import TypedDict

__all__ = [
    "ApprovalMode",
    "CodexConfigObject",
    "CodexConfigValue",
    "CodexOptions",
    "ModelReasoningEffort",
    "SandboxMode",
    "ThreadOptions",
    "TurnOptions",
    "WebSearchMode",
]


class _StrEnum(str, Enum):
    # enum.StrEnum only exists from Python 3.11; this behaves the same for our purposes.
    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, format_spec: str) -> str:
        return format(str(self.value), format_spec)


class SandboxMode(_StrEnum):
    READ_ONLY = "read-only"
    WORKSPACE_WRITE = "workspace-write"
    DANGER_FULL_ACCESS = "danger-full-access"


class ApprovalMode(_StrEnum):
    NEVER = "never"
    ON_REQUEST = "on-request"
    ON_FAILURE = "on-failure"
    UNTRUSTED = "untrusted"


class ModelReasoningEffort(_StrEnum):
    MINIMAL = "minimal"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    XHIGH = "xhigh"
    MAX = "max"
    ULTRA = "ultra"


class WebSearchMode(_StrEnum):
    DISABLED = "disabled"
    CACHED = "cached"
    LIVE = "live"


CodexConfigValue = Union[str, int, float, bool, Sequence[Any], Mapping[str, Any]]
CodexConfigObject = Mapping[str, Any]


class CodexOptions(TypedDict, total=False):
    """Options of :class:`Codex`, shared by all its threads."""

    codex_path_override: str
    """Path of the codex binary; skips the lookup (wheel, then ``PATH``)."""
    base_url: str
    """Passed as ``--config openai_base_url=...``."""
    api_key: str
    """Set as ``CODEX_API_KEY`` in codex's environment."""
    config: CodexConfigObject
    """Nested config overrides, flattened to ``--config key=<TOML literal>`` flags."""
    config_overrides: Sequence[str]
    """Raw ``key=value`` overrides, passed unchanged after ``config``."""
    env: Mapping[str, str]
    """Codex's whole environment; when given, this process's environment is not inherited."""
    idle_timeout: float
    """Fail a turn (and kill codex) when codex shows no progress for this many seconds."""
    scratch_directory: str
    """Where turns write the files codex reads (the output schema); default: the system's
    temporary directory. Choose one the sandboxed commands cannot write."""


class ThreadOptions(TypedDict, total=False):
    """Options of a thread, applied to each of its turns."""

    model: str
    profile: str
    """``--profile``: layers ``$CODEX_HOME/<profile>.config.toml`` on the config (not in TS)."""
    thread_source: str
    sandbox_mode: SandboxMode | str
    working_directory: str
    skip_git_repo_check: bool
    model_reasoning_effort: ModelReasoningEffort | str
    network_access_enabled: bool
    web_search_mode: WebSearchMode | str
    web_search_enabled: bool
    approval_policy: ApprovalMode | str
    additional_directories: Sequence[str]
    config_overrides: Sequence[str]
    """Raw ``key=value`` overrides of this thread, after the :class:`CodexOptions` ones
    (not in TS)."""


class TurnOptions(TypedDict, total=False):
    """Options of one turn."""

    output_schema: Mapping[str, Any]
    """A JSON Schema object the final response must conform to."""
    cancel_event: asyncio.Event
    """Setting it stops the turn; ``run`` then raises :class:`TurnCancelledError`."""
    cyber_access_program: str
    idle_timeout: float
    """Overrides :attr:`CodexOptions.idle_timeout` for this turn."""
    on_request: Callable[[str, Mapping[str, Any]], Awaitable[Any]]
    """Answers what codex asks during this turn (app-server engine): approvals of commands
    and file changes, its MCP servers' elicitations. Called with the app-server's method and
    params (a file change's request carries the ``changes`` of its item, diffs included) and
    returns the result to send back. Without it, the engine's ``on_request``, else no."""
