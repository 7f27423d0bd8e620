"""The random host-fault schedule of the reliability suite, at benchmark size.

CI runs each random schedule of ``tests/test_reliability_host_faults.py`` 20 times; this
runs them ``CODEX_MCP_FAULT_ROUNDS`` = 100 times (20 with ``--quick``): cancels at random
moments (in memory and over stdio), stdin closed or SIGTERM at random moments. Each round
checks that no codex process is left and that no turn stays running.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import anyio
from support import Row, Settings

ROOT = Path(__file__).resolve().parent.parent


async def bench_faults(settings: Settings, work: Path) -> dict[str, Any]:
    rounds = 20 if settings.quick else 100
    env = {**os.environ, "CODEX_MCP_FAULT_ROUNDS": str(rounds)}
    command = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
        "tests/test_reliability_host_faults.py", "-k", "random_moments",
    ]  # fmt: skip
    start = time.perf_counter()
    result = await anyio.run_process(command, cwd=ROOT, env=env, check=False)
    seconds = time.perf_counter() - start
    summary = result.stdout.decode(errors="replace").strip().splitlines()[-1:]
    passed = result.returncode == 0
    print(f"  {summary[0] if summary else 'no output'}", flush=True)
    return {
        "rounds": rounds,
        "returncode": result.returncode,
        "summary": summary,
        "seconds": round(seconds, 1),
        "rows": [
            Row(
                "host faults",
                f"random cancels, stdin closes, SIGTERMs: 3 schedules × {rounds} rounds",
                "all passed" if passed else "FAILURES",
                "no process left, no turn running",
                passed,
                f"{seconds:.0f} s",
            )
        ],
    }
