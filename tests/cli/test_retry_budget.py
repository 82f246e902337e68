"""An operator's retry gives a task its whole retry budget again, as Airflow's clear does."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.helpers import run_cli, start_cli, wait_until


def test_a_retried_task_gets_its_retries_again(home: Path, tmp_path: Path) -> None:
    tally = tmp_path / "tally"
    flow = tmp_path / "flow.toml"
    flow.write_text(
        f'id = "budget"\n[[task]]\nid = "flaky"\nshell = true\nretries = 1\n'
        f'command = "echo x >> {tally}; exit 1"\n'
    )
    first = run_cli(home, "run", str(flow), "--headless")
    assert first.returncode == 1
    assert tally.read_text().count("x") == 2  # the try and its one retry

    asked = run_cli(home, "tasks", "retry", "budget/flaky")
    assert asked.returncode == 0, asked.stderr
    again = run_cli(home, "scheduler", "--until-idle")
    assert again.returncode == 0, again.stderr
    # The operator's try, then one retry of it: the budget started over.
    assert tally.read_text().count("x") == 4
    with sqlite3.connect(home / "execconsole.db") as conn:
        tries = conn.execute(
            "SELECT try_number, state, retry_base FROM task_instances ORDER BY try_number"
        ).fetchall()
        reasons = [
            reason
            for (reason,) in conn.execute(
                "SELECT reason FROM events WHERE to_state = 'scheduled' AND reason LIKE 'retry %'"
                " ORDER BY id"
            )
        ]
    assert tries == [
        (1, "up_for_retry", 0),
        (2, "failed", 0),
        (3, "up_for_retry", 2),
        (4, "failed", 2),
    ]
    assert reasons == ["retry 1 of 1", "retry 1 of 1"]


def test_a_retry_waiting_out_its_delay_that_the_operator_starts_gets_the_budget_again(
    home: Path, tmp_path: Path
) -> None:
    """`tasks retry` of a try waiting out its retry delay starts it now, with the whole budget."""
    tally = tmp_path / "tally"
    flow = tmp_path / "flow.toml"
    flow.write_text(
        f'id = "budget"\n[[task]]\nid = "flaky"\nshell = true\nretries = 1\n'
        f'retry_delay = "1h"\ncommand = "echo x >> {tally}; exit 1"\n'
    )
    run = start_cli(home, "run", str(flow), "--headless")
    try:
        # Try 2, its last by the file's budget, waits out its hour.
        wait_until(lambda: tries(home) == [(1, "up_for_retry", 0), (2, "scheduled", 0)])
        asked = run_cli(home, "tasks", "retry", "budget/flaky")
        assert asked.returncode == 0, asked.stderr
        wait_until(
            lambda: len(tries(home)) > 2 or tries(home)[1][1] == "failed",
            message="try 2 ran and ended",
        )
        # Started by the operator, it had one retry again: try 3 waits out the delay.
        assert tries(home) == [(1, "up_for_retry", 0), (2, "up_for_retry", 1), (3, "scheduled", 1)]
        assert run_cli(home, "runs", "cancel", "budget").returncode == 0
        _out, err = run.communicate(timeout=60)
        assert run.returncode == 1, err
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert tally.read_text().count("x") == 2


def tries(home: Path) -> list[tuple[int, str, int]]:
    if not (home / "execconsole.db").exists():
        return []
    conn = sqlite3.connect(home / "execconsole.db")
    try:
        return conn.execute(
            "SELECT try_number, state, retry_base FROM task_instances ORDER BY try_number"
        ).fetchall()
    except sqlite3.OperationalError:  # not migrated yet
        return []
    finally:
        conn.close()
