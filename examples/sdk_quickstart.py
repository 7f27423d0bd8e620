"""Quickstart: run a turn on a new thread, then continue the same conversation.

Shows ``Codex().start_thread()``, ``await thread.run(...)`` and its ``final_response`` and
``items``, and a second ``run`` on the same ``Thread``, which continues that conversation.

Run it from inside a Git repository (Codex refuses other directories unless told to skip
that check, see ``sdk_working_directory.py``)::

    python examples/sdk_quickstart.py

It uses your normal Codex setup: ``~/.codex`` (or ``$CODEX_HOME``) and your login; without
OpenAI credentials it runs offline against a scripted model (see ``_offline.py``).
"""

import asyncio

from _offline import scripted_model_unless_configured

from codex_mcp_server.sdk import Codex

# Not in the README: without credentials, codex talks to a scripted model (see _offline.py).
scripted_model_unless_configured()


async def main():
    codex = Codex()
    thread = codex.start_thread()
    turn = await thread.run("Diagnose the test failure and propose a fix")

    print(turn.final_response)
    print(turn.items)

    # Call run() repeatedly on the same Thread instance to continue that conversation.
    next_turn = await thread.run("Implement the fix")
    print(next_turn.final_response)


asyncio.run(main())
