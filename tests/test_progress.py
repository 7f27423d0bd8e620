"""Tests for codex_mcp_server.server.progress: one human line per Codex event."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codex_mcp_server.server.progress import (
    MAX_LINE,
    heartbeat,
    one_line,
    plan_summary,
    relative_path,
    render_event,
    unwrap_command,
)

CWD = "/home/dev/proj"


def started(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "item.started", "item": item}


def updated(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "item.updated", "item": item}


def completed(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "item.completed", "item": item}


def cmd(command: Any = "/bin/bash -lc 'pytest -q'", **fields: Any) -> dict[str, Any]:
    return {"id": "item_1", "type": "command_execution", "command": command, **fields}


def files(*changes: tuple[Any, Any], status: Any = "completed") -> dict[str, Any]:
    return {
        "id": "item_2",
        "type": "file_change",
        "changes": [{"path": path, "kind": kind} for path, kind in changes],
        "status": status,
    }


def mcp(status: Any, error: Any = None, **fields: Any) -> dict[str, Any]:
    item = {
        "id": "item_3",
        "type": "mcp_tool_call",
        "server": "github",
        "tool": "search_issues",
        "arguments": {"q": "bug"},
        "result": None,
        "error": error,
        "status": status,
    }
    item.update(fields)
    return item


def todo(*entries: tuple[str, bool]) -> dict[str, Any]:
    return {
        "id": "item_4",
        "type": "todo_list",
        "items": [{"text": text, "completed": done} for text, done in entries],
    }


def assert_valid_line(line: str | None) -> None:
    assert line is not None
    assert line.strip() == line and line
    assert "\n" not in line and "\r" not in line and "\t" not in line
    assert "  " not in line
    assert len(line) <= MAX_LINE


# --------------------------------------------------------------------------- exact lines

LINES = [
    # command_execution
    pytest.param(
        started(cmd(exit_code=None, status="in_progress")), "$ pytest -q", id="cmd-started"
    ),
    pytest.param(
        completed(cmd(exit_code=0, status="completed")), "✓ $ pytest -q (exit 0)", id="cmd-ok"
    ),
    pytest.param(
        completed(cmd("/bin/zsh -lc 'make'", exit_code=2, status="failed")),
        "✗ $ make (exit 2)",
        id="cmd-failed",
    ),
    pytest.param(
        completed(cmd("bash -lc 'make'", exit_code=2, status="completed")),
        "✗ $ make (exit 2)",
        id="cmd-completed-nonzero",
    ),
    pytest.param(
        completed(cmd("/bin/bash -lc 'rm -rf x'", exit_code=None, status="declined")),
        "✗ $ rm -rf x (declined)",
        id="cmd-declined",
    ),
    pytest.param(
        started(cmd("/bin/bash -lc 'rm -rf x'", status="declined")),
        "✗ $ rm -rf x (declined)",
        id="cmd-declined-started",
    ),
    pytest.param(
        completed(cmd(exit_code=None, status="failed")),
        "✗ $ pytest -q (failed)",
        id="cmd-failed-no-exit",
    ),
    pytest.param(
        completed(cmd(exit_code=None, status="completed")), "✓ $ pytest -q", id="cmd-ok-no-exit"
    ),
    pytest.param(completed(cmd(exit_code=0)), "✓ $ pytest -q (exit 0)", id="cmd-no-status"),
    pytest.param(completed(cmd(exit_code=3)), "✗ $ pytest -q (exit 3)", id="cmd-no-status-fail"),
    pytest.param(
        completed(cmd(exit_code=None, status="timed_out")),
        "$ pytest -q (timed_out)",
        id="cmd-unknown-status",
    ),
    pytest.param(started(cmd(None, status=None)), "$ (empty command)", id="cmd-none-command"),
    pytest.param(started({"type": "command_execution"}), "$ (empty command)", id="cmd-no-fields"),
    pytest.param(
        completed(cmd(exit_code=1.0, status="failed")),
        "✗ $ pytest -q (exit 1)",
        id="cmd-float-exit",
    ),
    pytest.param(
        completed(cmd(exit_code="2", status="failed")),
        "✗ $ pytest -q (failed)",
        id="cmd-string-exit-ignored",
    ),
    pytest.param(started(cmd(["/bin/bash", "-lc", "echo hi"])), "$ echo hi", id="cmd-argv-list"),
    pytest.param(
        started(cmd("/bin/bash -lc 'printf \"a\\n\"\nls   -la'")),
        '$ printf "a\\n" ls -la',
        id="cmd-multiline-collapsed",
    ),
    pytest.param(started(cmd("/bin/bash -lc ' \n '")), "$ (empty command)", id="cmd-blank-script"),
    # file_change
    pytest.param(
        completed(
            files(
                (f"{CWD}/src/app.py", "update"),
                (f"{CWD}/tests/test_app.py", "add"),
                (f"{CWD}/old.py", "delete"),
            )
        ),
        "edited src/app.py, added tests/test_app.py, deleted old.py",
        id="files-completed",
    ),
    pytest.param(
        started(files((f"{CWD}/src/app.py", "update"), status="in_progress")),
        "editing src/app.py…",
        id="files-in-progress",
    ),
    pytest.param(
        started(files((f"{CWD}/a.py", "add"), (f"{CWD}/b.py", "delete"), status=None)),
        "adding a.py, deleting b.py…",
        id="files-started-no-status",
    ),
    pytest.param(
        completed(files((f"{CWD}/src/app.py", "update"), status="failed")),
        "✗ failed to edit src/app.py",
        id="files-failed",
    ),
    pytest.param(
        completed(files((f"{CWD}/src/app.py", "update"), (f"{CWD}/n.py", "add"), status="failed")),
        "✗ failed to edit src/app.py, add n.py",
        id="files-failed-two",
    ),
    pytest.param(
        completed(files((f"{CWD}/src/app.py", "update"), status="declined")),
        "✗ declined: edit src/app.py",
        id="files-declined",
    ),
    pytest.param(
        completed(files(("/etc/hosts", "update"), (f"{CWD}x/y.py", "add"))),
        f"edited /etc/hosts, added {CWD}x/y.py",
        id="files-outside-cwd",
    ),
    pytest.param(
        completed(files((f"{CWD}/a.py", "rename"), (f"{CWD}/b.py", None))),
        "changed a.py, changed b.py",
        id="files-unknown-kind",
    ),
    pytest.param(
        completed(files((f"{CWD}/a.py", "update"), status="reverted")),
        "edited a.py (reverted)",
        id="files-unknown-status",
    ),
    pytest.param(completed(files()), "file change (no files)", id="files-empty"),
    pytest.param(
        completed({"type": "file_change", "changes": None, "status": None}),
        "file change (no files)",
        id="files-none-changes",
    ),
    pytest.param(
        completed({"type": "file_change", "changes": ["x", None, {"path": None}]}),
        "file change (no files)",
        id="files-garbage-changes",
    ),
    # reasoning / agent_message
    pytest.param(
        completed({"type": "reasoning", "text": "\n\n**Inspecting** the repo\nthen more"}),
        "thinking: Inspecting the repo",
        id="reasoning",
    ),
    pytest.param(
        completed({"type": "agent_message", "text": "  Done: fixed it.\n\nDetails..."}),
        "message: Done: fixed it.",
        id="message",
    ),
    pytest.param(
        completed({"type": "agent_message", "text": "Résumé ✓ — 日本語 テスト 🚀"}),
        "message: Résumé ✓ — 日本語 テスト 🚀",
        id="message-unicode",
    ),
    # web_search
    pytest.param(
        completed({"type": "web_search", "id": "ws_1", "query": "pytest ids"}),
        "web search: pytest ids",
        id="web-completed",
    ),
    pytest.param(
        started({"type": "web_search", "query": "", "action": {"type": "other"}}),
        "searching the web…",
        id="web-started-no-query",
    ),
    pytest.param(
        started({"type": "web_search", "query": "rust shlex"}),
        "searching the web: rust shlex…",
        id="web-started-query",
    ),
    pytest.param(
        completed({"type": "web_search", "query": "", "action": {"type": "search", "query": "q1"}}),
        "web search: q1",
        id="web-action-query",
    ),
    pytest.param(
        completed({"type": "web_search", "action": {"type": "open_page", "url": "https://x.org"}}),
        "web: opened https://x.org",
        id="web-open-page",
    ),
    pytest.param(
        completed(
            {
                "type": "web_search",
                "action": {"type": "find_in_page", "url": "https://x.org", "pattern": "abc"},
            }
        ),
        'web: find "abc" in https://x.org',
        id="web-find-in-page",
    ),
    pytest.param(completed({"type": "web_search", "query": None}), "web search", id="web-none"),
    # mcp_tool_call
    pytest.param(started(mcp("in_progress")), "mcp: github.search_issues", id="mcp-started"),
    pytest.param(
        completed(mcp("completed", result={"content": []})),
        "✓ mcp: github.search_issues",
        id="mcp-completed",
    ),
    pytest.param(
        completed(mcp("failed", {"message": "needs approval\nmore detail"})),
        "✗ mcp: github.search_issues: needs approval",
        id="mcp-failed",
    ),
    pytest.param(
        completed(mcp("failed", None)), "✗ mcp: github.search_issues (failed)", id="mcp-failed-bare"
    ),
    pytest.param(
        completed(mcp(None, "boom")), "✗ mcp: github.search_issues: boom", id="mcp-str-error"
    ),
    pytest.param(
        completed(mcp("failed", {"message": " \n "})),
        "✗ mcp: github.search_issues (failed)",
        id="mcp-failed-blank-message",
    ),
    pytest.param(
        completed(mcp("declined")), "✗ mcp: github.search_issues (declined)", id="mcp-declined"
    ),
    pytest.param(
        completed(mcp("queued")), "mcp: github.search_issues (queued)", id="mcp-unknown-status"
    ),
    pytest.param(
        started(mcp("in_progress", server=None)), "mcp: search_issues", id="mcp-no-server"
    ),
    pytest.param(started({"type": "mcp_tool_call"}), "mcp: (unknown tool)", id="mcp-no-fields"),
    # todo_list
    pytest.param(
        started(
            todo(("read", True), ("fix", True), ("test", False), ("docs", False), ("pr", False))
        ),
        "plan: 2/5 done — next: test",
        id="todo-started",
    ),
    pytest.param(
        updated(todo(("read", True), ("fix", True))), "plan: 2/2 done", id="todo-updated-all-done"
    ),
    pytest.param(completed(todo()), "plan: (empty)", id="todo-empty"),
    pytest.param(
        completed({"type": "todo_list", "items": [None, {"text": None, "completed": None}]}),
        "plan: 0/1 done",
        id="todo-garbage",
    ),
    # error item, top-level error
    pytest.param(
        completed({"type": "error", "message": "Model metadata for `x` not found"}),
        "warning: Model metadata for `x` not found",
        id="error-item",
    ),
    pytest.param(
        {"type": "error", "message": "Reconnecting... 2/5 (stream disconnected)"},
        "warning: Reconnecting... 2/5 (stream disconnected)",
        id="error-event",
    ),
    pytest.param({"type": "error"}, "warning: (no message)", id="error-event-no-message"),
    pytest.param(
        completed({"type": "error", "message": None}), "warning: (no message)", id="error-item-none"
    ),
    # collab_tool_call
    pytest.param(
        started(
            {
                "type": "collab_tool_call",
                "tool": "spawn_agent",
                "prompt": "Write the tests\nin detail",
                "status": "in_progress",
            }
        ),
        "agent: spawn_agent — Write the tests",
        id="collab-started-prompt",
    ),
    pytest.param(
        started({"type": "collab_tool_call", "tool": "wait", "receiver_thread_ids": ["a", "b"]}),
        "agent: wait (2 agents)",
        id="collab-started-receivers",
    ),
    pytest.param(
        completed(
            {
                "type": "collab_tool_call",
                "tool": "wait",
                "status": "completed",
                "agents_states": {
                    "a": {"status": "completed", "message": "ok"},
                    "b": {"status": "running"},
                    "c": {"status": "completed"},
                },
            }
        ),
        "✓ agent: wait (2 completed, 1 running)",
        id="collab-completed",
    ),
    pytest.param(
        completed({"type": "collab_tool_call", "tool": "send_input", "status": "failed"}),
        "✗ agent: send_input (failed)",
        id="collab-failed",
    ),
    pytest.param(
        completed({"type": "collab_tool_call", "agents_states": None}),
        "✓ agent: call",
        id="collab-no-fields",
    ),
    # unknown item types
    pytest.param(
        completed({"type": "image_view", "status": "completed"}),
        "image_view (completed)",
        id="unknown-with-status",
    ),
    pytest.param(started({"type": "image_gen"}), "image_gen", id="unknown-no-status"),
    pytest.param(completed({"id": "x"}), "item", id="item-no-type"),
    pytest.param(completed({"type": ["weird"]}), "['weird']", id="item-type-not-str"),
]


@pytest.mark.parametrize(("event", "expected"), LINES)
def test_render_event_lines(event: dict[str, Any], expected: str) -> None:
    line = render_event(event, cwd=CWD)
    assert line == expected
    assert_valid_line(line)


NO_LINE = [
    pytest.param({"type": "thread.started", "thread_id": "t1"}, id="thread.started"),
    pytest.param({"type": "turn.started"}, id="turn.started"),
    pytest.param({"type": "turn.completed", "usage": {"input_tokens": 1}}, id="turn.completed"),
    pytest.param({"type": "turn.failed", "error": {"message": "boom"}}, id="turn.failed"),
    pytest.param({"type": "item.plan.delta", "delta": "x"}, id="unknown-event"),
    pytest.param({}, id="no-type"),
    pytest.param({"type": None}, id="type-none"),
    pytest.param({"type": ["item.completed"]}, id="type-unhashable"),
    pytest.param({"type": "item.completed"}, id="item-missing"),
    pytest.param({"type": "item.completed", "item": None}, id="item-none"),
    pytest.param({"type": "item.completed", "item": "text"}, id="item-not-mapping"),
    pytest.param(started({"type": "agent_message", "text": "partial"}), id="message-started"),
    pytest.param(updated({"type": "agent_message", "text": "partial"}), id="message-updated"),
    pytest.param(completed({"type": "agent_message", "text": " \n\t "}), id="message-blank"),
    pytest.param(completed({"type": "agent_message", "text": None}), id="message-none"),
    pytest.param(started({"type": "reasoning", "text": "early"}), id="reasoning-started"),
    pytest.param(completed({"type": "reasoning", "text": "****\n"}), id="reasoning-only-stars"),
    pytest.param(updated(cmd(status="in_progress")), id="cmd-updated"),
    pytest.param(updated(mcp("in_progress")), id="mcp-updated"),
    pytest.param(updated({"type": "image_view", "status": "x"}), id="unknown-updated"),
]


@pytest.mark.parametrize("event", NO_LINE)
def test_render_event_no_line(event: dict[str, Any]) -> None:
    assert render_event(event, cwd=CWD) is None


@pytest.mark.parametrize("event", [None, "item.completed", 42, ["type"]])
def test_render_event_not_a_mapping(event: Any) -> None:
    assert render_event(event) is None


# --------------------------------------------------------------------------- line invariants

HUGE = ("word " * 50 + "\n") * 20_000  # ~5 MB, many lines
HOSTILE = [
    pytest.param(
        completed({"type": "agent_message", "text": HUGE}), "message: word", id="huge-msg"
    ),
    pytest.param(
        completed({"type": "reasoning", "text": "\n" * 10_000 + HUGE}),
        "thinking: word",
        id="huge-reasoning",
    ),
    pytest.param(started(cmd("/bin/bash -lc '" + HUGE + "'")), "$ word", id="huge-cmd-quoted"),
    pytest.param(
        started(cmd("/bin/bash -lc \"it's " + HUGE + '"')), "$ it's word", id="huge-cmd-shlex"
    ),
    pytest.param(started(cmd(HUGE.replace("\n", "'"))), "$ word", id="huge-cmd-unbalanced"),
    pytest.param(
        completed({"type": "web_search", "query": "q" * 5_000}), "web search: qqq", id="huge-query"
    ),
    pytest.param(
        completed(mcp("failed", {"message": "x" * 1_000_000})),
        "✗ mcp: github.search_issues: xx",
        id="huge-error",
    ),
    pytest.param(
        completed(mcp("completed", server="s" * 500, tool="t" * 500)), "✓ mcp: sss", id="huge-names"
    ),
    pytest.param(
        {"type": "error", "message": "\n\n  Reconnecting…\t 3/5\n(x)"},
        "warning: Reconnecting… 3/5",
        id="error-ws",
    ),
    pytest.param(
        completed({"type": "x" * 1_000, "status": "y" * 1_000}), "xxx", id="huge-unknown-type"
    ),
    pytest.param(
        completed(todo(("ünïcödé " * 100, False))), "plan: 0/1 done — next: ünïcödé", id="huge-todo"
    ),
    pytest.param(
        completed(files(*[(f"{CWD}/src/module_{i}.py", "update") for i in range(5_000)])),
        "edited src/module_0.py, edited src/module_1.py",
        id="many-files",
    ),
    pytest.param(
        completed(files((f"{CWD}/" + "d/" * 200 + "f.py", "add"), (f"{CWD}/b.py", "add"))),
        "added d/d/d/",
        id="long-path",
    ),
    pytest.param(
        completed(files((f"{CWD}/dir with\nnewline/a b.py", "update"))),
        "edited dir with newline/a b.py",
        id="path-with-newline",
    ),
    pytest.param(
        completed(
            {
                "type": "collab_tool_call",
                "tool": "wait",
                "agents_states": {str(i): {"status": f"s{i}"} for i in range(500)},
            }
        ),
        "✓ agent: wait (1 s0, 1 s1",
        id="many-agent-states",
    ),
]


@pytest.mark.parametrize(("event", "start"), HOSTILE)
def test_render_event_hostile_input_gives_one_short_line(event: dict[str, Any], start: str) -> None:
    line = render_event(event, cwd=CWD)
    assert_valid_line(line)
    assert line is not None and line.startswith(start)


def test_long_command_keeps_its_exit_code() -> None:
    line = render_event(completed(cmd("make " + "target " * 100, exit_code=2, status="failed")))
    assert_valid_line(line)
    assert line is not None
    assert line.startswith("✗ $ make target") and line.endswith("… (exit 2)")
    assert len(line) == MAX_LINE


def test_many_files_say_how_many_are_left_out() -> None:
    event = completed(files(*[(f"{CWD}/src/module_{i}.py", "update") for i in range(5_000)]))
    line = render_event(event, cwd=CWD)
    assert line is not None
    shown = line.count("edited ")
    assert line.endswith(f" and {5_000 - shown} more")
    assert 1 < shown < 20


def test_cwd_is_optional() -> None:
    event = completed(files((f"{CWD}/src/app.py", "update")))
    assert render_event(event) == f"edited {CWD}/src/app.py"
    assert render_event(event, cwd=CWD + "/") == "edited src/app.py"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
ITEM_TYPE_NAMES = (
    "agent_message",
    "reasoning",
    "command_execution",
    "file_change",
    "mcp_tool_call",
    "web_search",
    "todo_list",
    "error",
    "collab_tool_call",
    "something_new",
)
FIELDS_LIST = (
    "text",
    "command",
    "exit_code",
    "status",
    "changes",
    "server",
    "tool",
    "error",
    "query",
    "action",
    "items",
    "message",
    "prompt",
    "agents_states",
    "receiver_thread_ids",
)


# Values shaped like Codex's (so the happy paths run too), or anything at all.
SHAPED = {
    "changes": st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "path": st.text(max_size=20) | JSON,
                "kind": st.sampled_from(["add", "update", "delete"]) | JSON,
            },
        )
        | JSON,
        max_size=4,
    )
    | JSON,
    "items": st.lists(
        st.fixed_dictionaries(
            {}, optional={"text": st.text(max_size=20) | JSON, "completed": st.booleans() | JSON}
        )
        | JSON,
        max_size=4,
    )
    | JSON,
    "agents_states": st.dictionaries(
        st.text(max_size=5), st.fixed_dictionaries({}, optional={"status": JSON}) | JSON, max_size=3
    )
    | JSON,
    "action": st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["search", "open_page", "find_in_page"]) | JSON,
            "query": JSON,
            "queries": JSON,
            "url": JSON,
            "pattern": JSON,
        },
    )
    | JSON,
    "status": st.sampled_from(["in_progress", "completed", "failed", "declined"]) | JSON,
    "command": st.builds(
        lambda shell, script: f"{shell} {script}",
        st.sampled_from(["/bin/bash -lc", "zsh -c", "bash -l -c", "pwsh -Command", "ls"]),
        st.text(alphabet=" '\"\\-abc\n$", max_size=30),
    )
    | st.lists(st.text(max_size=10), max_size=4)
    | JSON,
    "error": st.fixed_dictionaries({}, optional={"message": JSON}) | JSON,
    "exit_code": st.integers(-5, 300) | JSON,
}


@pytest.mark.parametrize("item_type", ITEM_TYPE_NAMES)
@settings(max_examples=15, deadline=None)
@given(
    event_type=st.sampled_from(["item.started", "item.updated", "item.completed", "error"]),
    fields=st.fixed_dictionaries({}, optional={f: SHAPED.get(f, JSON) for f in FIELDS_LIST}),
    cwd=st.none() | st.sampled_from(["/", "", CWD, CWD + "/"]),
)
def test_render_event_never_raises(
    item_type: str, event_type: str, fields: dict[str, Any], cwd: str | None
) -> None:
    item = {"type": item_type, **fields}
    event = {"type": event_type, "item": item, "message": fields.get("message")}
    line = render_event(event, cwd=cwd)
    if line is not None:
        assert_valid_line(line)


SCALARS: tuple[Any, ...] = (None, "", " \n\t ", "x", 0, -1, 1.5, math.nan, math.inf, True, False)
NESTED_KEYS = ("path", "kind", "text", "completed", "status", "message", "type", "url", "query")


def garbage_values() -> list[Any]:
    """Odd values for any field, including well-shaped containers holding odd values."""
    values: list[Any] = [*SCALARS, [], {}, [None], ["x"], [[1]], {"a": [1]}]
    for scalar in (*SCALARS, [1], {"a": 1}):
        nested = dict.fromkeys(NESTED_KEYS, scalar)
        values += [[nested], nested, {"agent": nested}]
    return values


@pytest.mark.parametrize("item_type", ITEM_TYPE_NAMES)
def test_render_event_odd_field_values(item_type: str) -> None:
    rendered = 0
    for value in garbage_values():
        every_field = dict.fromkeys(FIELDS_LIST, value)
        items = [{"type": item_type, field: value} for field in FIELDS_LIST] + [
            {"type": item_type, **every_field}
        ]
        for item in items:
            for event_type in ("item.started", "item.updated", "item.completed"):
                line = render_event({"type": event_type, "item": item}, cwd=CWD)
                if line is not None:
                    assert_valid_line(line)
                    rendered += 1
        assert_valid_line(render_event({"type": "error", "message": value}))
    assert rendered > 0


# --------------------------------------------------------------------------- helpers

UNWRAP = [
    pytest.param("/bin/bash -lc 'echo hi'", "echo hi", id="bash-lc-single"),
    pytest.param("""/bin/bash -lc 'echo '"'"'hi'"'"''""", "echo 'hi'", id="bash-escaped-quote"),
    pytest.param('/bin/zsh -lc "cd x && make"', "cd x && make", id="zsh-double"),
    pytest.param('/bin/bash -lc "echo \\"q\\""', 'echo "q"', id="double-escaped"),
    pytest.param("bash -c ls", "ls", id="bash-c-bare"),
    pytest.param("/usr/bin/sh -c 'a | b'", "a | b", id="sh"),
    pytest.param("bash -l -c 'make test'", "make test", id="separate-flags"),
    pytest.param("bash --noprofile --norc -c 'make'", "make", id="long-flags"),
    pytest.param("sh -c 'a' extra", "a", id="extra-args"),
    pytest.param("/bin/bash -lc 'cat <<EOF\nx\nEOF'", "cat <<EOF\nx\nEOF", id="heredoc"),
    pytest.param("pytest -q", "pytest -q", id="plain"),
    pytest.param("  ls  ", "ls", id="plain-padded"),
    pytest.param("bash script.sh", "bash script.sh", id="bash-script"),
    pytest.param("bash -lc", "bash -lc", id="bash-no-script"),
    pytest.param("bash -rcfile x", "bash -rcfile x", id="not-a-command-flag"),
    pytest.param(
        "/bin/bash -lc 'echo \"unterminated", "/bin/bash -lc 'echo \"unterminated", id="unbalanced"
    ),
    pytest.param("/bin/bash -lc \"echo 'x", "/bin/bash -lc \"echo 'x", id="unbalanced-double"),
    pytest.param(
        "C:\\WINDOWS\\System32\\WindowsPowerShell\\v1.0\\powershell.exe -Command 'dir'",
        "dir",
        id="powershell",
    ),
    pytest.param(
        '"C:\\Program Files\\PowerShell\\7\\pwsh.exe" -Command "ls"', "ls", id="pwsh-quoted"
    ),
    pytest.param("cmd.exe /c dir", "dir", id="cmd"),
    pytest.param(["/bin/bash", "-lc", "echo hi"], "echo hi", id="argv"),
    pytest.param(["ls", "-la", "a b"], "ls -la 'a b'", id="argv-plain"),
    pytest.param(None, "", id="none"),
    pytest.param(42, "42", id="int"),
    pytest.param("", "", id="empty"),
]


@pytest.mark.parametrize(("command", "expected"), UNWRAP)
def test_unwrap_command(command: Any, expected: str) -> None:
    assert unwrap_command(command) == expected


def test_unwrap_command_too_long_to_parse_drops_the_quotes() -> None:
    script = "echo it's " + "x" * 50_000
    assert unwrap_command(f'bash -lc "{script}"') == script


@pytest.mark.parametrize(
    ("path", "cwd", "expected"),
    [
        ("/repo/src/a.py", "/repo", "src/a.py"),
        ("/repo/src/a.py", "/repo/", "src/a.py"),
        ("/repo", "/repo", "."),
        ("/repo/", "/repo", "."),
        ("/repository/a.py", "/repo", "/repository/a.py"),
        ("/other/a.py", "/repo", "/other/a.py"),
        ("src/a.py", "/repo", "src/a.py"),
        ("/repo/a.py", None, "/repo/a.py"),
        ("/repo/a.py", "", "/repo/a.py"),
        ("/etc/hosts", "/", "/etc/hosts"),
        ("", "/repo", ""),
        ("C:\\repo\\src\\a.py", "C:\\repo", "src\\a.py"),
    ],
)
def test_relative_path(path: str, cwd: str | None, expected: str) -> None:
    assert relative_path(path, cwd) == expected


@pytest.mark.parametrize(
    ("elapsed", "expected"),
    [
        (0, "working… 0 s"),
        (0.9, "working… 0 s"),
        (45, "working… 45 s"),
        (45.99, "working… 45 s"),
        (59.999, "working… 59 s"),
        (60, "working… 1 min 00 s"),
        (125, "working… 2 min 05 s"),
        (3599, "working… 59 min 59 s"),
        (3600, "working… 1 h 00 min 00 s"),
        (3725.5, "working… 1 h 02 min 05 s"),
        (90_000, "working… 25 h 00 min 00 s"),
        (-5, "working… 0 s"),
        (math.nan, "working… 0 s"),
        (math.inf, "working… 0 s"),
    ],
)
def test_heartbeat(elapsed: float, expected: str) -> None:
    assert heartbeat(elapsed) == expected


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("a  b\n\tc", 200, "a b c"),
        ("  padded  ", 200, "padded"),
        ("abcdef", 4, "abc…"),
        ("ab cdef", 4, "ab…"),
        ("abcd", 4, "abcd"),
        ("", 10, ""),
        ("x", 0, ""),
        ("日本語テキスト", 4, "日本語…"),
        ("a" + " " * 10_000 + "b", 10, "a…"),
    ],
)
def test_one_line(text: str, limit: int, expected: str) -> None:
    assert one_line(text, limit) == expected


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (
            [{"text": "a", "completed": True}, {"text": "b", "completed": False}],
            "1/2 done — next: b",
        ),
        ([{"text": "a", "completed": True}], "1/1 done"),
        ([{"text": "", "completed": False}], "0/1 done"),
        ([], None),
        (None, None),
        ("abc", None),
    ],
)
def test_plan_summary(items: Any, expected: str | None) -> None:
    assert plan_summary(items) == expected
