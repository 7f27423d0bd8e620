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


def main() -> None:
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
