"""Sandbox modes: control how the agent may touch your filesystem with ``sandbox_mode``.

``SandboxMode.READ_ONLY`` (read files only), ``SandboxMode.WORKSPACE_WRITE`` (read, and
write in the workspace) or ``SandboxMode.DANGER_FULL_ACCESS`` (no sandbox). This thread
may write in the workspace, and is asked to create a file there.

Run it from inside a Git repository (it may create ``hello.txt`` there)::

    python examples/sdk_sandbox_modes.py

It uses your normal Codex setup: ``~/.codex`` (or ``$CODEX_HOME``) and your login; without
OpenAI credentials it runs offline against a scripted model (see ``_offline.py``).
"""

import asyncio

from _offline import scripted_model_unless_configured

from codex_mcp_server.sdk import Codex, SandboxMode

# Not in the README: without credentials, codex talks to a scripted model (see _offline.py).
scripted_model_unless_configured()


async def main():
    codex = Codex()

    thread = codex.start_thread(
        {
            "sandbox_mode": SandboxMode.WORKSPACE_WRITE,
        }
    )
    turn = await thread.run("Create a file hello.txt that contains the word hello")
    print(turn.final_response)


asyncio.run(main())
