"""`execconsole runs cancel`: a whole run stopped, each task ended exactly once, nothing left running."""

from __future__ import annotations

import signal
import sqlite3
import textwrap
from pathlib import Path

from tests.helpers import processes_with_env_marker, run_cli, start_cli, wait_until

# Parallelism 3. a, b and f start first (priority 5); f fails at once and waits
# out an hour's retry delay, so g takes its slot; c finds no slot and waits;
# d and e wait on upstreams.
BIG = """
id = "big"
[[task]]
id = "a"
command = ["sh", "-c", "sleep 60 & sleep 60; wait"]
priority = 5
env = {EXECCONSOLE_TEST_MARKER = "cancel-test-{marker}"}
[[task]]
id = "b"
command = ["sleep", "60"]
priority = 5
env = {EXECCONSOLE_TEST_MARKER = "cancel-test-{marker}"}
[[task]]
id = "f"
command = ["false"]
priority = 5
retries = 3
retry_delay = "1h"
[[task]]
id = "g"
command = ["sleep", "60"]
priority = 3
env = {EXECCONSOLE_TEST_MARKER = "cancel-test-{marker}"}
[[task]]
id = "c"
command = ["true"]
retries = 2
[[task]]
id = "d"
upstream = ["a"]
command = ["true"]
[[task]]
id = "e"
upstream = ["d", "b"]
command = ["true"]
"""

OTHER = """
id = "other"
[[task]]
id = "x"
command = ["sleep", "1"]
"""


def rows(home: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(home / "execconsole.db")
    try:
        return conn.execute(sql).fetchall()
    except sqlite3.OperationalError:  # not created yet
        return []
    finally:
        conn.close()


def write(home: Path, name: str, body: str) -> Path:
    path = home / f"{name}.toml"
    path.write_text(textwrap.dedent(body))
    return path


def test_cancel_kills_what_runs_fails_what_waits_and_leaves_other_runs_alone(
    home: Path, tmp_path: Path
) -> None:
    marker = tmp_path.name
    big = write(home, "big", BIG.replace("{marker}", marker))
    run = start_cli(home, "run", str(big), "--headless", "--parallelism", "3", "--run-id", "r1")
    try:
        wait_until(
            lambda: (
                rows(
                    home,
                    "SELECT task_id, state FROM task_instances WHERE state = 'running' ORDER BY task_id",
                )
                == [("a", "running"), ("b", "running"), ("g", "running")]
                and rows(home, "SELECT count(*) FROM task_instances WHERE task_id = 'f'") == [(2,)]
            ),
            timeout=60,
            message="a, b and g running, f waiting out its retry delay",
        )
        other = run_cli(home, "submit", "--dag", "other", "--", "sleep", "1")
        assert other.returncode == 0, other.stderr

        result = run_cli(home, "runs", "cancel", "big")  # the newest run of big
        assert result.returncode == 0, result.stderr
        assert "cancelling big/r1: killing 3 running, 2 not started failed" in result.stderr

        _out, err = run.communicate(timeout=60)
        assert run.returncode == 1, err
    finally:
        if run.poll() is None:
            run.kill()
    latest = dict(
        rows(
            home,
            "SELECT task_id, state FROM task_instances t WHERE dag_id = 'big' AND try_number = "
            "(SELECT max(try_number) FROM task_instances u WHERE u.dag_id = t.dag_id "
            "AND u.run_id = t.run_id AND u.task_id = t.task_id)",
        )
    )
    assert latest == {
        "a": "failed",
        "b": "failed",
        "c": "failed",
        "d": "upstream_failed",
        "e": "upstream_failed",
        "f": "failed",
        "g": "failed",
    }
    # Nothing retried after the cancel: c has one try, f the two it had.
    assert rows(
        home,
        "SELECT task_id, count(*) FROM task_instances WHERE dag_id = 'big' "
        "GROUP BY task_id HAVING count(*) > 1",
    ) == [("f", 2)]
    # Every try of the run has exactly one ending in its history.
    endings = rows(
        home,
        "SELECT ti_id, count(*) FROM events WHERE to_state IN "
        "('success', 'failed', 'upstream_failed', 'up_for_retry') GROUP BY ti_id",
    )
    tries = rows(home, "SELECT id FROM task_instances WHERE dag_id = 'big'")
    assert sorted(ti for ti, _n in endings if (ti,) in tries) == sorted(ti for (ti,) in tries)
    assert all(count == 1 for _ti, count in endings)
    reasons = dict(
        rows(
            home,
            "SELECT task_id, reason FROM task_instances WHERE dag_id = 'big' AND task_id IN ('a', 'c')",
        )
    )
    assert reasons["a"] == "killed: cancelled by operator with its run big/r1"
    assert reasons["c"] == "cancelled by operator with its run big/r1 before it started"
    # The killed tries' whole process trees are gone (a started a background child).
    wait_until(
        lambda: not processes_with_env_marker(f"cancel-test-{marker}"),
        message="no process of the cancelled run left",
    )
    # Another run on the same engine was not touched: it ran to its end.
    assert rows(home, "SELECT state FROM task_instances WHERE dag_id = 'other'") == [("success",)]


def test_cancel_refuses_what_it_cannot_cancel_and_writes_nothing(home: Path) -> None:
    small = write(home, "other", OTHER)
    assert run_cli(home, "runs", "cancel", "other").returncode == 2  # no store yet
    assert not (home / "execconsole.db").exists()
    finished = run_cli(home, "run", str(small), "--headless", "--run-id", "done")
    assert finished.returncode == 0, finished.stderr
    requests = rows(home, "SELECT count(*) FROM requests")
    for target, message in [
        ("other/done", "run other/done has finished (success): nothing to cancel"),
        ("other/nope", "no run 'other/nope'"),
        ("nothing", "workflow 'nothing' has no runs"),
        ("/r1", "is not a run"),
    ]:
        result = run_cli(home, "runs", "cancel", target)
        assert result.returncode == 2, (target, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (target, lines)
    assert rows(home, "SELECT count(*) FROM requests") == requests


def test_cancel_without_an_engine_waits_for_the_next_one(home: Path) -> None:
    assert run_cli(home, "submit", "--dag", "later", "--", "true").returncode == 0
    result = run_cli(home, "runs", "cancel", "later")
    assert result.returncode == 0, result.stderr
    assert "stored; the next engine on this store carries it out" in result.stderr
    scheduler = run_cli(home, "scheduler", "--until-idle", timeout=60)
    assert scheduler.returncode == 0, scheduler.stderr
    assert rows(home, "SELECT state, reason FROM task_instances WHERE dag_id = 'later'") == [
        (
            "failed",
            "cancelled by operator with its run "
            + rows(home, "SELECT dag_id || '/' || run_id FROM dag_runs WHERE dag_id = 'later'")[0][
                0
            ]
            + " before it started",
        )
    ]


def test_a_task_killed_before_any_engine_ran_is_not_started_by_the_next_one(home: Path) -> None:
    # The kill and the next engine's first dispatch fall in the same tick: the
    # try must not be picked while its ending is not yet committed.
    assert run_cli(home, "submit", "--dag", "doomed", "--", "true").returncode == 0
    killed = run_cli(home, "tasks", "kill", "doomed/true")
    assert killed.returncode == 0, killed.stderr
    scheduler = run_cli(home, "scheduler", "--until-idle", timeout=60)
    assert scheduler.returncode == 0, scheduler.stderr
    assert rows(home, "SELECT state, reason, pid FROM task_instances WHERE dag_id = 'doomed'") == [
        ("failed", "killed by operator before it started", None)
    ]


RETRY_LATER = """
id = "later"
[[task]]
id = "flaky"
command = ["sh", "-c", "echo try $EXECCONSOLE_TRY_NUMBER; exit 1"]
retries = 2
retry_delay = "1h"
"""


def test_retrying_a_task_waiting_out_its_retry_delay_starts_its_next_try_now(home: Path) -> None:
    workflow = write(home, "later", RETRY_LATER)
    engine = start_cli(home, "run", str(workflow), "--headless", "--run-id", "r1")
    try:
        wait_until(
            lambda: (
                rows(home, "SELECT try_number, state FROM task_instances ORDER BY id")
                == [(1, "up_for_retry"), (2, "scheduled")]
            ),
            message="the first try failed and the second waits an hour",
        )
        result = run_cli(home, "tasks", "retry", "later/flaky")
        assert result.returncode == 0, result.stderr
        assert "retrying later/flaky/r1#2" in result.stderr
        wait_until(
            lambda: (
                rows(home, "SELECT try_number, state FROM task_instances ORDER BY id")
                == [(1, "up_for_retry"), (2, "up_for_retry"), (3, "scheduled")]
            ),
            message="the second try ran at once, and the third waits its hour",
        )
    finally:
        engine.send_signal(signal.SIGTERM)
        engine.communicate(timeout=60)
    history = rows(
        home,
        "SELECT e.from_state, e.to_state, e.reason FROM events e JOIN task_instances t "
        "ON t.id = e.ti_id WHERE t.try_number = 2 ORDER BY e.id",
    )
    assert [(f, t) for f, t, _r in history] == [
        (None, "scheduled"),
        ("scheduled", "scheduled"),
        ("scheduled", "queued"),
        ("queued", "running"),
        ("running", "up_for_retry"),
    ]
    assert history[1][2].startswith("retry delay cleared by operator")
