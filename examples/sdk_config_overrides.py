"""Passing ``--config`` overrides: a nested dict of Codex settings for every turn.

The SDK flattens ``config`` into dotted keys and passes each as ``--config key=<TOML
value>``, here ``show_raw_agent_reasoning=true`` and
``sandbox_workspace_write.network_access=true``. Thread options, passed after these, win
where they overlap.

Run it from inside a Git repository::

    python examples/sdk_config_overrides.py

It uses your normal Codex setup: ``~/.codex`` (or ``$CODEX_HOME``) and your login; without
OpenAI credentials it runs offline against a scripted model (see ``_offline.py``).
"""

import asyncio

from _offline import scripted_model_unless_configured

from codex_mcp_server.sdk import Codex, SandboxMode

# Not in the README: without credentials, codex talks to a scripted model (see _offline.py).
scripted_model_unless_configured()


async def main():
    codex = Codex(
        {
            "config": {
                "show_raw_agent_reasoning": True,
                "sandbox_workspace_write": {"network_access": True},
            },
        }
    )
    # Not in the README: without an explicit workspace-write sandbox, Codex ignores the
    # sandbox_workspace_write override above.
    thread = codex.start_thread({"sandbox_mode": SandboxMode.WORKSPACE_WRITE})
    turn = await thread.run("Can your shell commands reach the network?")
    print(turn.final_response)


asyncio.run(main())
