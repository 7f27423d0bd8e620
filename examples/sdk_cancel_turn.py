"""Cancelling a turn: set an ``asyncio.Event`` passed as ``cancel_event``.

Setting the event stops Codex, and ``run()`` raises ``asyncio.CancelledError`` (the
SDK's ``TurnCancelledError``), like ``AbortSignal`` in the TypeScript SDK. Here the
event is set after 5 seconds; a turn that finishes sooner prints its answer instead.

Run it from inside a Git repository::

    python examples/sdk_cancel_turn.py

It uses your normal Codex setup: ``~/.codex`` (or ``$CODEX_HOME``) and your login; without
OpenAI credentials it runs offline against a scripted model (see ``_offline.py``).
"""

import asyncio

from _offline import scripted_model_unless_configured

from codex_mcp_server.sdk import Codex

# Not in the README: without credentials, codex talks to a scripted model (see _offline.py).
scripted_model_unless_configured(hang_first=True)


async def cancellable_example():
    codex = Codex()
    thread = codex.start_thread()

    cancel_event = asyncio.Event()

    async def cancel_after_delay():
        await asyncio.sleep(5)
        cancel_event.set()

    # Start cancellation timer
    asyncio.create_task(cancel_after_delay())  # noqa: RUF006 (as in the README)

    try:
        turn = await thread.run("Long running task", {"cancel_event": cancel_event})
        print(turn.final_response)
    except asyncio.CancelledError:
        print("Turn was cancelled")


asyncio.run(cancellable_example())
