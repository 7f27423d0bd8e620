"""A realistic ``codex exec --experimental-json`` stream, generated deterministically.

Used by the in-memory benchmarks (the SDK's cost per event, parse and render throughput) and
replayed by the fake codex. Shaped like codex 0.163's output for a long agentic turn.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Stream", "build_stream", "codex_shell_wrapper"]

_COMMANDS = [
    'rg -n "parse_event" codex_mcp_server',
    "ls -la",
    "git status --short",
    "sed -n '1,80p' codex_mcp_server/sdk/thread.py",
    "python -m pytest -q tests/test_events.py",
    "cat pyproject.toml",
    "git diff --stat",
    "find . -name '*.py' -newer setup.cfg",
    "ruff check .",
    "grep -rn 'TODO' src/ | head -20",
]
_OUTPUTS = [
    "",
    "OK\n",
    " M codex_mcp_server/sdk/thread.py\n?? benchmarks/\n",
    "codex_mcp_server/sdk/events.py:203:def parse_event(line: bytes | bytearray | str) -> "
    "ThreadEvent:\ncodex_mcp_server/sdk/thread.py:148:                    event = "
    "parse_event(line)\n",
    "total 48\ndrwxr-xr-x  7 dev dev 4096 Jan  2 10:00 .\ndrwxr-xr-x 12 dev dev 4096 "
    "Jan  2 09:58 ..\n-rw-r--r--  1 dev dev 1843 Jan  2 10:00 pyproject.toml\n"
    "drwxr-xr-x  4 dev dev 4096 Jan  2 10:00 tests\n",
    "........................................                                 [100%]\n"
    "40 passed in 0.81s\n",
    "All checks passed!\n",
    " 3 files changed, 41 insertions(+), 7 deletions(-)\n",
    "src/app.py:12:    # TODO: handle the “résumé” case\tlater\nsrc/db.py:88:    "
    '# TODO: retry on "database is locked"\n',
    'Traceback (most recent call last):\n  File "<stdin>", line 1, in <module>\n'
    "ModuleNotFoundError: No module named 'yaml'\n",
]
_MESSAGES = [
    "I'll look at the failing test first.",
    "The parser keeps unknown fields, so newer CLIs still work.",
    "Running the test suite to confirm the fix.",
    "Found it: the watchdog was reset by warning events. Fixing that now.",
    "Everything passes. Summary:\n\n- fixed the reader\n- added a test for long lines",
]
_REASONING = [
    "**Inspecting the repository**\n\nI need to find where events are parsed.",
    "**Planning the fix**",
    "**Checking test coverage** for the line reader and the idle timeout.",
]
THREAD_ID = "0199a2b3-c4d5-7e6f-8a9b-0c1d2e3f4a5b"
USAGE = {
    "input_tokens": 1_234_567,
    "cached_input_tokens": 1_000_000,
    "cache_write_input_tokens": 0,
    "output_tokens": 45_678,
    "reasoning_output_tokens": 12_345,
}


def codex_shell_wrapper(script: str) -> str:
    """``script`` wrapped as codex 0.163 reports it: ``/bin/bash -lc '...'``.

    Single quotes, or double quotes (with ``\\``, ``"``, ``$`` and backquotes escaped) when
    the script holds a single quote, as observed from the real binary.
    """
    if "'" not in script:
        return f"/bin/bash -lc '{script}'"
    escaped = "".join(f"\\{ch}" if ch in '\\"$`' else ch for ch in script)
    return f'/bin/bash -lc "{escaped}"'


@dataclass
class Stream:
    data: bytes
    lines: list[bytes]
    counts: Counter[str] = field(default_factory=Counter)
    completed_items: int = 0
    final_response: str = ""

    def describe(self) -> dict[str, Any]:
        return {
            "events": len(self.lines),
            "bytes": len(self.data),
            "mean_line_bytes": round(len(self.data) / len(self.lines), 1),
            "event_kinds": dict(sorted(self.counts.items())),
        }


def build_stream(n_events: int, seed: int = 20240601) -> Stream:
    """A ``codex exec --experimental-json`` stream of about ``n_events`` events.

    Mostly shell commands (``item.started`` + ``item.completed``, each command distinct, as
    in a real turn, so the renderer's small caches help no more than they would there), some
    reasoning and agent messages, a few todo-list updates and file changes, framed by
    thread/turn events. Compact JSON with raw UTF-8, as codex writes it.
    """
    rng = random.Random(seed)
    events: list[dict[str, Any]] = [
        {"type": "thread.started", "thread_id": THREAD_ID},
        {"type": "turn.started"},
    ]
    next_id = 0

    def item_id() -> str:
        nonlocal next_id
        next_id += 1
        return f"item_{next_id}"

    while len(events) < n_events - 2:
        roll = rng.random()
        if roll < 0.62:
            ident = item_id()
            script = f"{rng.choice(_COMMANDS)} | head -n {next_id}"
            exit_code = 0 if rng.random() < 0.9 else 1
            started = {
                "id": ident,
                "type": "command_execution",
                "command": codex_shell_wrapper(script),
                "aggregated_output": "",
                "exit_code": None,
                "status": "in_progress",
            }
            completed = dict(
                started,
                aggregated_output=rng.choice(_OUTPUTS),
                exit_code=exit_code,
                status="completed" if exit_code == 0 else "failed",
            )
            events.append({"type": "item.started", "item": started})
            events.append({"type": "item.completed", "item": completed})
        elif roll < 0.80:
            text = rng.choice(_REASONING)
            events.append(
                {
                    "type": "item.completed",
                    "item": {"id": item_id(), "type": "reasoning", "text": text},
                }
            )
        elif roll < 0.92:
            text = rng.choice(_MESSAGES)
            item: dict[str, Any] = {"id": item_id(), "type": "agent_message", "text": text}
            events.append({"type": "item.completed", "item": item})
        elif roll < 0.97:
            todos = [
                {"text": "Reproduce the failure", "completed": True},
                {"text": "Fix the reader", "completed": rng.random() < 0.5},
                {"text": "Add a regression test", "completed": False},
            ]
            item = {"id": item_id(), "type": "todo_list", "items": todos}
            events.append({"type": "item.updated", "item": item})
        else:
            changes = [{"path": "codex_mcp_server/sdk/exec.py", "kind": "update"}]
            item = {
                "id": item_id(),
                "type": "file_change",
                "changes": changes,
                "status": "completed",
            }
            events.append({"type": "item.completed", "item": item})
    final_response = "Done: the reader is fixed and covered by a regression test."
    events.append(
        {
            "type": "item.completed",
            "item": {"id": item_id(), "type": "agent_message", "text": final_response},
        }
    )
    events.append({"type": "turn.completed", "usage": dict(USAGE)})
    lines = [
        json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode() for event in events
    ]
    stream = Stream(data=b"\n".join(lines) + b"\n", lines=lines)
    stream.counts.update(event["type"] for event in events)
    stream.completed_items = stream.counts["item.completed"]
    stream.final_response = final_response
    return stream
