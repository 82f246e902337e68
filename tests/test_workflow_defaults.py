"""A workflow's [defaults] table: every task's values unless it sets its own."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from console.workflow import WorkflowError, parse_workflow
from tests.helpers import run_cli

TASKS = """
[[task]]
id = "a"
command = ["true"]
env = { B = "task" }

[[task]]
id = "b"
command = ["true"]
retries = 0
cwd = "/srv"
queue = "fast"
"""


def test_defaults_fill_what_a_task_leaves_unset_and_env_tables_merge() -> None:
    spec = parse_workflow(
        'id = "w"\n[defaults]\nretries = 2\nretry_delay = "30s"\ntimeout = "1m"\n'
        'priority = 7\nqueue = "slow"\ncwd = "data"\nenv = { A = "default", B = "default" }\n'
        + TASKS,
        base_dir="/flows",
    )
    a, b = spec.tasks
    assert (a.retries, a.retry_delay, a.timeout, a.priority, a.queue) == (2, 30.0, 60.0, 7, "slow")
    assert a.env == {"A": "default", "B": "task"}  # the task's variable wins
    assert a.cwd == "/flows/data"  # relative to the file's folder, like a task's own cwd
    # A task's own value wins, even one equal to the built-in default (retries = 0).
    assert (b.retries, b.cwd, b.queue, b.env) == (
        0,
        "/srv",
        "fast",
        {"A": "default", "B": "default"},
    )


def test_defaults_may_come_after_the_tasks_in_the_file() -> None:
    spec = parse_workflow('id = "w"\n' + TASKS + "\n[defaults]\npriority = 3\n")
    assert [task.priority for task in spec.tasks] == [3, 3]


@pytest.mark.parametrize(
    ("defaults", "message"),
    [
        (
            "retries = -1",
            "<string>: [defaults]: 'retries' must be an integer from 0 to 1000, got -1",
        ),
        ('command = ["x"]', "<string>: [defaults]: 'command' can only be set on each task"),
        ('upstream = ["a"]', "<string>: [defaults]: 'upstream' can only be set on each task"),
        ("retires = 2", "<string>: unknown key 'retires' in [defaults] (did you mean 'retries'?)"),
        (
            'executor = "nope"',
            "<string>: [defaults]: unknown executor 'nope'; known executors: local",
        ),
        ('timeout = "soon"', "<string>: [defaults]: 'timeout' must be seconds > 0"),
    ],
)
def test_a_bad_default_is_one_message_naming_defaults(defaults: str, message: str) -> None:
    with pytest.raises(WorkflowError) as raised:
        parse_workflow(f'id = "w"\n[defaults]\n{defaults}\n' + TASKS, known_executors=["local"])
    assert raised.value.errors[0].startswith(message)
    assert len(raised.value.errors) == 1  # once, not once per task


def test_defaults_that_is_not_a_table_is_rejected() -> None:
    with pytest.raises(WorkflowError, match="'defaults' must be a table"):
        parse_workflow('id = "w"\ndefaults = 3\n' + TASKS)


def test_defaults_reach_the_store_and_the_running_task(tmp_path: Path) -> None:
    home = tmp_path / "home"
    out = tmp_path / "out.txt"
    flow = tmp_path / "flow.toml"
    flow.write_text(
        'id = "d"\n[defaults]\nretries = 1\nenv = { GREETING = "hello" }\n'
        f'[[task]]\nid = "say"\ncommand = ["sh", "-c", "echo $GREETING > {out}"]\n'
    )
    done = run_cli(home, "run", str(flow), "--headless")
    assert done.returncode == 0, done.stderr
    assert out.read_text() == "hello\n"
    with sqlite3.connect(home / "execconsole.db") as conn:
        assert conn.execute("SELECT retries FROM task_instances").fetchall() == [(1,)]
