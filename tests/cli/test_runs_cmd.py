"""`execconsole runs list` and `runs clean` with the real binary, a real store and real tasks."""

from __future__ import annotations

import json
import signal
import sqlite3
import textwrap
from pathlib import Path

from tests.helpers import run_cli, start_cli, wait_until

WORKFLOW = """
id = "nightly"
[[task]]
id = "extract"
command = ["sh", "-c", "echo extracted"]
[[task]]
id = "load"
upstream = ["extract"]
command = ["sh", "-c", "echo loading; exit 3"]
"""


def run_workflow(home: Path) -> str:
    path = home / "nightly.toml"
    path.write_text(textwrap.dedent(WORKFLOW))
    result = run_cli(home, "run", str(path), "--headless")
    assert result.returncode == 1, result.stderr  # load fails by design
    (run,) = json.loads(run_cli(home, "runs", "list", "--dag", "nightly", "--json").stdout)
    return str(run["run_id"])


def rows(home: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(home / "execconsole.db")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_runs_list_says_how_each_run_went(home: Path) -> None:
    run_id = run_workflow(home)
    assert run_cli(home, "submit", "--dag", "adhoc", "--", "true").returncode == 0

    listed = run_cli(home, "runs", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    newest, oldest = json.loads(listed.stdout)  # exactly one document, newest run first
    assert (newest["dag_id"], newest["state"], newest["counts"]) == (
        "adhoc",
        "queued",
        {"scheduled": 1},
    )
    assert (oldest["run_id"], oldest["state"], oldest["tasks"]) == (run_id, "failed", 2)
    assert oldest["counts"] == {"success": 1, "failed": 1}
    assert oldest["started_at"] and oldest["ended_at"]

    human = run_cli(home, "runs", "list", "--state", "failed")
    assert human.returncode == 0 and human.stdout == ""
    header, line = human.stderr.splitlines()
    assert header.split()[:6] == ["RUN", "STATE", "TASKS", "OK", "FAILED", "LEFT"]
    assert line.split()[:6] == [f"nightly/{run_id}", "failed", "2", "1", "1", "0"]


def test_runs_clean_without_an_engine_removes_finished_runs_and_their_logs(home: Path) -> None:
    run_id = run_workflow(home)
    assert run_cli(home, "submit", "--dag", "waiting", "--", "true").returncode == 0
    run_logs = home / "logs" / "nightly" / run_id
    assert (run_logs / "load.1.log").read_text() == "loading\n"

    preview = run_cli(home, "runs", "clean", "--older-than", "0s", "--dry-run")
    assert preview.returncode == 0, preview.stderr
    assert f"would remove nightly/{run_id} (failed, 2 task instances)" in preview.stderr
    assert run_logs.exists()

    cleaned = run_cli(home, "runs", "clean", "--older-than", "0s", "--json")
    assert cleaned.returncode == 0, cleaned.stderr
    report = json.loads(cleaned.stdout)
    assert report["removed"] is True
    assert [run["run_id"] for run in report["runs"]] == [run_id]
    assert not (home / "logs" / "nightly").exists()
    assert rows(home, "SELECT DISTINCT dag_id FROM task_instances") == [("waiting",)]
    assert rows(
        home, "SELECT count(*) FROM events WHERE ti_id NOT IN (SELECT id FROM task_instances)"
    ) == [(0,)]
    assert rows(home, "SELECT count(*) FROM lease") == [(0,)]  # the command gave its lease back


def test_runs_clean_of_recent_runs_removes_nothing(home: Path) -> None:
    run_workflow(home)
    result = run_cli(home, "runs", "clean", "--older-than", "1d")
    assert result.returncode == 0, result.stderr
    assert "nothing to remove" in result.stderr
    assert rows(home, "SELECT count(*) FROM dag_runs") == [(1,)]


def test_runs_clean_goes_through_the_engine_that_owns_the_store(home: Path) -> None:
    run_id = run_workflow(home)
    scheduler = start_cli(home, "scheduler")
    try:
        wait_until(
            lambda: rows(home, "SELECT count(*) FROM lease") == [(1,)],
            message="the scheduler to take the lease",
        )
        assert run_cli(home, "submit", "--dag", "busy", "--", "sleep", "30").returncode == 0
        wait_until(
            lambda: (
                rows(home, "SELECT state FROM task_instances WHERE dag_id = 'busy'")
                == [("running",)]
            ),
            message="the sleep to start",
        )
        result = run_cli(home, "runs", "clean", "--older-than", "0s")
        assert result.returncode == 0, result.stderr
        assert "removed 1 finished run (2 task instances" in result.stderr
        # The engine did it: its request is marked done, and the running run is kept.
        assert rows(home, "SELECT kind, status FROM requests") == [("forget", "done")]
        assert rows(home, "SELECT DISTINCT dag_id FROM task_instances") == [("busy",)]
        assert not (home / "logs" / "nightly" / run_id).exists()
        assert (home / "logs" / "busy").exists()
        assert run_cli(home, "tasks", "kill", "busy/sleep").returncode == 0
    finally:
        scheduler.send_signal(signal.SIGTERM)
        try:
            scheduler.wait(timeout=60)
        finally:
            if scheduler.poll() is None:
                scheduler.kill()
