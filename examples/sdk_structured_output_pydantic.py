"""Structured output from a Pydantic model: the schema comes from ``model_json_schema()``.

Like ``sdk_structured_output.py``, but the JSON Schema is generated from a Pydantic model;
``StatusResponse.model_validate_json(turn.final_response)`` turns the answer back into one.

Run it from inside a Git repository::

    python examples/sdk_structured_output_pydantic.py

It uses your normal Codex setup: ``~/.codex`` (or ``$CODEX_HOME``) and your login; without
OpenAI credentials it runs offline against a scripted model (see ``_offline.py``).
"""

import asyncio
from typing import Literal

from _offline import scripted_model_unless_configured
from pydantic import BaseModel

from codex_mcp_server.sdk import Codex

# Not in the README: without credentials, codex talks to a scripted model (see _offline.py).
scripted_model_unless_configured()


class StatusResponse(BaseModel):
    summary: str
    status: Literal["ok", "action_required"]


async def main():
    codex = Codex()
    thread = codex.start_thread()

    turn = await thread.run(
        "Summarize repository status",
        {"output_schema": StatusResponse.model_json_schema()},
    )
    print(turn.final_response)


asyncio.run(main())
