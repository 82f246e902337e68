"""Ctrl-C of `submit --wait --json` and `tasks wait --json`: still one JSON document on stdout."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, cli_env, run_cli, wait_until


def states(home: Path) -> list[tuple[str, int, str]]:
    with sqlite3.connect(home / "execconsole.db") as conn:
        return conn.execute(
            "SELECT task_id, try_number, state FROM task_instances ORDER BY id"
        ).fetchall()


@pytest.mark.parametrize("command", [["submit", "--wait"], ["tasks", "wait", "adhoc/later"]])
def test_ctrl_c_with_json_prints_the_tasks_where_they_stand_and_exits_130(
    home: Path, tmp_path: Path, command: list[str]
) -> None:
    if command[0] == "tasks":
        assert run_cli(home, "submit", "--task", "later", "--", "true").returncode == 0
        args = [*command, "--json"]
    else:
        args = [*command, "--json", "--task", "later", "--", "true"]
    stderr = tmp_path / "stderr"
    with stderr.open("w") as err:
        # No engine: the wait goes on until it is interrupted.
        waiter = subprocess.Popen(
            [sys.executable, "-m", "console", *args],
            cwd=REPO,
            env=cli_env(home),
            stdout=subprocess.PIPE,
            stderr=err,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        try:
            # Said from inside the wait: Ctrl-C from here on interrupts the waiting.
            wait_until(lambda: "no engine owns this store" in stderr.read_text(), message="waits")
            waiter.send_signal(signal.SIGINT)
            out, _ = waiter.communicate(timeout=60)
        finally:
            if waiter.poll() is None:
                waiter.kill()
                waiter.communicate()
    assert waiter.returncode == 130, stderr.read_text()
    assert "Traceback" not in stderr.read_text()
    # A script learns which task it stopped waiting for (submit made it) and where it stands.
    (task,) = json.loads(out)
    assert (task["task_id"], task["state"]) == ("later", "scheduled")
    assert states(home) == [("later", 1, "scheduled")]  # nothing changed: the task goes on
