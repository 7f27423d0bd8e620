"""Checks of tool arguments against the server's settings: paths, sandbox ceiling, config,
schemas; and the config the server passes codex last on every turn to hold them.

Each check raises :class:`PolicyError` with a message that names the problem and the fix.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..sdk import serialize_config_overrides
from ..sdk.config import to_toml_value
from .allowlist import check_config_keys
from .allowlist import check_profile as _check_profile
from .sessions import codex_home
from .settings import Settings

__all__ = [
    "PolicyError",
    "check_again",
    "check_codex_home",
    "check_config",
    "check_output_schema",
    "check_profile",
    "check_sandbox",
    "enforced_overrides",
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
    try:
        check_config_keys(config, settings)
    except ValueError as exc:
        raise PolicyError(str(exc)) from None
    if settings.allowed_roots and any("writable_roots" in key for key in overrides):
        raise PolicyError(
            "config may not set sandbox_workspace_write.writable_roots on this server "
            "(it restricts directories with --allowed-root); use additional_directories."
        )


def check_profile(name: str | None, settings: Settings) -> None:
    """A profile named by a client must exist and hold only keys its ``config`` could set."""
    if name is None:
        return
    try:
        _check_profile(name, settings)
    except ValueError as exc:
        raise PolicyError(str(exc)) from None


def check_codex_home(directories: Sequence[Path], sandbox: str) -> None:
    """Refuse a writable directory that holds Codex's home, or lies inside it.

    Commands that could write there could add ``mcp_servers`` or ``notify`` to its
    ``config.toml`` (which every later thread runs, outside the sandbox), or change the
    server's own files kept there. Codex keeps a ``.codex`` directly inside a writable
    directory read-only, so ``DIR/.codex`` as the home is safe.
    """
    if sandbox != "workspace-write":
        return  # read-only writes nothing; danger-full-access writes everything anyway.
    home = Path(os.path.realpath(codex_home()))
    for directory in directories:
        inside = directory == home or home in directory.parents
        if inside or (directory in home.parents and home != directory / ".codex"):
            where = "lies inside" if inside else "contains"
            raise PolicyError(
                f"{directory} {where} Codex's home {home} (CODEX_HOME): commands that can write "
                "there could change the configuration every later thread runs with. Work in a "
                "directory that neither contains nor lies inside it, or use sandbox_mode "
                "read-only. (An operator who needs this directory can keep CODEX_HOME "
                "elsewhere, or at DIR/.codex, which codex keeps read-only.)"
            )


def check_again(directories: Sequence[str], settings: Settings, sandbox: str) -> None:
    """Before each later turn: the thread's directories, resolved again, are unchanged.

    They were resolved when the thread started; a directory since replaced by a symlink
    (by a command of some thread) would otherwise take the turn elsewhere, out of the
    allowed roots, or to a place whose project config codex was not told to ignore.
    """
    for directory in directories:
        now = _resolve(directory, Path(directory))
        if str(now) != directory:
            raise PolicyError(
                f"The thread's directory {directory} now resolves to {now} (a symlink was put "
                "in its path since the thread started). Restore the directory to continue "
                "the thread, or start a new thread in the directory you mean."
            )
        _check_inside(now, settings, "the thread's directory")
        if not _is(now, Path.is_dir):
            raise PolicyError(
                f"The thread's directory {directory} no longer exists or is not a directory; "
                "restore it to continue the thread, or start a new thread elsewhere."
            )
    check_codex_home([Path(d) for d in directories], sandbox)


def enforced_overrides(settings: Settings, cwd: Path) -> list[str]:
    """Config that holds the server's promises, passed after everything else.

    - Unless the operator said ``--trust-project-config``, every directory from ``cwd`` up
      is an untrusted project: codex loads no ``.codex/config.toml`` (nor hooks or rules)
      from the tree, where a sandboxed command may have written one, and does not record
      the project as trusted in ``$CODEX_HOME/config.toml`` (codex 0.163 does both in
      workspace-write otherwise).
    - With allowed roots, or with Codex's home under ``/tmp`` or ``$TMPDIR``, those two are
      not writable: codex's workspace-write makes them so by default.
    """
    overrides = []
    if not settings.trust_project_config:
        projects = {str(d): {"trust_level": "untrusted"} for d in (cwd, *cwd.parents)}
        overrides.append(f"projects={to_toml_value(projects, 'projects')}")
    home = Path(os.path.realpath(codex_home()))
    temporary = [Path("/tmp"), *([Path(t)] if (t := os.environ.get("TMPDIR")) else [])]
    temporary = [Path(os.path.realpath(t)) for t in temporary]
    if settings.allowed_roots or any(t == home or t in home.parents for t in temporary):
        overrides += [
            "sandbox_workspace_write.exclude_slash_tmp=true",
            "sandbox_workspace_write.exclude_tmpdir_env_var=true",
        ]
    return overrides


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
