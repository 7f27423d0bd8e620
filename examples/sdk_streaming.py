"""Streaming: react to a turn's events as they happen with ``run_streamed()``.

``run()`` waits for the turn to finish; ``run_streamed()`` yields each event (items
started/updated/completed, the final usage, ...) as Codex produces it. This prints every
completed item and the turn's token usage.

Run it from inside a Git repository::

    python examples/sdk_streaming.py

It uses your normal Codex setup: ``~/.codex`` (or ``$CODEX_HOME``) and your login; without
OpenAI credentials it runs offline against a scripted model (see ``_offline.py``).
"""

import asyncio

from _offline import scripted_model_unless_configured

from codex_mcp_server.sdk import Codex

# Not in the README: without credentials, codex talks to a scripted model (see _offline.py).
scripted_model_unless_configured()


async def stream_example():
    codex = Codex()
    thread = codex.start_thread()

    streamed = await thread.run_streamed("Diagnose the test failure and propose a fix")

    async for event in streamed.events:
        match event.get("type"):
            case "item.completed":
                print("item", event.get("item"))
            case "turn.completed":
                print("usage", event.get("usage"))


asyncio.run(stream_example())
