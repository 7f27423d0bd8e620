"""Helpers for tests that drive the MCP server through a real MCP client."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.server import MCPServer
from mcp.types import CallToolResult

from codex_mcp_server.server import Settings, ThreadService, build_server
from codex_mcp_server.testing import ScriptedModel, replies

from .procs import codex_only, describe, turn_processes, wait_until_gone

exec_only = pytest.mark.parametrize("backend", ["exec"], indirect=True)
"""For a test of what only ``codex exec`` does (a fake codex that prints exec's JSONL)."""


def serve(settings: Settings) -> MCPServer[ThreadService]:
    """:func:`build_server` on the engine of the test's ``backend`` fixture."""
    backend = os.environ.get("CODEX_MCP_BACKEND", settings.backend)
    return build_server(dataclasses.replace(settings, backend=backend))  # type: ignore[arg-type]


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


async def cancel_a_hanging_turn(
    client: Client, model: ScriptedModel, home: Path, thread_id: str, requests: int
) -> None:
    """Run a turn that hangs at the model, cancel the call, and check that codex is gone
    within a second and the turn is recorded interrupted. ``requests``: the model's count
    once the hanging request has arrived."""
    model.add(replies.hang())
    async with anyio.create_task_group() as group:

        async def long_turn() -> None:
            await client.call_tool("run_turn", {"thread_id": thread_id, "prompt": "long"})

        group.start_soon(long_turn)
        await anyio.to_thread.run_sync(model.wait_for_requests, requests, 20.0)
        assert codex_only(home) != []
        group.cancel_scope.cancel()
    left = await anyio.to_thread.run_sync(wait_until_gone, home, 1.0, turn_processes)
    assert left == [], describe(left)
    info = await settled_thread(client, thread_id)
    assert info["turns"][-1]["status"] == "interrupted"
