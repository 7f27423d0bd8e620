"""Approval policies: control when the agent must ask before acting, with ``approval_policy``.

``ApprovalMode.NEVER``, ``ApprovalMode.ON_REQUEST``, ``ApprovalMode.ON_FAILURE`` or
``ApprovalMode.UNTRUSTED``. (``codex exec``, which the SDK runs, cannot ask anyone, and
Codex 0.163 rejects ``UNTRUSTED``.)

Run it from inside a Git repository::

    python examples/sdk_approval_policies.py

It uses your normal Codex setup: ``~/.codex`` (or ``$CODEX_HOME``) and your login.
"""

import asyncio

from codex_mcp_server.sdk import ApprovalMode, Codex


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
