"""Config flattening into --config flags, table-driven against the TypeScript SDK's rules."""

from __future__ import annotations

import math
from typing import Any

import pytest

from codex_mcp_server.sdk import Codex, InvalidOptionsError, serialize_config_overrides


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, []),
        (
            {
                "approval_policy": "never",
                "sandbox_workspace_write": {"network_access": True},
                "retry_budget": 3,
                "tool_rules": {"allow": ["git status", "git diff"]},
            },
            [
                'approval_policy="never"',
                "sandbox_workspace_write.network_access=true",
                "retry_budget=3",
                'tool_rules.allow=["git status", "git diff"]',
            ],
        ),
        ({"a": {}}, ["a={}"]),
        ({"a": {"b": {"c": False}}}, ["a.b.c=false"]),
        ({"ratio": 0.5}, ["ratio=0.5"]),
        ({"n": -7}, ["n=-7"]),
        ({"s": 'quote " and \\ backslash'}, ['s="quote \\" and \\\\ backslash"']),
        ({"s": "line\nbreak"}, ['s="line\\nbreak"']),
        ({"s": "ünï"}, ['s="ünï"']),
        ({"list": []}, ["list=[]"]),
        ({"nested": [[1, 2], ["x"]]}, ['nested=[[1, 2], ["x"]]']),
        (
            {"mcp_servers": {"docs": {"command": "npx", "args": ["-y", "srv"]}}},
            ['mcp_servers.docs.command="npx"', 'mcp_servers.docs.args=["-y", "srv"]'],
        ),
        (
            {"servers": [{"name": "a", "we.ird key": 1}]},
            ['servers=[{name = "a", "we.ird key" = 1}]'],
        ),
        ({"t": ({"x": True},)}, ["t=[{x = true}]"]),
    ],
)
def test_flattening(config: dict[str, Any], expected: list[str]) -> None:
    assert serialize_config_overrides(config) == expected


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ([1], "must be a plain object"),
        ("x", "must be a plain object"),
        ({"a": None}, "at a cannot be null"),
        ({"a": {"b": [1, None]}}, r"at a\.b\[1\] cannot be null"),
        ({"a": math.inf}, "at a must be a finite number"),
        ({"a": [math.nan]}, r"at a\[0\] must be a finite number"),
        ({"": 1}, "keys must be non-empty strings"),
        ({"a": {"": 1}}, "keys must be non-empty strings"),
        ({"a": [{"": 1}]}, "keys must be non-empty strings"),
        ({"a": object()}, "Unsupported Codex config override value at a: object"),
        ({"a": {1: 2}}, "keys must be non-empty strings"),
    ],
)
def test_flattening_errors(config: Any, message: str) -> None:
    with pytest.raises(InvalidOptionsError, match=message):
        serialize_config_overrides(config)


def test_codex_rejects_bad_config_at_construction() -> None:
    with pytest.raises(InvalidOptionsError, match="cannot be null"):
        Codex({"config": {"model": None}})
