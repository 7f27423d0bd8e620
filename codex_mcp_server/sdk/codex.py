"""The entry point of the SDK: :class:`Codex`."""

from __future__ import annotations

from .config import serialize_config_overrides
from .exec import CodexExec
from .options import CodexOptions, ThreadOptions
from .thread import Thread

__all__ = ["Codex"]


class Codex:
    """Starts and resumes threads, all run by the same codex binary and settings.

    Config overrides are validated here, so a bad one fails at construction. The binary is
    looked up on the first turn (:class:`CodexNotFoundError` then says how to install it).
    """

    def __init__(self, options: CodexOptions | None = None) -> None:
        self._options: CodexOptions = dict(options or {})  # type: ignore[assignment]
        config = self._options.get("config")
        self._exec = CodexExec(
            executable_path=self._options.get("codex_path_override"),
            env=self._options.get("env"),
            config_args=serialize_config_overrides(config) if config is not None else (),
            config_overrides=self._options.get("config_overrides", ()),
        )

    @property
    def exec(self) -> CodexExec:
        """The process runner shared by this client's threads."""
        return self._exec

    def start_thread(self, options: ThreadOptions | None = None) -> Thread:
        """A new conversation; its id is known once its first turn starts."""
        return Thread(self._exec, self._options, dict(options or {}))  # type: ignore[arg-type]

    def resume_thread(self, thread_id: str, options: ThreadOptions | None = None) -> Thread:
        """A conversation persisted by codex under ``$CODEX_HOME/sessions``."""
        return Thread(self._exec, self._options, dict(options or {}), thread_id)  # type: ignore[arg-type]
