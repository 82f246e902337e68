"""`submit --wait`, `submit --env` and `tasks wait`: what a script sees, against a real engine."""

from __future__ import annotations

import json
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import run_cli, start_cli, wait_until


@pytest.fixture
def engine(home: Path) -> Iterator[None]:
    scheduler = start_cli(home, "scheduler")
    try:
        wait_until(lambda: (home / "execconsole.db").exists(), message="the scheduler's store")
        yield
    finally:
        scheduler.send_signal(signal.SIGTERM)
        scheduler.communicate(timeout=60)


def latest_states(home: Path) -> list[tuple[str, int, str]]:
    with sqlite3.connect(home / "execconsole.db") as conn:
        return conn.execute(
            "SELECT task_id, try_number, state FROM task_instances ORDER BY id"
        ).fetchall()


def test_wait_follows_retries_to_success_and_exits_0(
    home: Path, tmp_path: Path, engine: None
) -> None:
    tally = tmp_path / "tries"
    # Fails twice, then succeeds: the wait must not stop at the first failed try.
    script = f'echo x >> {tally}; [ "$(wc -l < {tally})" -ge 3 ]'
    done = run_cli(
        home, "submit", "--retries", "2", "--wait", "--shell", "--task", "flaky", "--", script
    )
    assert done.returncode == 0, done.stderr
    assert tally.read_text().count("x") == 3
    assert "flaky" in done.stderr and "success (try 3)" in done.stderr
    assert [state for _task, _try, state in latest_states(home)] == [
        "up_for_retry",
        "up_for_retry",
        "success",
    ]


def test_wait_on_a_failing_task_exits_1_and_json_is_its_last_try(home: Path, engine: None) -> None:
    done = run_cli(home, "submit", "--wait", "--json", "--", "sh", "-c", "exit 7")
    assert done.returncode == 1, done.stderr
    (last,) = json.loads(done.stdout)  # one document on stdout: the waited tasks' last tries
    assert last["state"] == "failed" and last["exit_code"] == 7
    assert "exited with code 7" in done.stderr


def test_wait_timeout_without_an_engine_exits_124_and_leaves_the_task(home: Path) -> None:
    done = run_cli(home, "submit", "--wait", "--wait-timeout", "1", "--task", "later", "--", "true")
    assert done.returncode == 124, done.stderr
    assert "no engine owns this store" in done.stderr
    assert "1 task unfinished; it goes on" in done.stderr
    assert latest_states(home) == [("later", 1, "scheduled")]
    # The task was not cancelled: an engine started now runs it.
    ran = run_cli(home, "scheduler", "--until-idle")
    assert ran.returncode == 0, ran.stderr
    assert latest_states(home) == [("later", 1, "success")]


def test_env_options_reach_the_task(home: Path, tmp_path: Path, engine: None) -> None:
    out = tmp_path / "env.txt"
    done = run_cli(
        home,
        "submit",
        "--env",
        "REGION=eu",
        "--env",
        "PAIR=a=b",
        "--env",
        "REGION=us",  # the last of a name wins, as in a shell
        "--env",
        "EMPTY=",
        "--wait",
        "--",
        "sh",
        "-c",
        f'printf "%s|%s|%s|%s" "$REGION" "$PAIR" "${{EMPTY-unset}}" > {out}',
    )
    assert done.returncode == 0, done.stderr
    assert out.read_text() == "us|a=b||"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "REGION"], "--env 'REGION' must be NAME=VALUE"),
        (["--env", "=eu"], "--env '=eu' must be NAME=VALUE"),
        (["--wait-timeout", "5"], "--wait-timeout only applies with --wait"),
        (["--wait", "--wait-timeout", "0"], "--wait-timeout must be more than 0"),
        (["--wait", "--wait-timeout", "nan"], "--wait-timeout must be more than 0"),
    ],
)
def test_bad_wait_and_env_options_exit_2_and_store_nothing(
    home: Path, args: list[str], message: str
) -> None:
    done = run_cli(home, "submit", *args, "--", "true")
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: ") and message in line
    assert "Traceback" not in done.stderr
    assert not (home / "execconsole.db").exists()


def test_tasks_wait_follows_each_named_task_once_and_exits_1_if_any_failed(
    home: Path, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    for task, command in (
        ("slow", f"while [ ! -e {gate} ]; do sleep 0.05; done"),
        ("bad", "exit 4"),
    ):
        submitted = run_cli(home, "submit", "--task", task, "--shell", "--", command)
        assert submitted.returncode == 0, submitted.stderr
    scheduler = start_cli(home, "scheduler")
    try:
        # Three keys, two tasks: adhoc/slow#1 and adhoc/slow name one task instance.
        waiter = start_cli(
            home, "tasks", "wait", "adhoc/slow", "adhoc/bad", "adhoc/slow#1", "--json"
        )
        wait_until(lambda: ("bad", 1, "failed") in latest_states(home), message="bad ends")
        assert waiter.poll() is None  # slow still runs: the wait goes on
        gate.touch()
        out, err = waiter.communicate(timeout=60)
        assert waiter.returncode == 1, err
        assert sorted((r["task_id"], r["state"]) for r in json.loads(out)) == [
            ("bad", "failed"),
            ("slow", "success"),
        ]
    finally:
        scheduler.send_signal(signal.SIGTERM)
        scheduler.communicate(timeout=60)


def test_tasks_wait_all_succeeded_exits_0(home: Path, engine: None) -> None:
    assert run_cli(home, "submit", "--task", "ok", "--wait", "--", "true").returncode == 0
    done = run_cli(home, "tasks", "wait", "adhoc/ok")
    assert done.returncode == 0, done.stderr
    assert "adhoc/ok/" in done.stderr and ": success" in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["adhoc/none"], "no task instance matches adhoc/none"),
        (["not-a-key"], "task key 'not-a-key'"),
        (["adhoc/ok", "--timeout", "-3"], "--timeout must be more than 0"),
    ],
)
def test_tasks_wait_bad_input_exits_2(home: Path, args: list[str], message: str) -> None:
    assert run_cli(home, "submit", "--task", "ok", "--", "true").returncode == 0
    done = run_cli(home, "tasks", "wait", *args)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert message in line
