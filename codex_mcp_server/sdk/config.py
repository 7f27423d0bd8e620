"""Flattening of nested config overrides into ``--config key=<TOML literal>`` arguments.

Mirrors the TypeScript SDK: nested mappings become dotted paths, everything else becomes one
TOML literal (strings, numbers, booleans, dates, arrays, inline tables). ``None`` has no TOML
form and is an error, as ``null`` is in TypeScript.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any

import tomli_w

from .errors import InvalidOptionsError

__all__ = ["parse_config_override", "serialize_config_overrides", "to_toml_value"]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def serialize_config_overrides(config: Any) -> list[str]:
    """Turn a nested mapping into ``key=value`` strings, one per ``--config`` flag."""
    if not isinstance(config, Mapping):
        raise InvalidOptionsError("Codex config overrides must be a plain object")
    overrides: list[str] = []
    _flatten(config, "", overrides)
    return overrides


def _flatten(table: Mapping[Any, Any], prefix: str, out: list[str]) -> None:
    if prefix and not table:
        out.append(f"{prefix}={{}}")
        return
    for key, value in table.items():
        _check_key(key)
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Mapping):
            _flatten(value, path, out)
        else:
            out.append(f"{path}={to_toml_value(value, path)}")


def to_toml_value(value: Any, path: str) -> str:
    """Render one value as a TOML literal; ``path`` names it in errors."""
    if value is None:
        raise InvalidOptionsError(f"Codex config override at {path} cannot be null")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidOptionsError(f"Codex config override at {path} must be a finite number")
    if isinstance(value, (str, int, float, date, datetime, time)):
        # tomli-w knows TOML's escaping and number and date formats; take its literal.
        return tomli_w.dumps({"v": value})[4:-1]
    if isinstance(value, Mapping):
        parts = []
        for key, child in value.items():
            _check_key(key)
            literal = key if _BARE_KEY.fullmatch(key) else tomli_w.dumps({key: 0})[:-5]
            parts.append(f"{literal} = {to_toml_value(child, f'{path}.{key}')}")
        return "{" + ", ".join(parts) + "}"
    if isinstance(value, (list, tuple)):
        items = (to_toml_value(item, f"{path}[{index}]") for index, item in enumerate(value))
        return "[" + ", ".join(items) + "]"
    raise InvalidOptionsError(
        f"Unsupported Codex config override value at {path}: {type(value).__name__}"
    )


def _check_key(key: Any) -> None:
    if not isinstance(key, str) or not key:
        raise InvalidOptionsError("Codex config override keys must be non-empty strings")


def parse_config_override(override: str) -> tuple[str, Any]:
    """``key=value`` as codex reads it: the value as TOML, else as the raw string."""
    key, _, raw = override.partition("=")
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip(), value
