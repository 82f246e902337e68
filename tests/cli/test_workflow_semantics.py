"""Workflow semantics as an operator meets them headlessly: the real binary, processes and store."""

from __future__ import annotations

import sqlite3
import textwrap
import threading
from pathlib import Path

from tests.helpers import run_cli, start_cli, wait_until


def latest_state(home: Path, dag_id: str, task_id: str) -> str | None:
    """The state of the task's newest try; None before the run has made the store and the task."""
    path = home / "execconsole.db"
    if not path.exists():
        return None
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute(
            "SELECT state FROM task_instances WHERE dag_id = ? AND task_id = ? ORDER BY id DESC LIMIT 1",
            (dag_id, task_id),
        ).fetchone()
    except sqlite3.OperationalError:  # created, not yet migrated
        return None
    finally:
        conn.close()
    return row[0] if row else None


def test_a_headless_run_that_ends_lets_another_runs_task_on_its_engine_finish(
    home: Path, tmp_path: Path
) -> None:
    """``submit`` says the store's engine runs the task; a run hosting that engine must not kill it."""
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    workflow = home / "wf.toml"
    workflow.write_text(
        textwrap.dedent(
            f"""
            id = "mine"
            [[task]]
            id = "wait"
            command = ["sh", "-c", "while [ ! -e {mine} ]; do sleep 0.05; done"]
            """
        )
    )
    runner = start_cli(home, "run", str(workflow), "--headless")
    said: list[str] = []
    reader = threading.Thread(target=lambda: said.extend(runner.stderr), daemon=True)  # type: ignore[arg-type]
    reader.start()
    try:
        wait_until(lambda: latest_state(home, "mine", "wait") == "running", message="own task runs")
        submitted = run_cli(
            home,
            "submit",
            "--task",
            "backup",
            "--",
            "sh",
            "-c",
            f"while [ ! -e {theirs} ]; do sleep 0.05; done",
        )
        assert submitted.returncode == 0, submitted.stderr
        wait_until(
            lambda: latest_state(home, "adhoc", "backup") == "running",
            message="the submitted task runs on the run's engine",
        )
        mine.touch()  # the run's own work is done; the submitted task still runs
        # It says it waits for the other run's try, instead of counting down to
        # killing it (before the fix: killed after the 10 s shutdown grace).
        wait_until(
            lambda: (
                any("of other runs this engine started" in line for line in said)
                or runner.poll() is not None
            ),
            message="the run says what it waits for",
        )
        assert runner.poll() is None, "".join(said)
        assert latest_state(home, "adhoc", "backup") == "running"
        theirs.touch()
        runner.wait(timeout=60)
        reader.join(timeout=10)
    finally:
        mine.touch()
        theirs.touch()
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    err = "".join(said)
    assert runner.returncode == 0, err
    assert "mine/" in err and "the task succeeded" in err
    assert latest_state(home, "adhoc", "backup") == "success"
