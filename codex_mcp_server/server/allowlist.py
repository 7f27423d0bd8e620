"""Which codex config keys a client may set for its thread, in ``config`` or in a profile.

A thread's ``config`` comes from whoever holds the MCP connection (a host agent a prompt may
have turned, any holder of the HTTP token), and codex config can do far more than tune a
model: start programs outside the sandbox (``mcp_servers``, ``notify``, a provider's
``auth.command``), send requests and the API key elsewhere (``model_provider``,
``model_providers``, ``openai_base_url``), read files of the server's machine
(``model_instructions_file``), or widen the sandbox and what commands see. So this is an
allowlist, not a list of what is known to be dangerous (the next codex release adds keys): a
key is admitted when it matches :data:`SAFE_CONFIG_KEYS` or a pattern the operator added with
``--allow-config-key``. The operator's own ``--config`` is trusted and not checked here.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Mapping
from fnmatch import fnmatchcase
from typing import Any

from .sessions import codex_home
from .settings import Settings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["CONFIG_RULE", "PROFILE_RULE", "SAFE_CONFIG_KEYS", "check_config_keys", "check_profile"]

SAFE_CONFIG_KEYS: tuple[str, ...] = (
    # Which model, how it reasons and how much it says: the same provider, the same key.
    "model",
    "review_model",
    "model_reasoning_effort",
    "plan_mode_reasoning_effort",
    "model_reasoning_summary",
    "model_verbosity",
    "personality",
    "hide_agent_reasoning",
    "show_raw_agent_reasoning",
    # Instructions given as text (not as a file to read).
    "developer_instructions",
    "compact_prompt",
    # Context sizes.
    "model_context_window",
    "model_auto_compact_token_limit",
    "tool_output_token_limit",
    "project_doc_max_bytes",
)
"""Glob patterns (``fnmatch``, ``*`` matching across dots) on dotted config keys.

Each is a key that can start no program, send no request or credential anywhere new, read no
file of the server's machine, and widen neither the sandbox, the approval policy nor the
environment commands see. The tools' own fields cover the sandbox, approval policy, network
access and web search.
"""

FLAG = "--allow-config-key PATTERN (or CODEX_MCP_ALLOW_CONFIG_KEYS)"

CONFIG_RULE = (
    "Only keys that start no program, send no request or credential elsewhere, read no file "
    "of the server's machine and widen no sandbox or policy are accepted: "
    f"{', '.join(SAFE_CONFIG_KEYS)}, and any the server's operator admitted; any other key "
    "is refused, with the reason. The sandbox, approval policy, network access and web "
    "search have their own fields."
)
"""How the tools describe ``config`` to a model."""

PROFILE_RULE = "It must exist, and may set only the keys config may set; else the call is refused."
"""How the tools describe ``profile`` to a model."""

_BARE = re.compile(r"[A-Za-z0-9_-]+")
_PROFILE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")

# Only to explain a refusal: what admits a key is the allowlist above, never this table.
_RUNS = "it starts programs on the server's machine, outside the sandbox"
_SENDS = "it changes where requests, and the API key with them, are sent"
_SANDBOX = (
    "it changes the sandbox or the approval policy (use the thread's sandbox_mode, "
    "approval_policy and network_access fields)"
)
_FILES = "it makes codex read or run a file of the server's machine"
_REASONS: dict[str, str] = {
    "mcp_servers": _RUNS,
    "notify": _RUNS,
    "hooks": _RUNS,
    "model_provider": _SENDS,
    "model_providers": f"{_SENDS}, and a provider's auth.command runs a program",
    "openai_base_url": _SENDS,
    "chatgpt_base_url": _SENDS,
    "otel": "it sends telemetry to an endpoint of the client's choosing",
    "sandbox_mode": _SANDBOX,
    "sandbox_workspace_write": _SANDBOX,
    "approval_policy": _SANDBOX,
    "permissions": _SANDBOX,
    "default_permissions": _SANDBOX,
    "shell_environment_policy": "it changes which environment variables (the server's "
    "secrets among them) commands see",
    "projects": "it marks directories as trusted, so that codex loads their own config",
    "profile": "name a profile with the profile field",
    "profiles": "name a profile with the profile field",
    "web_search": "use the thread's web_search field",
    "model_instructions_file": f"{_FILES} (the codex tool takes base-instructions as text)",
    "experimental_compact_prompt_file": f"{_FILES} (the codex tool takes compact-prompt as text)",
    "model_catalog_json": _FILES,
    "js_repl_node_path": _FILES,
}


def check_config_keys(config: Mapping[str, Any], settings: Settings) -> None:
    """Refuse a thread ``config`` that sets a key outside the allowlist.

    Keys are checked as codex will read them from ``--config key=value``: dotted paths of
    plain names (a key such as ``"a=b"`` or ``"x y"`` would be read as something else).
    """
    for key in _leaf_keys(config):
        if not _allowed(key, settings):
            raise ValueError(
                f"config key {_shown(key)} is not allowed: {_reason(key)}. A thread's config "
                f"may set {_rule(settings)} "
                f"Leave it out, or ask the server's operator to admit it with {FLAG}."
            )
        if not all(_BARE.fullmatch(part) for part in key.split(".")):
            raise ValueError(
                f"config key {_shown(key)!r} is not a dotted path of plain names (letters, "
                'digits, _ and -), as codex reads config keys; e.g. {"model_verbosity": "low"}.'
            )


def check_profile(name: str, settings: Settings) -> None:
    """Refuse a profile that does not exist or sets a key a thread's ``config`` may not.

    Codex 0.163 layers ``$CODEX_HOME/<name>.config.toml`` for ``--profile <name>`` (and
    refuses to start while ``config.toml`` still has a legacy ``[profiles.<name>]`` table).
    """
    if not _PROFILE_NAME.fullmatch(name):
        raise ValueError(
            f"profile {name!r} is not a profile name: codex takes plain names of letters, "
            "digits, _ and - (e.g. work)."
        )
    path = codex_home() / f"{name}.config.toml"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(
            f"No profile {name!r}: codex reads profile {name} from {path}, which does not "
            f"exist. Name an existing profile, or none. (Codex no longer reads "
            f"[profiles.{name}] tables in config.toml; the operator can move one to that file.)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"profile {name!r}: {path} cannot be read ({exc}).") from None
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"profile {name!r}: {path} is not valid TOML ({exc}).") from None
    for key in _leaf_keys(table):
        if not _allowed(key, settings):
            raise ValueError(
                f"profile {name!r} ({path}) sets {_shown(key)}, which a profile named by a "
                f"client may not: {_reason(key)}. Profiles follow the rule of config, which "
                f"may set {_rule(settings)} "
                f"Name no profile, or ask the server's operator to admit the key with {FLAG}."
            )


def _allowed(key: str, settings: Settings) -> bool:
    patterns = (*SAFE_CONFIG_KEYS, *settings.allow_config_keys)
    return any(fnmatchcase(key, pattern) for pattern in patterns)


def _shown(key: str) -> str:
    return key if len(key) <= 200 else f"{key[:200]}…"


def _reason(key: str) -> str:
    return _REASONS.get(key.split(".", 1)[0], "it is not one of the keys known to be safe")


def _rule(settings: Settings) -> str:
    keys = ", ".join((*SAFE_CONFIG_KEYS, *settings.allow_config_keys))
    return (
        "only keys that start no program, send no request or key elsewhere, read no file of "
        f"the server's machine and widen no sandbox or policy: {keys}."
    )


def _leaf_keys(table: Mapping[Any, Any], prefix: str = "") -> Iterator[str]:
    """Dotted paths to the values of nested tables (an empty table is a value)."""
    for key, value in table.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            yield from _leaf_keys(value, path)
        else:
            yield path
