"""MCP resources: the registry, and each thread's full transcript, as JSON."""

from __future__ import annotations

import json
from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError

from .registry import UnknownThreadError
from .threads import ThreadService
from .tools import thread_info

__all__ = ["add_resources"]


def add_resources(server: MCPServer[Any], service: ThreadService) -> None:
    @server.resource(
        "codex://threads",
        name="threads",
        title="Codex threads",
        description="The threads this server holds, newest first.",
        mime_type="application/json",
    )
    async def threads() -> str:
        return json.dumps(
            [
                {
                    "thread_id": r.thread_id,
                    "status": r.status,
                    "working_directory": r.working_directory,
                    "turns": len(r.turns),
                    "uri": f"codex://threads/{r.thread_id}",
                }
                for r in service.registry.newest_first()
            ]
        )

    @server.resource(
        "codex://threads/{thread_id}",
        name="thread",
        title="A Codex thread",
        description="A thread's options and every turn with all its items, output untruncated.",
        mime_type="application/json",
    )
    async def thread(thread_id: str) -> str:
        try:
            record = service.registry.get(thread_id)
        except UnknownThreadError as exc:
            raise ResourceError(str(exc)) from None
        return thread_info(record, full=True).model_dump_json()
