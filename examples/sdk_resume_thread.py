"""Resuming an existing thread by its id with ``resume_thread()``.

Codex persists threads under ``~/.codex/sessions``, so a conversation can be continued
after the ``Thread`` object is gone (in another process, say). The id is ``thread.id``
after a thread's first turn; it also appears in the session file names.

Run it from inside a Git repository, with the id of an earlier thread::

    CODEX_THREAD_ID=<thread id> python examples/sdk_resume_thread.py

It uses your normal Codex setup: ``~/.codex`` (or ``$CODEX_HOME``) and your login; without
OpenAI credentials it runs offline against a scripted model (see ``_offline.py``).
"""

import asyncio
import os

from _offline import offline_thread_id, scripted_model_unless_configured

from codex_mcp_server.sdk import Codex

# Not in the README: without credentials, codex talks to a scripted model (see _offline.py).
if scripted_model_unless_configured() and "CODEX_THREAD_ID" not in os.environ:
    os.environ["CODEX_THREAD_ID"] = offline_thread_id()  # A thread to resume, offline.


async def main():
    codex = Codex()

    saved_thread_id = os.environ["CODEX_THREAD_ID"]
    thread = codex.resume_thread(saved_thread_id)
    turn = await thread.run("Implement the fix")
    print(turn.final_response)


asyncio.run(main())
