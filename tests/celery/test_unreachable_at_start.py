"""Redis unreachable when a celery executor starts: one line naming the broker, exit code 2.

Started anyway, an engine would take tries it cannot send and sit on them
with nothing telling the operator why the run does not move. An outage
*after* start is ridden out instead (test_redis_outage.py). Each test points
at a loopback port nobody listens on, so the broker is really unreachable.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from executors.celery.executor import BrokerUnreachable, CeleryExecutor
from executors.loader import ExecutorConfigError
from tests.celery.conftest import TEST_SETTINGS, free_port
from tests.helpers import cli_env, run_cli

pytestmark = pytest.mark.celery


@pytest.fixture
def nobody() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def workflow(tmp_path: Path) -> Path:
    path = tmp_path / "wf.toml"
    path.write_text('id = "wf"\n[[task]]\nid = "a"\ncommand = ["true"]\n')
    return path


def env_for(home: Path, broker: str) -> dict[str, str]:
    return cli_env(home, EXECCONSOLE__CELERY__BROKER_URL=broker)


def seed(home: Path) -> None:
    """A store holding one task already, so "nothing written" is a comparison, not an absence."""
    result = run_cli(home, "submit", "--task", "first", "--", "true")
    assert result.returncode == 0, result.stderr


def store_contents(home: Path) -> list[list[Any]]:
    """Every row an engine or a submission writes, so a test can show that nothing was."""
    conn = sqlite3.connect(home / "execconsole.db")
    try:
        return [
            conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
            for table in ("dag_runs", "task_instances", "events", "requests", "settings")
        ]
    finally:
        conn.close()


def error_lines(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_starting_the_executor_raises_one_operator_line_and_leaves_no_thread(
    nobody: str,
) -> None:
    executor = CeleryExecutor(0, options={**TEST_SETTINGS, "broker_url": nobody})
    with pytest.raises(BrokerUnreachable) as raised:
        executor.start()
    message = str(raised.value)
    assert isinstance(raised.value, ExecutorConfigError)  # what hosts already report as one line
    assert message.startswith(f"executor 'celery': cannot reach Redis at {nobody} (")
    assert "start redis-server there" in message and "EXECCONSOLE__CELERY__BROKER_URL" in message
    assert "\n" not in message
    assert not [t for t in threading.enumerate() if t.name.startswith("execconsole-celery")]


def test_the_scheduler_fails_fast_with_exit_code_2_and_writes_nothing(
    home: Path, nobody: str
) -> None:
    seed(home)
    before = store_contents(home)
    result = run_cli(
        home, "scheduler", "--executor", "celery", "--until-idle", env=env_for(home, nobody)
    )
    assert result.returncode == 2, result.stderr
    (line,) = error_lines(result.stderr)
    assert f"cannot reach Redis at {nobody}" in line
    assert store_contents(home) == before
    # The lease was given back: the next engine starts without waiting for it.
    again = run_cli(home, "scheduler", "--until-idle", env=cli_env(home))
    assert again.returncode == 0, again.stderr


@pytest.mark.parametrize("executors", ["celery", "local,celery"])
def test_run_fails_fast_with_exit_code_2_and_one_error_line(
    home: Path, nobody: str, workflow: Path, executors: str
) -> None:
    # Before, this ran until interrupted, the try waiting unsent: the timeout would fire.
    result = run_cli(
        home,
        "run",
        str(workflow),
        "--headless",
        "--executor",
        executors,
        env=env_for(home, nobody),
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    (line,) = error_lines(result.stderr)
    assert f"executor 'celery': cannot reach Redis at {nobody}" in line


def test_run_with_an_unreachable_broker_writes_nothing(
    home: Path, nobody: str, workflow: Path
) -> None:
    seed(home)
    before = store_contents(home)
    result = run_cli(
        home, "run", str(workflow), "--headless", "--executor", "celery", env=env_for(home, nobody)
    )
    assert result.returncode == 2, result.stderr
    assert store_contents(home) == before
