"""The ``app-server`` engine: threads held warm by one long-lived ``codex app-server``.

Use it through :class:`~codex_mcp_server.sdk.Codex`::

    async with Codex(options, engine="app-server") as codex:
        thread = codex.start_thread()
        turn = await thread.run("Diagnose the test failure")
"""

from .connection import AppServerError, AppServerExitedError
from .engine import AppServerEngine, ThreadLockedError

__all__ = ["AppServerEngine", "AppServerError", "AppServerExitedError", "ThreadLockedError"]
