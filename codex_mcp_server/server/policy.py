"""Checks of tool arguments against the server's settings: paths, sandbox ceiling, schemas.

Each check raises :class:`PolicyError` with a message that names the problem and the fix.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..sdk import serialize_config_overrides
from .settings import Settings

__all__ = [
    "PolicyError",
    "check_config",
    "check_output_schema",
    "check_sandbox",
    "resolve_dir",
    "resolve_files",
]


class PolicyError(ValueError):
    pass


MAX_PATH = 4096


def _resolve(path: str, base: Path) -> Path:
    if len(path) > MAX_PATH:
        raise PolicyError(f"path too long: {len(path)} characters, at most {MAX_PATH}")
    if "\x00" in path:
        raise PolicyError(f"{path[:200]!r} is not a valid path (it contains a NUL character)")
    # realpath resolves symlinks and `..` before the allowed-roots check, so neither escapes.
    return Path(os.path.realpath(base / Path(path).expanduser()))


def _check_inside(path: Path, settings: Settings, what: str) -> None:
    roots = settings.allowed_roots
    if roots and not any(path == root or root in path.parents for root in roots):
        allowed = ", ".join(str(r) for r in roots)
        raise PolicyError(
            f"{what} {path} lies outside the directories this server allows ({allowed}); "
            "use a path inside one of them (--allowed-root)."
        )


def resolve_dir(path: str | None, settings: Settings, what: str, base: Path | None = None) -> Path:
    """An existing directory inside the allowed roots; ``None`` means the server's ``--cwd``."""
    if path is None:
        return settings.cwd
    resolved = _resolve(path, base or settings.cwd)
    _check_inside(resolved, settings, what)
    if not _is(resolved, Path.is_dir):
        raise PolicyError(f"{what} {resolved} does not exist or is not a directory.")
    return resolved


def resolve_files(paths: Sequence[str] | None, settings: Settings, base: Path) -> list[str]:
    """Existing image files inside the allowed roots, as absolute paths."""
    files = []
    for path in paths or ():
        resolved = _resolve(path, base)
        _check_inside(resolved, settings, "image")
        if not _is(resolved, Path.is_file):
            raise PolicyError(f"image {path} not found (looked for {resolved}).")
        files.append(str(resolved))
    return files


def _is(path: Path, test: Callable[[Path], bool]) -> bool:
    try:
        return test(path)
    except OSError:  # A name too long for the file system, say.
        return False


def check_config(config: Mapping[str, Any] | None, settings: Settings) -> None:
    """Refuse config codex cannot take, or that would let commands write beyond the roots."""
    if not config:
        return
    overrides = serialize_config_overrides(config)
    if any("\x00" in override for override in overrides):
        raise PolicyError("config keys and values must be free of NUL characters")
    if settings.allowed_roots and any("writable_roots" in key for key in overrides):
        raise PolicyError(
            "config may not set sandbox_workspace_write.writable_roots on this server "
            "(it restricts directories with --allowed-root); use additional_directories."
        )


def check_sandbox(mode: str, settings: Settings) -> None:
    if not settings.sandbox_allowed(mode):
        raise PolicyError(
            f"sandbox_mode {mode} is above this server's ceiling ({settings.max_sandbox}, "
            f"set by --max-sandbox); ask for {settings.max_sandbox} or less."
        )


def check_output_schema(schema: dict[str, Any] | None) -> None:
    if schema is None:
        return
    if schema.get("type") != "object":
        raise PolicyError(
            'output_schema must be a JSON Schema object with "type": "object" at its root, '
            'e.g. {"type": "object", "properties": {"answer": {"type": "string"}}, '
            '"required": ["answer"], "additionalProperties": false}.'
        )
