"""A try adopted after an engine crash still times out, counted from its own start.

The supervisor that enforces a try's timeout lives in the worker (LocalExecutor)
or in the engine itself (SequentialExecutor); kill the engine with it and the
only one left to enforce it is the next engine, which adopts the try. Real
processes: `execconsole run --headless` SIGKILLed (with its workers), then
`execconsole scheduler --until-idle` on the same store.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
import pytest

from executors.claims import STARTED, ClaimBook
from store import Store
from tests.helpers import cli_env, run_cli, start_cli, wait_until


def _record(home: Path):  # type: ignore[no-untyped-def]
    with Store(home / "execconsole.db") as store:
        (record,) = store.list_tasks(dag_id="tmo")
    return record


def _claim_state(home: Path) -> str | None:
    token = _record(home).token
    claim = ClaimBook(home / "claims").read(token) if token else None
    return (claim or {}).get("state")


@pytest.mark.parametrize("executor", ["local", "sequential"])
def test_an_adopted_try_is_killed_when_its_timeout_runs_out(
    home: Path, tmp_path: Path, executor: str
) -> None:
    pid_file = tmp_path / "pid"
    workflow = tmp_path / "tmo.toml"
    # Far longer than the test may take: only the timeout can end it.
    workflow.write_text(
        'id = "tmo"\n[[task]]\nid = "slow"\ntimeout = "3s"\nshell = true\n'
        f'command = "echo $$ > {pid_file}; exec sleep 600"\n'
    )
    env = cli_env(home, EXECCONSOLE__CORE__EXECUTOR=executor)
    run = start_cli(home, "run", str(workflow), "--headless", env=env)
    try:
        wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), message="started")
        # Its claim says started (the SequentialExecutor runs it inside the engine's
        # tick, so the store says queued until it ends).
        wait_until(lambda: _claim_state(home) == STARTED, message="claim says started")
        # The engine, its forkserver and workers: the task runs in a session of its own.
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    task_pid = int(pid_file.read_text())
    assert psutil.pid_exists(task_pid)  # it outlived its engine

    result = run_cli(home, "scheduler", "--until-idle", env=env, timeout=120)

    record = _record(home)
    assert result.returncode == 0, result.stderr
    assert record.state == "failed"
    assert record.reason == "timed out after 3s"
    # Killed by the executor that adopted it, as its timeout ran out (not by a backstop).
    assert "ran past its timeout of 3s: killing it" in result.stderr
    assert not psutil.pid_exists(task_pid) or psutil.Process(task_pid).status() == "zombie"
