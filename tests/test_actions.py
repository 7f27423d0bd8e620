"""Tests for codex_mcp_server.server.actions: the compact record of a turn."""

from __future__ import annotations

from typing import Any

import pytest

from codex_mcp_server.server.actions import (
    COMMAND_MAX,
    Actions,
    CommandAction,
    FileChangeAction,
    McpToolCallAction,
    TodoAction,
    describe_actions,
    summarize_actions,
)

CWD = "/home/dev/proj"


def cmd(command: Any, exit_code: Any = 0, status: Any = "completed") -> dict[str, Any]:
    return {
        "id": "item_1",
        "type": "command_execution",
        "command": command,
        "aggregated_output": "lots of output\n" * 100,
        "exit_code": exit_code,
        "status": status,
    }


def patch(*changes: tuple[Any, Any], status: Any = "completed") -> dict[str, Any]:
    return {
        "id": "item_2",
        "type": "file_change",
        "changes": [{"path": path, "kind": kind} for path, kind in changes],
        "status": status,
    }


# A realistic turn's completed items, in the order Codex emits them.
TURN: list[dict[str, Any]] = [
    {"id": "item_0", "type": "error", "message": "Model metadata for `x` not found"},
    {"id": "item_1", "type": "reasoning", "text": "**Looking** at the tests"},
    {
        "id": "item_2",
        "type": "todo_list",
        "items": [{"text": "reproduce", "completed": False}, {"text": "fix", "completed": False}],
    },
    cmd("/bin/bash -lc 'pytest -q'", exit_code=1, status="failed"),
    {
        "id": "ws_1",
        "type": "web_search",
        "query": "pytest parametrize ids",
        "action": {"type": "search", "query": "pytest parametrize ids"},
    },
    {
        "id": "item_4",
        "type": "mcp_tool_call",
        "server": "github",
        "tool": "search_issues",
        "arguments": {"q": "flaky"},
        "result": {"content": [{"type": "text", "text": "no issues"}]},
        "error": None,
        "status": "completed",
    },
    patch((f"{CWD}/src/app.py", "update"), (f"{CWD}/tests/test_app.py", "add")),
    patch((f"{CWD}/src/app.py", "update")),
    cmd('/bin/zsh -lc "cd src && make"', exit_code=2, status="failed"),
    cmd("/bin/bash -lc 'pytest -q'", exit_code=0, status="completed"),
    cmd("/bin/bash -lc 'rm -rf build'", exit_code=None, status="declined"),
    {
        "id": "item_9",
        "type": "todo_list",
        "items": [{"text": "reproduce", "completed": True}, {"text": "fix", "completed": False}],
    },
    {"id": "item_10", "type": "agent_message", "text": "Fixed the flaky test."},
]


def test_summarize_realistic_turn() -> None:
    actions = summarize_actions(TURN)
    assert actions == Actions(
        commands=[
            CommandAction(command="pytest -q", exit_code=1, status="failed"),
            CommandAction(command="cd src && make", exit_code=2, status="failed"),
            CommandAction(command="pytest -q", exit_code=0, status="completed"),
            CommandAction(command="rm -rf build", exit_code=None, status="declined"),
        ],
        file_changes=[
            FileChangeAction(path=f"{CWD}/src/app.py", kind="update"),
            FileChangeAction(path=f"{CWD}/tests/test_app.py", kind="add"),
        ],
        mcp_tool_calls=[
            McpToolCallAction(server="github", tool="search_issues", status="completed")
        ],
        web_searches=["pytest parametrize ids"],
        todo_list=[
            TodoAction(text="reproduce", completed=True),
            TodoAction(text="fix", completed=False),
        ],
    )


def test_describe_realistic_turn() -> None:
    text = describe_actions(summarize_actions(TURN), cwd=CWD)
    assert text.splitlines() == [
        "commands (4): ✗ pytest -q (exit 1); ✗ cd src && make (exit 2); ✓ pytest -q; "
        "✗ rm -rf build (declined)",
        "files: edited src/app.py, added tests/test_app.py",
        "mcp: github.search_issues",
        'web: "pytest parametrize ids"',
        "plan: 1/2 done — next: fix",
    ]


def test_summarize_accepts_a_generator() -> None:
    actions = summarize_actions(item for item in TURN)
    assert len(actions.commands) == 4


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        pytest.param(
            [patch(("/r/a.py", "update")), patch(("/r/a.py", "update"), ("/r/a.py", "update"))],
            [("/r/a.py", "update")],
            id="same-path-same-kind",
        ),
        pytest.param(
            [patch(("/r/a.py", "add")), patch(("/r/a.py", "update")), patch(("/r/a.py", "delete"))],
            [("/r/a.py", "add"), ("/r/a.py", "update"), ("/r/a.py", "delete")],
            id="same-path-other-kinds",
        ),
        pytest.param(
            [
                patch(("/r/b.py", "update")),
                patch(("/r/a.py", "update")),
                patch(("/r/b.py", "update")),
            ],
            [("/r/b.py", "update"), ("/r/a.py", "update")],
            id="first-seen-order",
        ),
        pytest.param(
            [
                patch(("/r/a.py", "update"), status="failed"),
                patch(("/r/b.py", "add"), status="declined"),
            ],
            [],
            id="failed-and-declined-patches-changed-nothing",
        ),
        pytest.param(
            [patch(("/r/a.py", None)), patch(("/r/b.py", "rename"), status=None)],
            [("/r/a.py", "update"), ("/r/b.py", "rename")],
            id="missing-kind-and-unknown-kind",
        ),
        pytest.param(
            [
                {"type": "file_change", "changes": None},
                {"type": "file_change", "changes": ["x", None, {"path": None}, {"kind": "add"}]},
                {"type": "file_change"},
            ],
            [],
            id="garbage-changes",
        ),
    ],
)
def test_file_changes_are_merged(
    items: list[dict[str, Any]], expected: list[tuple[str, str]]
) -> None:
    actions = summarize_actions(items)
    assert [(f.path, f.kind) for f in actions.file_changes] == expected


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        pytest.param(
            cmd("bash -lc 'ls'"),
            CommandAction(command="ls", exit_code=0, status="completed"),
            id="ok",
        ),
        pytest.param(
            cmd("ls", exit_code=3, status=None),
            CommandAction(command="ls", exit_code=3, status="failed"),
            id="status-from-exit",
        ),
        pytest.param(
            cmd("ls", exit_code=0, status=None),
            CommandAction(command="ls", exit_code=0, status="completed"),
            id="status-from-exit-0",
        ),
        pytest.param(
            cmd("ls", exit_code=None, status=None),
            CommandAction(command="ls", exit_code=None, status="unknown"),
            id="nothing-known",
        ),
        pytest.param(
            cmd("ls", exit_code="1", status="failed"),
            CommandAction(command="ls", exit_code=None, status="failed"),
            id="exit-not-int",
        ),
        pytest.param(
            cmd("ls", exit_code=True, status="completed"),
            CommandAction(command="ls", exit_code=None, status="completed"),
            id="exit-bool",
        ),
        pytest.param(
            cmd(None, exit_code=None, status="in_progress"),
            CommandAction(command="", exit_code=None, status="in_progress"),
            id="command-none",
        ),
        pytest.param(
            cmd("/bin/bash -lc 'echo \"oops", exit_code=2, status="failed"),
            CommandAction(command="/bin/bash -lc 'echo \"oops", exit_code=2, status="failed"),
            id="unparseable-kept-raw",
        ),
        pytest.param(
            cmd(["/bin/bash", "-lc", "make"]),
            CommandAction(command="make", exit_code=0, status="completed"),
            id="argv",
        ),
    ],
)
def test_command_actions(item: dict[str, Any], expected: CommandAction) -> None:
    assert summarize_actions([item]).commands == [expected]


def test_command_is_truncated_to_500_chars() -> None:
    long = "echo " + "x" * 2_000
    (action,) = summarize_actions([cmd(f"/bin/bash -lc '{long}'")]).commands
    assert len(action.command) == COMMAND_MAX == 500
    assert action.command.startswith("echo xxx") and action.command.endswith("…")
    (short,) = summarize_actions([cmd("/bin/bash -lc '" + "y" * 500 + "'")]).commands
    assert short.command == "y" * 500


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        pytest.param(
            {
                "type": "mcp_tool_call",
                "server": "fs",
                "tool": "read",
                "status": "failed",
                "error": {"message": "x"},
            },
            McpToolCallAction(server="fs", tool="read", status="failed"),
            id="failed",
        ),
        pytest.param(
            {"type": "mcp_tool_call", "server": "fs", "tool": "read", "error": {"message": "x"}},
            McpToolCallAction(server="fs", tool="read", status="failed"),
            id="no-status-error",
        ),
        pytest.param(
            {"type": "mcp_tool_call", "server": None, "tool": None, "status": None},
            McpToolCallAction(server="", tool="", status="completed"),
            id="nones",
        ),
    ],
)
def test_mcp_actions(item: dict[str, Any], expected: McpToolCallAction) -> None:
    assert summarize_actions([item]).mcp_tool_calls == [expected]


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        pytest.param({"type": "web_search", "query": "a"}, ["a"], id="query"),
        pytest.param(
            {"type": "web_search", "query": "", "action": {"query": "b"}}, ["b"], id="action-query"
        ),
        pytest.param(
            {"type": "web_search", "action": {"type": "open_page", "url": "https://x.org"}},
            ["https://x.org"],
            id="open-page",
        ),
        pytest.param({"type": "web_search", "query": None, "action": None}, [], id="nothing"),
    ],
)
def test_web_search_actions(item: dict[str, Any], expected: list[str]) -> None:
    assert summarize_actions([item]).web_searches == expected


def test_todo_list_is_the_last_one_and_none_without_one() -> None:
    first = {"type": "todo_list", "items": [{"text": "a", "completed": False}]}
    last = {"type": "todo_list", "items": [{"text": "a", "completed": True}, None, {"text": None}]}
    assert summarize_actions([first, last]).todo_list == [
        TodoAction(text="a", completed=True),
        TodoAction(text="", completed=False),
    ]
    assert summarize_actions([cmd("ls")]).todo_list is None


def test_unknown_and_malformed_items_are_skipped() -> None:
    items: list[Any] = [
        None,
        "command_execution",
        42,
        {},
        {"type": None},
        {"type": ["command_execution"]},
        {"type": "collab_tool_call", "tool": "spawn_agent"},
        {"type": "something_new", "status": "completed"},
        {"type": "agent_message", "text": "hi"},
    ]
    assert summarize_actions(items) == Actions()


def test_actions_round_trip_through_json() -> None:
    actions = summarize_actions(TURN)
    assert Actions.model_validate_json(actions.model_dump_json()) == actions


def test_every_schema_field_is_described() -> None:
    schema = Actions.model_json_schema()
    models = [schema, *schema["$defs"].values()]
    assert {m["title"] for m in models} == {
        "Actions",
        "CommandAction",
        "FileChangeAction",
        "McpToolCallAction",
        "TodoAction",
    }
    for model in models:
        for name, prop in model["properties"].items():
            assert prop.get("description"), f"{model['title']}.{name} has no description"


# --------------------------------------------------------------------------- describe


@pytest.mark.parametrize(
    ("actions", "expected"),
    [
        pytest.param(Actions(), "", id="nothing"),
        pytest.param(Actions(todo_list=[]), "", id="empty-plan"),
        pytest.param(
            Actions(commands=[CommandAction(command="make", exit_code=None, status="in_progress")]),
            "commands (1): make (running)",
            id="running",
        ),
        pytest.param(
            Actions(commands=[CommandAction(command="make", exit_code=None, status="failed")]),
            "commands (1): ✗ make (failed)",
            id="failed-no-exit",
        ),
        pytest.param(
            Actions(commands=[CommandAction(command="make", exit_code=None, status="weird")]),
            "commands (1): make (weird)",
            id="unknown-status",
        ),
        pytest.param(
            Actions(commands=[CommandAction(command="a\n  b", exit_code=0, status="completed")]),
            "commands (1): ✓ a b",
            id="multiline-command",
        ),
        pytest.param(
            Actions(commands=[CommandAction(command="", exit_code=0, status="completed")]),
            "commands (1): ✓ (empty command)",
            id="empty-command",
        ),
        pytest.param(
            Actions(
                file_changes=[
                    FileChangeAction(path="/r/a.py", kind="delete"),
                    FileChangeAction(path="/r/b.py", kind="rename"),
                    FileChangeAction(path="/elsewhere/c.py", kind="update"),
                ]
            ),
            "files: deleted a.py, rename b.py, edited /elsewhere/c.py",
            id="files",
        ),
        pytest.param(
            Actions(
                mcp_tool_calls=[
                    McpToolCallAction(server="fs", tool="read", status="failed"),
                    McpToolCallAction(server="", tool="ping", status="in_progress"),
                ]
            ),
            "mcp: ✗ fs.read (failed), ping (in_progress)",
            id="mcp",
        ),
        pytest.param(
            Actions(todo_list=[TodoAction(text="a", completed=True)]),
            "plan: 1/1 done",
            id="plan-done",
        ),
    ],
)
def test_describe_actions(actions: Actions, expected: str) -> None:
    assert describe_actions(actions, cwd="/r") == expected


@pytest.mark.parametrize(
    ("count", "limit", "expected"),
    [
        (3, 10, "commands (3): ✓ c0; ✓ c1; ✓ c2"),
        (10, 10, "commands (10): " + "; ".join(f"✓ c{i}" for i in range(10))),
        (11, 10, "commands (11): " + "; ".join(f"✓ c{i}" for i in range(10)) + "; … and 1 more"),
        (5, 2, "commands (5): ✓ c0; ✓ c1; … and 3 more"),
        (5, 0, "commands (5): … and 5 more"),
        (5, -1, "commands (5): … and 5 more"),
    ],
)
def test_describe_actions_limit(count: int, limit: int, expected: str) -> None:
    actions = Actions(
        commands=[
            CommandAction(command=f"c{i}", exit_code=0, status="completed") for i in range(count)
        ]
    )
    assert describe_actions(actions, limit=limit) == expected


def test_describe_limits_every_line() -> None:
    actions = Actions(
        commands=[CommandAction(command="ls", exit_code=0, status="completed")] * 12,
        file_changes=[FileChangeAction(path=f"f{i}", kind="add") for i in range(12)],
        mcp_tool_calls=[McpToolCallAction(server="s", tool="t", status="completed")] * 12,
        web_searches=[f"q{i}" for i in range(12)],
    )
    lines = describe_actions(actions, limit=3).splitlines()
    assert len(lines) == 4
    assert all(line.endswith("… and 9 more") for line in lines)


def test_describe_10000_commands_stays_small() -> None:
    items = [
        cmd(f"/bin/bash -lc 'pytest tests/test_{i}.py -q'", exit_code=i % 3) for i in range(10_000)
    ]
    items += [patch((f"{CWD}/src/m{i}.py", "update")) for i in range(10_000)]
    items += [{"type": "web_search", "query": f"query number {i}"} for i in range(10_000)]
    actions = summarize_actions(items)
    assert len(actions.commands) == 10_000
    text = describe_actions(actions, cwd=CWD)
    assert text.startswith(
        "commands (10000): ✓ pytest tests/test_0.py -q; ✗ pytest tests/test_1.py -q (exit 1)"
    )
    assert "… and 9990 more" in text
    assert len(text) < 1_500
    command_line = text.splitlines()[0]
    assert len(command_line) < 1_000


def test_describe_huge_entries_stay_small() -> None:
    huge = "x" * 500
    actions = Actions(
        commands=[CommandAction(command=huge, exit_code=0, status="completed")] * 10_000,
        file_changes=[FileChangeAction(path=f"/{huge}{i}", kind="update") for i in range(100)],
        mcp_tool_calls=[McpToolCallAction(server=huge, tool=huge, status="failed")] * 100,
        web_searches=[huge] * 100,
        todo_list=[TodoAction(text=huge, completed=False)] * 100,
    )
    text = describe_actions(actions, limit=1_000)
    lines = text.splitlines()
    assert len(lines) == 5
    assert all(len(line) < 500 for line in lines), [len(line) for line in lines]
    assert lines[0].endswith("more") and lines[3].endswith("more")
