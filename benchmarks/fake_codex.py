"""A stand-in for ``codex exec --experimental-json``, for the benchmarks that need a stream
codex itself cannot produce on demand (a fixed rate, a 50 MB line, a 44 MB replay).

Standard library only: :func:`support.write_fake_codex` copies this file behind a shebang
(``python -S``) and the SDK or the server runs it as their codex (``codex_path_override``,
``--codex-path``). It ignores its arguments, reads the prompt from stdin like codex, and
takes its orders from the prompt, a JSON object:

* ``{"mode": "replay", "file": PATH}``: write the file (a whole recorded stream) at once.
* ``{"mode": "paced", "events": N, "rate": R}``: ``thread.started``, ``turn.started``, then
  N events at R events/s, alternately ``item.started`` and ``item.completed`` of short
  ``command_execution`` items whose command is ``echo <time.time() when written>``, each
  line written with one ``write`` (unbuffered); then an agent message and ``turn.completed``.
* ``{"mode": "big_line", "bytes": N}``: one command whose ``item.completed`` carries an
  ``aggregated_output`` of N ``x``, on one line; then an agent message and ``turn.completed``.

Exit status 0.

Started as ``fake_codex app-server``, it speaks the app-server's JSON-RPC on stdin and stdout
instead: it answers ``initialize``, ``thread/start`` and ``thread/resume``, and runs each
``turn/start`` by the same orders (its input text), as notifications: ``paced`` gives
``item/started`` and ``item/completed`` of ``commandExecution`` items, then an agent message,
token usage and ``turn/completed``.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid

USAGE = {
    "input_tokens": 42,
    "cached_input_tokens": 12,
    "output_tokens": 5,
    "reasoning_output_tokens": 3,
}
BIG_COMMAND = "/bin/bash -lc \"head -c 50000000 /dev/zero | tr '\\\\0' x\""


def dumps(event: dict[str, object]) -> str:
    return json.dumps(event, separators=(",", ":"))


def write(event: dict[str, object]) -> None:
    line = dumps(event).encode() + b"\n"
    view = memoryview(line)
    while view:
        view = view[os.write(1, view) :]


def command_item(ident: int, command: str, done: bool, output: str = "") -> dict[str, object]:
    return {
        "id": f"item_{ident}",
        "type": "command_execution",
        "command": command,
        "aggregated_output": output,
        "exit_code": 0 if done else None,
        "status": "completed" if done else "in_progress",
    }


def paced(events: int, rate: float) -> None:
    interval = 1.0 / rate
    start = time.perf_counter()
    command = ""
    for index in range(events):
        delay = start + index * interval - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        ident = index // 2
        if index % 2 == 0:
            command = f"/bin/bash -lc 'echo {time.time():.6f}'"
            write({"type": "item.started", "item": command_item(ident, command, False)})
        else:
            write({"type": "item.completed", "item": command_item(ident, command, True)})


def big_line(size: int) -> None:
    write({"type": "item.started", "item": command_item(0, BIG_COMMAND, False)})
    head = dumps({"type": "item.completed", "item": command_item(0, BIG_COMMAND, True)})
    before, after = head.split('"aggregated_output":""', 1)
    out = sys.stdout.buffer
    out.write(f'{before}"aggregated_output":"'.encode())
    block = b"x" * (1 << 20)
    left = size
    while left > 0:
        out.write(block[: min(left, len(block))])
        left -= len(block)
    out.write(f'"{after}\n'.encode())
    out.flush()


def app_server() -> None:
    """Answer requests until stdin closes; run each turn's orders as notifications."""
    state = {"turns": 0}

    def notify(method: str, params: dict[str, object]) -> None:
        write({"method": method, "params": params})

    def run_turn(thread_id: str, turn_id: str, orders: dict[str, object]) -> None:
        ids = {"threadId": thread_id, "turnId": turn_id}
        notify("turn/started", {"threadId": thread_id, "turn": {"id": turn_id}})
        interval = 1.0 / float(str(orders["rate"]))
        start = time.perf_counter()
        command = ""
        for index in range(int(str(orders["events"]))):
            delay = start + index * interval - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            item: dict[str, object] = {"type": "commandExecution", "id": f"call_{index // 2}"}
            if index % 2 == 0:
                command = f"/bin/bash -lc 'echo {time.time():.6f}'"
                item.update(command=command, status="inProgress", exitCode=None)
                notify("item/started", {"item": item, **ids})
            else:
                item.update(command=command, status="completed", exitCode=0, aggregatedOutput="")
                notify("item/completed", {"item": item, **ids})
        message = {"type": "agentMessage", "id": "msg_final", "text": "Done."}
        notify("item/completed", {"item": message, **ids})
        total = {
            "inputTokens": 42,
            "cachedInputTokens": 12,
            "outputTokens": 5,
            "reasoningOutputTokens": 3,
        }
        notify("thread/tokenUsage/updated", {"tokenUsage": {"total": total}, **ids})
        turn = {"id": turn_id, "status": "completed", "error": None}
        notify("turn/completed", {"threadId": thread_id, "turn": turn})

    for line in sys.stdin.buffer:
        message = json.loads(line)
        if "id" not in message or "method" not in message:
            continue
        method, params = message["method"], message.get("params") or {}
        result: dict[str, object] = {}
        if method in ("thread/start", "thread/resume"):
            result = {"thread": {"id": params.get("threadId") or str(uuid.uuid4())}}
        elif method == "turn/start":
            state["turns"] += 1
            turn_id = f"turn_{state['turns']}"
            write({"id": message["id"], "result": {"turn": {"id": turn_id}}})
            orders = json.loads(params["input"][0]["text"])
            run_turn(params["threadId"], turn_id, orders)
            continue
        write({"id": message["id"], "result": result})


def main() -> None:
    if "app-server" in sys.argv[1:]:
        app_server()
        return
    orders = json.loads(sys.stdin.buffer.read())
    mode = orders["mode"]
    if mode == "replay":
        with open(orders["file"], "rb") as file:
            data = file.read()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    write({"type": "thread.started", "thread_id": str(uuid.uuid4())})
    write({"type": "turn.started"})
    if mode == "paced":
        paced(int(orders["events"]), float(orders["rate"]))
    elif mode == "big_line":
        big_line(int(orders["bytes"]))
    else:
        raise SystemExit(f"fake codex: unknown mode {mode!r}")
    message = {"id": "item_final", "type": "agent_message", "text": "Done."}
    write({"type": "item.completed", "item": message})
    write({"type": "turn.completed", "usage": USAGE})


if __name__ == "__main__":
    main()
