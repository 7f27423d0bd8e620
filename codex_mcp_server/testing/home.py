"""An isolated ``CODEX_HOME`` that points codex at a :class:`ScriptedModel` and nothing else.

Codex reads its configuration from ``$CODEX_HOME/config.toml`` and keeps sessions, logs
and state databases there too.  :func:`make_codex_home` writes a ``config.toml`` that

* selects a custom model provider (``scripted``) whose ``base_url`` is the scripted
  server, using plain HTTP + SSE (no WebSocket attempts) and no retries, so scripted
  failures fail the turn at once;
* makes a refused connection fail the turn instead of retrying forever
  (``features.unbounded_connection_retries = false``);
* turns off what codex 0.163 otherwise contacts on its own: the plugin marketplace
  sync (``github.com``, ``api.github.com``, ``chatgpt.com``: ``features.plugins``),
  analytics and metrics (``ab.chatgpt.com``: ``analytics.enabled``,
  ``otel.metrics_exporter``) and the update check.

No API key is needed: the custom provider sends no ``Authorization`` header.
:func:`codex_env` builds an environment for the ``codex`` process that uses this home,
carries no OpenAI credentials and bypasses any HTTP proxy for the loopback address.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomli_w

__all__ = ["DEFAULT_MODEL", "PROVIDER_ID", "codex_config", "codex_env", "make_codex_home"]

DEFAULT_MODEL = "gpt-5.5"
"""A model slug from codex's bundled catalog whose shell tool is ``exec_command``.

A slug outside the catalog still works, but codex then prefixes every turn with a
"Model metadata ... not found" warning item and offers a different tool set.
"""

PROVIDER_ID = "scripted"
"""The id of the model provider that :func:`make_codex_home` configures."""

_CREDENTIAL_VARIABLES = ("OPENAI_API_KEY", "CODEX_API_KEY")
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def codex_config(
    base_url: str,
    *,
    model: str = DEFAULT_MODEL,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``config.toml`` contents :func:`make_codex_home` writes, as a dict.

    ``extra`` is merged in last (nested tables are merged key by key), e.g.
    ``{"mcp_servers": {...}}`` or ``{"features": {"plugins": True}}``.
    """
    config: dict[str, Any] = {
        "model": model,
        "model_provider": PROVIDER_ID,
        "check_for_update_on_startup": False,
        "analytics": {"enabled": False},
        "otel": {"metrics_exporter": "none"},
        "features": {"plugins": False, "unbounded_connection_retries": False},
        "model_providers": {
            PROVIDER_ID: {
                "name": "Scripted model (codex_mcp_server.testing)",
                "base_url": base_url,
                "wire_api": "responses",
                "supports_websockets": False,
                "request_max_retries": 0,
                "stream_max_retries": 0,
            }
        },
    }
    if extra:
        _merge(config, extra)
    return config


def make_codex_home(
    directory: Path | str,
    base_url: str,
    *,
    model: str = DEFAULT_MODEL,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Create ``directory`` (if needed) as a ``CODEX_HOME`` that talks to ``base_url``.

    Writes ``config.toml`` (see :func:`codex_config`; an existing file is replaced)
    and returns the directory as an absolute :class:`~pathlib.Path`.  Pass
    :attr:`ScriptedModel.url <codex_mcp_server.testing.ScriptedModel.url>` as
    ``base_url``, and run codex with :func:`codex_env`.

    Codex prints a harmless warning to stderr when the home is under ``/tmp``
    (pytest's ``tmp_path`` usually is).
    """
    home = Path(directory).absolute()
    home.mkdir(parents=True, exist_ok=True)
    config = codex_config(base_url, model=model, extra=extra)
    (home / "config.toml").write_text(tomli_w.dumps(config), encoding="utf-8")
    return home


def codex_env(
    home: Path | str, base: Mapping[str, str] | None = None, *, isolate_shell: bool = True
) -> dict[str, str]:
    """An environment for running codex against the ``CODEX_HOME`` at ``home``.

    A copy of ``base`` (default: :data:`os.environ`) with ``CODEX_HOME`` set,
    ``OPENAI_API_KEY`` and ``CODEX_API_KEY`` removed, and the loopback addresses
    (``127.0.0.1``, ``localhost``, ``::1``) added to ``NO_PROXY``/``no_proxy``: codex
    honours ``HTTP_PROXY`` even for ``127.0.0.1``, which would send its requests for
    the scripted model to the proxy.

    With ``isolate_shell`` (the default), ``HOME`` is an empty directory inside ``home``:
    codex runs commands in login shells, and your shell profile would otherwise run too
    (its output lands in command output, and its background jobs outlive codex).
    """
    env = dict(os.environ if base is None else base)
    for name in _CREDENTIAL_VARIABLES:
        env.pop(name, None)
    env["CODEX_HOME"] = str(Path(home).absolute())
    if isolate_shell:
        user_home = Path(home).absolute() / "user-home"
        user_home.mkdir(parents=True, exist_ok=True)
        env["HOME"] = str(user_home)
    no_proxy = [
        entry.strip()
        for name in ("NO_PROXY", "no_proxy")
        for entry in env.get(name, "").split(",")
        if entry.strip()
    ]
    for host in _LOOPBACK_HOSTS:
        if host not in no_proxy:
            no_proxy.append(host)
    env["NO_PROXY"] = env["no_proxy"] = ",".join(dict.fromkeys(no_proxy))
    return env


def _merge(target: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for key, value in extra.items():
        current = target.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            _merge(current, value)
        else:
            target[key] = _plain(value)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
