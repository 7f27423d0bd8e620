"""Structured output: make the final response JSON that conforms to a JSON Schema (a dict).

The schema is passed per turn as ``output_schema``; ``final_response`` is then a JSON
string matching it (parse it with ``json.loads``).

Run it from inside a Git repository::

    python examples/sdk_structured_output.py

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

    schema = {
        "type": "object",
        "properties": {
            "summary": {"type": "string"},
            "status": {"type": "string", "enum": ["ok", "action_required"]},
        },
        "required": ["summary", "status"],
        "additionalProperties": False,
    }

    turn = await thread.run("Summarize repository status", {"output_schema": schema})
    print(turn.final_response)


asyncio.run(main())
