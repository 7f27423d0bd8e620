"""Lets the ``sdk_*.py`` examples run without OpenAI credentials, against a scripted model.

Not part of the SDK's documentation: each example calls :func:`scripted_model_unless_configured`
before its own code, which then runs exactly as the README shows it. When codex has a way to
reach a model (``OPENAI_API_KEY`` or ``CODEX_API_KEY``, a ``codex login`` in
``$CODEX_HOME/auth.json``, or a ``model_provider`` of your own in ``$CODEX_HOME/config.toml``)
nothing changes. Otherwise codex would retry the OpenAI API without a key for minutes, in
silence; instead the example's codex talks to the scripted model of
``codex_mcp_server.testing`` (offline, in a temporary ``CODEX_HOME``), which says it is one.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from codex_mcp_server.sdk import Codex
from codex_mcp_server.testing import (
    RecordedRequest,
    Reply,
    ScriptedModel,
    codex_env,
    make_codex_home,
    replies,
)

__all__ = ["has_model_access", "offline_thread_id", "scripted_model_unless_configured"]


def has_model_access(environ: dict[str, str] | None = None) -> bool:
    """Whether codex can reach a model with the user's own setup."""
    env = os.environ if environ is None else environ
    if env.get("OPENAI_API_KEY") or env.get("CODEX_API_KEY"):
        return True
    home = Path(env.get("CODEX_HOME") or Path(env.get("HOME", "~")).expanduser() / ".codex")
    if (home / "auth.json").is_file():
        return True
    try:
        config = (home / "config.toml").read_text(encoding="utf-8")
    except OSError:
        return False
    return any(line.strip().startswith("model_provider") for line in config.splitlines())


def scripted_model_unless_configured(*, hang_first: bool = False) -> bool:
    """Without model access, point this process's codex at a scripted model until exit.

    Every request gets an answer that says where it comes from (JSON matching the output
    schema, when the turn has one); with ``hang_first`` the first one never comes, for the
    example that cancels a long turn. Returns whether the model is the scripted one.
    """
    if has_model_access():
        return False
    stack = ExitStack()
    atexit.register(stack.close)
    model = stack.enter_context(ScriptedModel())
    if hang_first:
        model.add(replies.hang())
    model.respond_with(_answer)
    scratch = tempfile.mkdtemp(prefix="codex-example-")
    stack.callback(shutil.rmtree, scratch, ignore_errors=True)
    os.environ.update(codex_env(make_codex_home(Path(scratch) / "codex-home", model.url)))
    print(
        "offline: no OpenAI credentials (OPENAI_API_KEY, CODEX_API_KEY or `codex login`), so "
        "codex talks to a scripted model instead",
        file=sys.stderr,
    )
    return True


def offline_thread_id() -> str:
    """The id of a new thread after one turn, saved in ``$CODEX_HOME`` to be resumed."""
    thread = Codex().start_thread()
    asyncio.run(thread.run("Diagnose the test failure and propose a fix"))
    assert thread.id is not None
    return thread.id


def _answer(request: RecordedRequest) -> Reply:
    text_format = request.body.get("text", {}).get("format", {})
    if text_format.get("type") == "json_schema":
        return replies.structured(_sample(text_format.get("schema", {})))
    return replies.message(
        f"(Scripted model, offline: not a real answer to {request.last_user_text!r}. "
        "Set OPENAI_API_KEY or run `codex login` for one.)"
    )


def _sample(schema: dict[str, Any]) -> Any:
    """A value that matches ``schema``: the first of an enum, a placeholder string, ..."""
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {name: _sample(sub) for name, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return []
    if kind in ("integer", "number"):
        return 0
    if kind == "boolean":
        return False
    return "(scripted model, offline)"
