"""Working directory controls: run Codex in a given directory, Git repository or not.

``working_directory`` sets where Codex works (default: the current directory), and
``skip_git_repo_check`` lets it work in a directory that is not a Git repository.

Run it with the directory of your project (default: the current directory)::

    python examples/sdk_working_directory.py /path/to/project

It uses your normal Codex setup: ``~/.codex`` (or ``$CODEX_HOME``) and your login; without
OpenAI credentials it runs offline against a scripted model (see ``_offline.py``).
"""

import asyncio
import os
import sys

from _offline import scripted_model_unless_configured

from codex_mcp_server.sdk import Codex

# Not in the README: without credentials, codex talks to a scripted model (see _offline.py).
scripted_model_unless_configured()


async def main():
    codex = Codex()
    # The README writes "/path/to/project"; here it comes from the command line.
    project = sys.argv[1] if len(sys.argv) > 1 else os.getcwd()

    thread = codex.start_thread(
        {
            "working_directory": project,
            "skip_git_repo_check": True,
        }
    )
    turn = await thread.run("Which files are in this directory?")
    print(turn.final_response)


asyncio.run(main())
