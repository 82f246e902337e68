"""The headless hosts as an operator meets them: no terminal, a paused store, Ctrl-C, a dead engine."""

from __future__ import annotations

import signal
import sqlite3
import textwrap
import threading
from pathlib import Path

import psutil

from tests.helpers import run_cli, start_cli, wait_until


def write_workflow(home: Path, body: str) -> Path:
    path = home / "wf.toml"
    path.write_text(textwrap.dedent(body))
    return path


def rows(home: Path, sql: str) -> list[tuple]:
    try:
        conn = sqlite3.connect(home / "execconsole.db")
    except sqlite3.OperationalError:
        return []
    try:
        return conn.execute(sql).fetchall()
    except sqlite3.OperationalError:  # the store is still being created
        return []
    finally:
        conn.close()


ONE_TASK = """
id = "one"
[[task]]
id = "a"
command = ["true"]
"""

SLEEPER = """
id = "slow"
[[task]]
id = "nap"
command = ["sleep", "60"]
[[task]]
id = "after"
upstream = ["nap"]
command = ["true"]
"""


def test_run_without_a_terminal_runs_headless_and_says_so(home: Path) -> None:
    result = run_cli(home, "run", str(write_workflow(home, ONE_TASK)))
    assert result.returncode == 0, result.stderr
    assert "not a terminal: running headless" in result.stderr
    assert "the task succeeded" in result.stderr
    assert "\x1b[" not in result.stderr  # no screen was drawn


def test_the_console_without_a_terminal_is_one_line_and_exit_2(home: Path) -> None:
    result = run_cli(home, "console")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs a terminal" in lines[0] and "--headless" in lines[0]


def test_scheduler_until_idle_on_a_paused_store_says_so_and_ends(home: Path) -> None:
    assert run_cli(home, "pause").returncode == 0
    assert run_cli(home, "submit", "--", "true").returncode == 0
    result = run_cli(home, "scheduler", "--until-idle", timeout=60)
    assert result.returncode == 1, result.stderr  # ended with a task left waiting
    assert "dispatch is paused" in result.stderr
    assert "dispatch is paused with 1 task waiting" in result.stderr
    assert rows(home, "SELECT state FROM task_instances") == [("scheduled",)]


def test_a_headless_run_on_a_paused_store_says_so_and_goes_on_once_resumed(home: Path) -> None:
    assert run_cli(home, "pause").returncode == 0
    assert run_cli(home, "scheduler", "--until-idle").returncode == 0  # carries the pause out
    runner = start_cli(home, "run", str(write_workflow(home, ONE_TASK)), "--headless")
    try:
        wait_until(lambda: rows(home, "SELECT count(*) FROM lease") == [(1,)], message="engine up")
        assert run_cli(home, "resume").returncode == 0
        _out, err = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 0, err
    assert "note: dispatch is paused on this store" in err


def test_one_ctrl_c_waits_for_running_tries_and_a_second_kills_them_now(home: Path) -> None:
    runner = start_cli(home, "run", str(write_workflow(home, SLEEPER)), "--headless")
    said: list[str] = []
    reader = threading.Thread(target=lambda: said.extend(runner.stderr), daemon=True)
    reader.start()
    try:
        wait_until(
            lambda: (
                rows(home, "SELECT state FROM task_instances WHERE task_id = 'nap'")
                == [("running",)]
            ),
            message="the nap to start",
        )
        runner.send_signal(signal.SIGINT)
        wait_until(
            lambda: any("stopping: waiting" in line for line in said),
            message="the run to say it waits for the running try",
        )
        assert rows(home, "SELECT state FROM task_instances WHERE task_id = 'nap'") == [
            ("running",)
        ]
        runner.send_signal(signal.SIGINT)
        runner.wait(timeout=60)
        reader.join(timeout=10)
    finally:
        if runner.poll() is None:
            runner.kill()
    err = "".join(said)
    assert "waiting up to 10s for 1 running try to finish; press Ctrl-C again" in err
    assert "killing 1 try as asked" in err
    assert runner.returncode == 1
    assert rows(home, "SELECT state, reason FROM task_instances WHERE task_id = 'nap'") == [
        ("failed", "killed: the engine was told to stop and kill")
    ]


def test_a_run_following_an_engine_that_dies_takes_the_store_over_and_finishes(
    home: Path, tmp_path: Path
) -> None:
    gate, starts = tmp_path / "gate", tmp_path / "starts"
    gated = f"""
    id = "slow"
    [[task]]
    id = "nap"
    command = ["sh", "-c", "echo start >> {starts}; while [ ! -e {gate} ]; do sleep 0.05; done"]
    [[task]]
    id = "after"
    upstream = ["nap"]
    command = ["true"]
    """
    scheduler = start_cli(home, "scheduler")
    follower = None
    try:
        wait_until(lambda: rows(home, "SELECT count(*) FROM lease") == [(1,)], message="engine up")
        follower = start_cli(home, "run", str(write_workflow(home, gated)), "--headless")
        wait_until(
            lambda: (
                rows(home, "SELECT state FROM task_instances WHERE task_id = 'nap'")
                == [("running",)]
            ),
            message="the nap to start",
        )
        scheduler.kill()
        scheduler.wait(timeout=30)
        wait_until(
            lambda: rows(home, "SELECT pid FROM lease") not in ([], [(scheduler.pid,)]),
            message="the follower to take the store over",
        )
        gate.touch()
        _out, err = follower.communicate(timeout=60)
        assert follower.returncode == 0, err
        assert f"the engine (pid {scheduler.pid}) stopped before this run ended" in err
        # The nap was adopted where it ran, not started again.
        assert starts.read_text().splitlines() == ["start"]
        assert rows(home, "SELECT task_id, state FROM task_instances ORDER BY task_id") == [
            ("after", "success"),
            ("nap", "success"),
        ]
    finally:
        gate.touch()
        for process in [scheduler, follower]:
            if process is not None and process.poll() is None:
                process.kill()
                process.communicate()


def test_a_home_that_cannot_be_written_is_one_line_even_with_the_store_elsewhere(
    home: Path, tmp_path: Path
) -> None:
    import subprocess

    read_only = tmp_path / "ro-home"
    read_only.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(read_only)], check=True
    )
    try:
        workflow = write_workflow(home, ONE_TASK)
        result = run_cli(
            home,
            "--home",
            str(read_only),
            "--store",
            str(home / "x.db"),
            "run",
            str(workflow),
            "--headless",
        )
    finally:
        subprocess.run(["umount", str(read_only)], check=False)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert f"cannot create {read_only}/logs: Read-only file system" in lines[0]
    assert "--home" in lines[0]


def test_the_progress_counts_tasks_not_tries_when_an_operator_retries_a_failed_task(
    home: Path, tmp_path: Path
) -> None:
    marker, release = tmp_path / "failed-once", tmp_path / "release"
    workflow = write_workflow(
        home,
        f"""
        id = "flaky"
        [[task]]
        id = "holder"
        command = ["sh", "-c", "while [ ! -e {release} ]; do sleep 0.05; done"]
        [[task]]
        id = "flaky"
        command = ["sh", "-c", "[ -e {marker} ] || {{ touch {marker}; exit 1; }}"]
        """,
    )
    runner = start_cli(home, "run", str(workflow), "--headless")
    try:
        wait_until(
            lambda: (
                rows(home, "SELECT state FROM task_instances WHERE task_id = 'flaky'")
                == [("failed",)]
            ),
            message="the flaky task to fail",
        )
        assert run_cli(home, "tasks", "retry", "flaky/flaky").returncode == 0
        wait_until(
            lambda: (
                ("success",)
                in rows(home, "SELECT state FROM task_instances WHERE task_id = 'flaky'")
            ),
            message="the retried try to succeed",
        )
        release.touch()
        _out, err = runner.communicate(timeout=60)
    finally:
        release.touch()
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 0, err
    last_bar = [line for line in err.splitlines() if " done: " in line][-1]
    assert "2/2 done: 2 ok, 0 failed" in last_bar
    assert "1 retried" in last_bar


def test_a_run_refused_after_its_engine_started_leaves_an_earlier_engines_tries_alone(
    home: Path,
) -> None:
    # run --headless starts its engine before it stores the run (so an executor
    # that cannot start leaves the store as it was). When the run is then
    # refused, tries that engine adopted from a dead one must go on running.
    one = write_workflow(home, ONE_TASK)
    assert run_cli(home, "run", str(one), "--headless", "--run-id", "r1").returncode == 0
    scheduler = start_cli(home, "scheduler")
    survivors: list[psutil.Process] = []
    try:
        assert run_cli(home, "submit", "--dag", "held", "--", "sleep", "20").returncode == 0
        wait_until(
            lambda: (
                rows(home, "SELECT state FROM task_instances WHERE dag_id = 'held'")
                == [("running",)]
            ),
            message="the held try to start",
        )
        [(pid,)] = rows(home, "SELECT pid FROM task_instances WHERE dag_id = 'held'")
        sleeper = psutil.Process(pid)
        survivors.append(sleeper)
        scheduler.kill()  # SIGKILL: the try outlives its engine
        scheduler.wait(timeout=30)
        refused = run_cli(home, "run", str(one), "--headless", "--run-id", "r1", timeout=60)
        assert refused.returncode == 2, refused.stderr
        assert "exists already" in refused.stderr
        assert sleeper.is_running() and sleeper.status() != psutil.STATUS_ZOMBIE
        assert rows(home, "SELECT state FROM task_instances WHERE dag_id = 'held'") == [
            ("running",)
        ]
        assert rows(home, "SELECT count(*) FROM lease") == [(0,)]  # given back
    finally:
        if scheduler.poll() is None:
            scheduler.kill()
        for process in survivors:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
