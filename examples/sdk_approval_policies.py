"""Approval policies: control when the agent must ask before acting, with ``approval_policy``.

``ApprovalMode.NEVER``, ``ApprovalMode.ON_REQUEST``, ``ApprovalMode.ON_FAILURE`` or
``ApprovalMode.UNTRUSTED``. (``codex exec``, which the SDK runs, cannot ask anyone, and
Codex 0.163 rejects ``UNTRUSTED``.)

Run it from inside a Git repository::

    python examples/sdk_approval_policies.py

It uses your normal Codex setup: ``~/.codex`` (or ``$CODEX_HOME``) and your login; without
OpenAI credentials it runs offline against a scripted model (see ``_offline.py``).
"""

import asyncio

from _offline import scripted_model_unless_configured

from codex_mcp_server.sdk import ApprovalMode, Codex

# Not in the README: without credentials, codex talks to a scripted model (see _offline.py).
scripted_model_unless_configured()


async def main():
    codex = Codex()

    thread = codex.start_thread(
        {
            "approval_policy": ApprovalMode.ON_FAILURE,
        }
    )
    turn = await thread.run("Which files are in this directory?")
    print(turn.final_response)


asyncio.run(main())
