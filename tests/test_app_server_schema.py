"""The app-server protocol of the codex we run, against the schema checked in for its version.

``codex app-server generate-json-schema`` prints the protocol the binary speaks. For a version
checked in (the wheel's, npm's newest when this was written), any change fails here with the
definitions that changed. A newer codex must still have every method the engine uses; write
its schema with ``UPDATE_SNAPSHOTS=1`` and review the diff against the previous version.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from codex_mcp_server.sdk import find_codex

SCHEMAS = Path(__file__).parent / "snapshots" / "app_server_schema"
USED = {
    # What codex_mcp_server.sdk.app_server sends and reads.
    *("initialize", "thread/start", "thread/resume", "thread/unsubscribe", "thread/fork"),
    *("turn/start", "turn/interrupt", "turn/steer", "thread/backgroundTerminals/clean"),
    "review/start",
    *("turn/started", "turn/completed", "item/started", "item/completed", "error"),
    *("thread/tokenUsage/updated", "turn/plan/updated", "turn/diff/updated"),
    *("item/agentMessage/delta", "item/commandExecution/requestApproval"),
    *("item/fileChange/requestApproval", "mcpServer/elicitation/request"),
}


def _definitions(schema: dict[str, Any]) -> set[str]:
    return set(schema.get("definitions", {}))


def test_the_app_server_protocol_matches_the_checked_in_schema(tmp_path: Path) -> None:
    codex = find_codex(os.environ.get("CODEX_MCP_TEST_CODEX")).path
    version = subprocess.run(
        [codex, "--version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout.split()[-1]
    subprocess.run(
        # Experimental too: the engine declares experimentalApi and uses some of it.
        [codex, "app-server", "generate-json-schema", "--experimental", "--out", str(tmp_path)],
        capture_output=True,
        timeout=60,
        check=True,
    )
    generated = json.loads((tmp_path / "codex_app_server_protocol.schemas.json").read_text())
    snapshot = SCHEMAS / f"{version}.json"
    if os.environ.get("UPDATE_SNAPSHOTS"):
        snapshot.write_text(json.dumps(generated, indent=1, sort_keys=True), encoding="utf-8")
    text = json.dumps(generated)
    missing = [method for method in USED if f'"{method}"' not in text]
    assert missing == [], f"codex {version} lacks methods the engine uses: {missing}"
    if not snapshot.exists():
        # A codex newer than any checked in (CI runs npm's newest): what the engine uses is
        # there (above); write its schema with UPDATE_SNAPSHOTS=1 to see everything else.
        return
    expected = json.loads(snapshot.read_text(encoding="utf-8"))
    added = sorted(_definitions(generated) - _definitions(expected))
    removed = sorted(_definitions(expected) - _definitions(generated))
    assert (added, removed) == ([], []), f"definitions added {added}, removed {removed}"
    changed = sorted(
        name
        for name, definition in generated.get("definitions", {}).items()
        if expected["definitions"][name] != definition
    )
    assert changed == [], f"definitions changed: {changed}"
    assert generated == expected


def test_the_methods_the_engine_uses_exist_in_every_checked_in_schema() -> None:
    for snapshot in sorted(SCHEMAS.glob("*.json")):
        text = snapshot.read_text(encoding="utf-8")
        for method in USED:
            assert f'"{method}"' in text, f"{method} missing from {snapshot.name}"
