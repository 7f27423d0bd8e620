"""Helpers for tests that drive the MCP server through a real MCP client."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio
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
