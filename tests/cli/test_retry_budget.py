"""An operator's retry gives a task its whole retry budget again, as Airflow's clear does."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.helpers import run_cli


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
