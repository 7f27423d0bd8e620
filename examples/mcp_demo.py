"""Drive codex-mcp-server as an MCP host would, printing its progress live.

    python examples/mcp_demo.py ["a task for Codex"] [--offline | --online] [--cwd DIR]

It starts the server over stdio (``python -m codex_mcp_server``), gives Codex a task with
``start_thread`` and prints each progress notification as it arrives, then the result and a
follow-up turn with ``run_turn``.

Run in a terminal, it then shows an approval: a thread with ``approval_policy: on-request`` in
a read-only sandbox, where Codex asks to run a command that writes a file (in a scratch
directory). The server asks you through MCP elicitation, as a host would show it, and your
answer decides whether the command runs. Runs that are not interactive (no terminal on stdin
and stdout: tests, CI, pipes) skip this step; ``--no-approval`` skips it too.

Without OpenAI credentials (no ``OPENAI_API_KEY``/``CODEX_API_KEY``, no
``$CODEX_HOME/auth.json`` and no ``model_provider`` of your own) it runs offline: the real
codex binary talks to the scripted model of ``codex_mcp_server.testing``, which looks around
with a couple of commands and answers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from contextlib import ExitStack

from _offline import has_model_access
from mcp import Client, StdioServerParameters
from mcp.client.session import ClientRequestContext
from mcp.shared.dispatcher import ProgressFnT
from mcp.types import CallToolResult, ElicitRequestParams, ElicitResult, TextContent

from codex_mcp_server.testing import (
    RecordedRequest,
    Reply,
    ScriptedModel,
    codex_env,
    make_codex_home,
    replies,
)

DEFAULT_TASK = "Look around this directory and tell me what it is, in two sentences."
APPROVAL_FILE = "approved-by-you.txt"
APPROVAL_TASK = f"Create the file {APPROVAL_FILE} containing the word hello."


def scripted_agent(request: RecordedRequest) -> Reply:
    """A tiny stand-in for the model: two commands, then an answer built from their output."""
    outputs: list[str] = []  # This turn's command outputs: those after the last user message.
    for item in request.input:
        if item.get("type") == "message" and item.get("role") == "user":
            outputs = []
        elif item.get("type") == "function_call_output":
            outputs.append(str(item.get("output", "")))
    if APPROVAL_TASK in request.last_user_text:
        if not outputs:  # Writing needs more than the read-only sandbox: ask for it.
            return replies.command(
                f"echo hello > {APPROVAL_FILE}",
                escalate="Create the file you asked for",
                login=False,
            )
        ran = "rejected" not in outputs[0]
        return replies.message(
            f"(Scripted model, offline.) {APPROVAL_FILE} "
            + ("is written." if ran else "is not written: you declined the command.")
        )
    if request.function_call_outputs and not outputs:
        return replies.message("(Scripted model.) Offline.")
    if not outputs:
        return replies.reply(
            replies.reasoning_item("**Looking around** before answering"),
            replies.function_call_item(
                "exec_command", {"cmd": "ls -1 | head -n 8", "login": False}
            ),
        )
    if len(outputs) == 1:
        return replies.command(
            "git log --oneline -1 2>/dev/null || echo 'no git history'", login=False
        )
    listing = outputs[0].split("Output:", 1)[-1].strip().splitlines()
    return replies.message(
        f"(Scripted model, offline.) This directory holds {len(listing)} entries, among them "
        f"{', '.join(listing[:3]) or 'nothing'}. "
        "Ask again with OpenAI credentials for a real answer."
    )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("task", nargs="?", default=DEFAULT_TASK)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--offline", action="store_true", help="use the scripted model")
    mode.add_argument("--online", action="store_true", help="use your Codex login")
    parser.add_argument("--cwd", default=os.getcwd(), help="the directory Codex works in")
    parser.add_argument(
        "--no-approval", action="store_true", help="skip the approval step in a terminal"
    )
    args = parser.parse_args()
    offline = args.offline or (not args.online and not has_model_access())
    # Only a person at a terminal can answer; everywhere else the demo runs as it always has.
    interactive = sys.stdin.isatty() and sys.stdout.isatty() and not args.no_approval

    with ExitStack() as stack:
        env = dict(os.environ)
        if offline:
            model = stack.enter_context(ScriptedModel())
            model.respond_with(scripted_agent)
            home = make_codex_home(stack.enter_context(tempfile.TemporaryDirectory()), model.url)
            env = codex_env(home)
            print("offline demo: codex talks to a scripted model (no OpenAI credentials found)\n")
        server = StdioServerParameters(
            command=sys.executable,
            args=["-m", "codex_mcp_server", "--cwd", args.cwd, "--log-level", "WARNING"],
            env=env,
        )
        # The elicitation capability is declared only when someone can answer: the initialize
        # handshake ("legacy" mode) carries it to the server.
        asking: dict[str, object] = (
            {"mode": "legacy", "elicitation_callback": ask_the_person} if interactive else {}
        )
        async with Client(server, **asking) as client:  # type: ignore[arg-type]

            async def show(progress: float, total: float | None, message: str | None) -> None:
                print(f"  [{progress:>3.0f}] {message}", flush=True)

            print(f"start_thread: {args.task}")
            arguments: dict[str, object] = {"prompt": args.task}
            result = await client.call_tool("start_thread", arguments, progress_callback=show)
            if result.is_error and "skip_git_repo_check: true" in _text(result):
                # Outside a Git repository codex refuses to work unless told to skip that
                # check; the error says so, and a host's model would call again like this.
                print(f"\n{_text(result)}\n")
                print(f"start_thread again, with skip_git_repo_check: true: {args.task}")
                arguments["skip_git_repo_check"] = True
                result = await client.call_tool("start_thread", arguments, progress_callback=show)
            print(f"\n{_text(result)}\n")
            if result.is_error or not result.structured_content:
                sys.exit(1)

            thread_id = result.structured_content["thread_id"]
            follow_up = "And in one word?"
            print(f"run_turn: {follow_up}")
            result = await client.call_tool(
                "run_turn", {"thread_id": thread_id, "prompt": follow_up}, progress_callback=show
            )
            print(f"\n{_text(result)}")
            if result.is_error:
                sys.exit(1)
            if interactive:
                await show_an_approval(
                    client, show, stack.enter_context(tempfile.TemporaryDirectory())
                )


async def show_an_approval(client: Client, show: ProgressFnT, scratch: str) -> None:
    """A thread whose command needs approval; the server asks the person at the terminal."""
    print(f"\nstart_thread (approval_policy: on-request, read-only sandbox, in {scratch}):")
    print(f"  {APPROVAL_TASK}")
    arguments = {
        "prompt": APPROVAL_TASK,
        "working_directory": scratch,
        "skip_git_repo_check": True,
        "approval_policy": "on-request",
        "sandbox_mode": "read-only",
    }
    result = await client.call_tool("start_thread", arguments, progress_callback=show)
    print(f"\n{_text(result)}\n")
    written = await asyncio.to_thread(os.path.exists, os.path.join(scratch, APPROVAL_FILE))
    print(f"{APPROVAL_FILE} {'exists' if written else 'does not exist'} in {scratch}.")
    if result.is_error:
        sys.exit(1)


async def ask_the_person(
    context: ClientRequestContext, params: ElicitRequestParams
) -> ElicitResult:
    """What a host does with the server's elicitation: show the form, return the choice."""
    schema = getattr(params, "requested_schema", None) or {}
    field = schema.get("properties", {}).get("decision", {})
    choices = [(c["const"], c.get("title", c["const"])) for c in field.get("oneOf", [])]
    print(f"\n--- the server asks you (MCP elicitation) ---\n{params.message}\n")
    if not choices:  # A form this demo does not know: say no rather than guess.
        print("(a form this demo cannot show: declined)")
        return ElicitResult(action="decline")
    for number, (_, title) in enumerate(choices, 1):
        print(f"  {number}. {title}")
    while True:
        # The prompt printed here: input() would write it to stderr, away from the terminal
        # when stderr is redirected.
        print("your choice (number, empty = no): ", end="", flush=True)
        answer = (await asyncio.to_thread(input)).strip()
        if not answer:
            return ElicitResult(action="decline")
        if answer.isdigit() and 1 <= int(answer) <= len(choices):
            print("---\n")
            return ElicitResult(action="accept", content={"decision": choices[int(answer) - 1][0]})
        print(f"  a number from 1 to {len(choices)}, please")


def _text(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


if __name__ == "__main__":
    asyncio.run(main())
