"""Attaching images: a structured input of text entries and ``local_image`` entries.

Text entries are joined into the prompt; each image is passed to the Codex CLI with
``--image``. The paths are relative to the current directory.

Run it from inside a Git repository that holds the two images ``ui.png`` and
``diagram.jpg``::

    python examples/sdk_images.py

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

    turn = await thread.run(
        [
            {"type": "text", "text": "Describe these screenshots"},
            {"type": "local_image", "path": "./ui.png"},
            {"type": "local_image", "path": "./diagram.jpg"},
        ]
    )
    print(turn.final_response)


asyncio.run(main())
