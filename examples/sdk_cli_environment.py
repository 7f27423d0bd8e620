"""Controlling the Codex CLI environment: give Codex exactly the variables in ``env``.

Without ``env``, Codex inherits this process's environment. With it, Codex gets only
those variables (plus the ones the SDK itself sets, such as ``CODEX_API_KEY`` when you
pass ``api_key``), and so do the commands it runs.

Run it from inside a Git repository::

    python examples/sdk_cli_environment.py

It uses your normal Codex setup: ``~/.codex`` (or ``$CODEX_HOME``) and your login; without
OpenAI credentials it runs offline against a scripted model (see ``_offline.py``).
"""

import asyncio
import os

from _offline import scripted_model_unless_configured

from codex_mcp_server.sdk import Codex

# Not in the README: without credentials, codex talks to a scripted model (see _offline.py).
scripted_model_unless_configured()


async def main():
    codex = Codex(
        {
            "env": {
                "PATH": "/usr/local/bin",
                # Not in the README's snippet, but needed to run a turn: Codex inherits
                # nothing else, so pass on where its configuration and login live
                # (~/.codex under HOME, or CODEX_HOME if you set it).
                **{name: os.environ[name] for name in ("HOME", "CODEX_HOME") if name in os.environ},
            },
        }
    )
    thread = codex.start_thread()
    turn = await thread.run("Which PATH do your shell commands get?")
    print(turn.final_response)


asyncio.run(main())
