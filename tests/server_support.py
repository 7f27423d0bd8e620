"""Helpers for tests that drive the MCP server through a real MCP client."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio
from mcp import Client
from mcp.types import CallToolResult


@dataclass
class ProgressLog:
    """A progress callback that records what the server reported."""

    values: list[float] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    seen: anyio.Event = field(default_factory=anyio.Event)

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.values.append(progress)
        self.messages.append(message or "")
        self.seen.set()


def structured(result: CallToolResult) -> dict[str, Any]:
    assert result.structured_content is not None, result.content
    return result.structured_content


def text(result: CallToolResult) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


async def settled_thread(client: Client, thread_id: str) -> dict[str, Any]:
    """``get_thread`` once the thread is idle: a cancelled call ends on the server a bit later."""
    with anyio.fail_after(5.0):
        while True:
            info = structured(await client.call_tool("get_thread", {"thread_id": thread_id}))
            if info["status"] == "idle":
                return info
            await anyio.sleep(0.02)
