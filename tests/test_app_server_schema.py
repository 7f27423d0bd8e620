"""The app-server protocol of the codex we run, against the schema checked in for its version.

``codex app-server generate-json-schema`` prints the protocol the binary speaks. A codex bump
that changes it fails here with the names that changed; write the new version's schema with
``UPDATE_SNAPSHOTS=1`` and review the diff against the previous one before relying on it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from codex_mcp_server.sdk import find_codex

SCHEMAS = Path(__file__).parent / "snapshots" / "app_server_schema"


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
    assert snapshot.exists(), (
        f"no app-server schema checked in for codex {version}: run this test with "
        "UPDATE_SNAPSHOTS=1 and review what changed against the previous version"
    )
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
    """What codex_mcp_server.sdk.app_server sends and reads, in each version we test."""
    used_requests = {
        *("initialize", "thread/start", "thread/resume", "thread/unsubscribe"),
        *("turn/start", "turn/interrupt", "thread/backgroundTerminals/clean"),
    }
    used_notifications = {
        *("turn/started", "turn/completed", "item/started", "item/completed"),
        *("thread/tokenUsage/updated", "turn/plan/updated", "error"),
    }
    for snapshot in sorted(SCHEMAS.glob("*.json")):
        text = snapshot.read_text(encoding="utf-8")
        for method in used_requests | used_notifications:
            assert f'"{method}"' in text, f"{method} missing from {snapshot.name}"
