"""Test Codex integrations offline: a scripted Responses API server for the real ``codex``.

:class:`ScriptedModel` is a local HTTP server that speaks the OpenAI Responses API
(``POST /responses`` answered with Server-Sent Events).  You script what the "model"
says with the builders in :mod:`codex_mcp_server.testing.replies`, point codex at the
server with :func:`make_codex_home`, run the real ``codex`` binary, and then assert on
its output and on the requests the server recorded.  No network access or API key is
needed::

    import subprocess
    from codex_mcp_server.testing import ScriptedModel, codex_env, make_codex_home, replies

    with ScriptedModel() as model:
        model.add(replies.command("echo hi"), replies.message("done"))
        home = make_codex_home(tmp_path / "codex-home", model.url)
        result = subprocess.run(
            [codex, "exec", "--json", "--skip-git-repo-check", "-"],
            input="run echo hi", env=codex_env(home),
            capture_output=True, text=True, timeout=60,
        )
        assert "hi" in model.requests[1].function_call_outputs[0]

See ``README.md`` next to this module for more.
"""

from . import replies
from .home import DEFAULT_MODEL, PROVIDER_ID, codex_config, codex_env, make_codex_home
from .replies import (
    DEFAULT_USAGE,
    Reply,
    assistant_item,
    command,
    failure,
    function_call_item,
    hang,
    message,
    reasoning_item,
    reply,
    structured,
    web_search,
    web_search_item,
)
from .server import UNSCRIPTED_STATUS, RecordedRequest, Responder, ScriptedModel

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_USAGE",
    "PROVIDER_ID",
    "UNSCRIPTED_STATUS",
    "RecordedRequest",
    "Reply",
    "Responder",
    "ScriptedModel",
    "assistant_item",
    "codex_config",
    "codex_env",
    "command",
    "failure",
    "function_call_item",
    "hang",
    "make_codex_home",
    "message",
    "reasoning_item",
    "replies",
    "reply",
    "structured",
    "web_search",
    "web_search_item",
]
