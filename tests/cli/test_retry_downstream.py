"""`execconsole tasks retry KEY... --downstream`: Airflow's "clear with downstream".

Real workflows through the real CLI and engine: each task appends its id to a
trace file when it runs, so every test counts what ran, and in which order.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import textwrap
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.helpers import processes_with_env_marker, run_cli, start_cli, wait_until

CHAIN = """
id = "chain"
[[task]]
id = "a"
command = ["sh", "-c", "echo a >> {trace}"]
[[task]]
id = "b"
upstream = ["a"]
command = ["sh", "-c", "echo b >> {trace}; test -e {fixed}"]
[[task]]
id = "c"
upstream = ["b"]
command = ["sh", "-c", "echo c >> {trace}"]
"""

# a -> (b, c) -> d -> e
DIAMOND = """
id = "wf"
[[task]]
id = "a"
command = ["sh", "-c", "echo a >> {trace}"]
[[task]]
id = "b"
upstream = ["a"]
command = ["sh", "-c", "echo b >> {trace}; while [ ! -e {gate} ]; do sleep 0.05; done"]
[[task]]
id = "c"
upstream = ["a"]
command = ["sh", "-c", "echo c >> {trace}"]
[[task]]
id = "d"
upstream = ["b", "c"]
command = ["sh", "-c", "echo d >> {trace}"]
[[task]]
id = "e"
upstream = ["d"]
command = ["sh", "-c", "echo e >> {trace}"]
"""

# Parallelism 1: b (priority 5) runs until the gate opens, c waits at the
# executor (handed out, not started), d waits for b.
BUSY = """
id = "busy"
[[task]]
id = "a"
command = ["sh", "-c", "echo a >> {trace}"]
[[task]]
id = "b"
upstream = ["a"]
priority = 5
command = ["sh", "-c", "echo b >> {trace}; while [ ! -e {gate} ]; do sleep 0.05; done"]
env = {{EXECCONSOLE_TEST_MARKER = "retry-downstream-{marker}"}}
[[task]]
id = "c"
upstream = ["a"]
command = ["sh", "-c", "echo c >> {trace}"]
[[task]]
id = "d"
upstream = ["b"]
command = ["sh", "-c", "echo d >> {trace}"]
"""


def rows(home: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(home / "execconsole.db")
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError:  # not created yet
        return []
    finally:
        conn.close()


def write(home: Path, name: str, body: str, **values: object) -> Path:
    path = home / f"{name}.toml"
    path.write_text(textwrap.dedent(body.format(**values)))
    return path


def ran(trace: Path) -> list[str]:
    return trace.read_text().split() if trace.exists() else []


def tries(home: Path, dag: str) -> dict[str, list[tuple[int, str]]]:
    """Every task's tries, oldest first: {task: [(try, state), ...]}."""
    found: dict[str, list[tuple[int, str]]] = {}
    for task, number, state in rows(
        home,
        "SELECT task_id, try_number, state FROM task_instances WHERE dag_id = ? "
        "ORDER BY task_id, try_number",
        (dag,),
    ):
        found.setdefault(task, []).append((number, state))
    return found


def span(home: Path, dag: str, task: str, number: int) -> tuple[str, str]:
    """(start_date, end_date) of one try (ISO-8601 UTC strings, comparable as text)."""
    [(start, end)] = rows(
        home,
        "SELECT start_date, end_date FROM task_instances WHERE dag_id = ? AND task_id = ? "
        "AND try_number = ?",
        (dag, task, number),
    )
    assert start and end, (task, number, start, end)
    return start, end


def all_done(home: Path, dag: str) -> bool:
    return bool(tries(home, dag)) and rows(
        home,
        "SELECT count(*) FROM task_instances WHERE dag_id = ? "
        "AND state IN ('scheduled', 'queued', 'running')",
        (dag,),
    ) == [(0,)]


def first_event(home: Path, dag: str, task: str, number: int) -> tuple:
    return rows(
        home,
        "SELECT e.from_state, e.to_state, e.actor, e.reason FROM events e JOIN task_instances t "
        "ON t.id = e.ti_id WHERE t.dag_id = ? AND t.task_id = ? AND t.try_number = ? "
        "ORDER BY e.id LIMIT 1",
        (dag, task, number),
    )[0]


@contextmanager
def scheduler(home: Path) -> Iterator[None]:
    """An engine owning the store for the block (so requests are carried out while we wait)."""
    engine = start_cli(home, "scheduler")
    try:
        wait_until(lambda: rows(home, "SELECT count(*) FROM lease") == [(1,)], message="engine up")
        yield
    finally:
        engine.send_signal(signal.SIGTERM)
        _out, err = engine.communicate(timeout=60)
        assert engine.returncode == 0, err


def retry_json(home: Path, *args: str) -> dict:
    result = run_cli(home, "tasks", "retry", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_failed_chain_runs_again_from_its_first_task_each_task_once_in_order(
    home: Path, tmp_path: Path
) -> None:
    trace, fixed = tmp_path / "trace", tmp_path / "fixed"
    workflow = write(home, "chain", CHAIN, trace=trace, fixed=fixed)
    first = run_cli(home, "run", str(workflow), "--headless", "--run-id", "r1")
    assert first.returncode == 1, first.stderr
    assert tries(home, "chain") == {
        "a": [(1, "success")],
        "b": [(1, "failed")],
        "c": [(1, "upstream_failed")],
    }
    assert ran(trace) == ["a", "b"]

    fixed.touch()  # what b reads is fixed: now the whole chain should run again
    with scheduler(home):
        outcome = retry_json(home, "chain/a", "--downstream")
        assert outcome["status"] == "done", outcome
        assert outcome["downstream"] is True
        assert outcome["retried"] == ["chain/a/r1#1"]
        assert outcome["cleared"] == [
            {"key": "chain/b/r1#1", "state": "failed", "action": "new_try"},
            {"key": "chain/c/r1#1", "state": "upstream_failed", "action": "new_try"},
        ]
        assert "new tries downstream for chain/b/r1#1, chain/c/r1#1" in outcome["result"]
        wait_until(lambda: all_done(home, "chain"), message="the chain to run again")

    assert tries(home, "chain") == {
        "a": [(1, "success"), (2, "success")],
        "b": [(1, "failed"), (2, "success")],
        "c": [(1, "upstream_failed"), (2, "success")],
    }
    assert ran(trace) == ["a", "b", "a", "b", "c"]  # each once more, in dependency order
    assert span(home, "chain", "a", 2)[1] <= span(home, "chain", "b", 2)[0]
    assert span(home, "chain", "b", 2)[1] <= span(home, "chain", "c", 2)[0]
    cleared = (None, "scheduled", "operator", "cleared by operator (retry a with downstream)")
    assert first_event(home, "chain", "b", 2) == cleared
    assert first_event(home, "chain", "c", 2) == cleared
    assert first_event(home, "chain", "a", 2) == (
        None,
        "scheduled",
        "operator",
        "retried by operator",
    )
    listed = json.loads(run_cli(home, "runs", "list", "--json").stdout)
    assert [run["state"] for run in listed] == ["success"]


def test_keys_sharing_downstream_tasks_give_each_task_one_new_try(
    home: Path, tmp_path: Path
) -> None:
    trace, gate = tmp_path / "trace", tmp_path / "gate"
    gate.touch()
    workflow = write(home, "wf", DIAMOND, trace=trace, gate=gate)
    first = run_cli(home, "run", str(workflow), "--headless", "--run-id", "r1")
    assert first.returncode == 0, first.stderr
    assert sorted(ran(trace)) == ["a", "b", "c", "d", "e"]

    # b and c share d and e, and d is itself downstream of both.
    with scheduler(home):
        outcome = retry_json(home, "wf/b", "wf/d", "wf/c", "--downstream")
        assert outcome["status"] == "done", outcome
        assert outcome["retried"] == ["wf/b/r1#1", "wf/c/r1#1", "wf/d/r1#1"]  # upstreams first
        assert outcome["cleared"] == [{"key": "wf/e/r1#1", "state": "success", "action": "new_try"}]
        wait_until(lambda: all_done(home, "wf"), message="the diamond to run again")

    assert tries(home, "wf") == {
        "a": [(1, "success")],
        **{task: [(1, "success"), (2, "success")] for task in "bcde"},
    }
    assert {task: ran(trace).count(task) for task in "abcde"} == {
        "a": 1,
        "b": 2,
        "c": 2,
        "d": 2,
        "e": 2,
    }
    d_start = span(home, "wf", "d", 2)[0]
    assert span(home, "wf", "b", 2)[1] <= d_start and span(home, "wf", "c", 2)[1] <= d_start
    assert span(home, "wf", "d", 2)[1] <= span(home, "wf", "e", 2)[0]


def test_a_second_clear_while_the_first_is_under_way_makes_no_second_new_try(
    home: Path, tmp_path: Path
) -> None:
    trace, gate = tmp_path / "trace", tmp_path / "gate"
    gate.touch()
    workflow = write(home, "wf", DIAMOND, trace=trace, gate=gate)
    assert run_cli(home, "run", str(workflow), "--headless", "--run-id", "r1").returncode == 0
    gate.unlink()  # b's next try runs until the gate opens again

    with scheduler(home):
        first = retry_json(home, "wf/b", "--downstream")
        assert first["cleared"] == [
            {"key": "wf/d/r1#1", "state": "success", "action": "new_try"},
            {"key": "wf/e/r1#1", "state": "success", "action": "new_try"},
        ]
        wait_until(
            lambda: (
                rows(
                    home, "SELECT state FROM task_instances WHERE task_id = 'b' AND try_number = 2"
                )
                == [("running",)]
            ),
            message="b's new try to run",
        )
        # d and e already have a new try, waiting: they wait for c's new try as well.
        second = retry_json(home, "wf/c", "--downstream")
        assert second["retried"] == ["wf/c/r1#1"]
        assert second["cleared"] == [
            {"key": "wf/d/r1#2", "state": "scheduled", "action": "wait"},
            {"key": "wf/e/r1#2", "state": "scheduled", "action": "wait"},
        ]
        wait_until(
            lambda: tries(home, "wf")["c"] == [(1, "success"), (2, "success")],
            message="c's new try to succeed",
        )
        assert tries(home, "wf")["d"] == [(1, "success"), (2, "scheduled")]  # b still runs
        gate.touch()
        wait_until(lambda: all_done(home, "wf"), message="the rest to run")

    assert tries(home, "wf") == {
        "a": [(1, "success")],
        **{task: [(1, "success"), (2, "success")] for task in "bcde"},
    }
    assert [ran(trace).count(task) for task in "abcde"] == [1, 2, 2, 2, 2]
    d_start = span(home, "wf", "d", 2)[0]
    assert span(home, "wf", "b", 2)[1] <= d_start and span(home, "wf", "c", 2)[1] <= d_start


def test_downstream_tasks_in_flight_are_killed_or_taken_back_and_wait_for_their_upstreams(
    home: Path, tmp_path: Path
) -> None:
    trace, gate, marker = tmp_path / "trace", tmp_path / "gate", uuid.uuid4().hex
    (home / "config.toml").write_text("[executor.local]\nprefetch = false\n")
    workflow = write(home, "busy", BUSY, trace=trace, gate=gate, marker=marker)
    run = start_cli(home, "run", str(workflow), "--headless", "--parallelism", "1")
    try:
        wait_until(
            lambda: (
                rows(
                    home,
                    "SELECT task_id, state FROM task_instances WHERE dag_id = 'busy' ORDER BY task_id",
                )
                == [("a", "success"), ("b", "running"), ("c", "queued"), ("d", "scheduled")]
            ),
            message="b running, c handed out behind it, d waiting for b",
        )
        run_id = rows(home, "SELECT run_id FROM dag_runs")[0][0]
        outcome = retry_json(home, "busy/a", "--downstream")
        assert outcome["status"] == "done", outcome
        assert outcome["retried"] == [f"busy/a/{run_id}#1"]
        assert outcome["cleared"] == [
            {"key": f"busy/b/{run_id}#1", "state": "running", "action": "kill"},
            {"key": f"busy/c/{run_id}#1", "state": "queued", "action": "wait"},
            {"key": f"busy/d/{run_id}#1", "state": "scheduled", "action": "wait"},
        ]
        # b's first try is killed (its whole tree), and its new try waits for a's.
        wait_until(
            lambda: tries(home, "busy")["b"] == [(1, "up_for_retry"), (2, "running")],
            message="b killed, and its new try running after a's",
        )
        gate.touch()
        _out, err = run.communicate(timeout=60)
        assert run.returncode == 0, err  # every task's latest try succeeded
    finally:
        gate.touch()  # whatever happened, b's tries end
        if run.poll() is None:
            run.kill()
    assert tries(home, "busy") == {
        "a": [(1, "success"), (2, "success")],
        "b": [(1, "up_for_retry"), (2, "success")],
        "c": [(1, "success")],  # never started before: the same try, run once, after a's new try
        "d": [(1, "success")],
    }
    assert sorted(ran(trace)) == ["a", "a", "b", "b", "c", "d"]
    assert rows(
        home, "SELECT reason FROM task_instances WHERE task_id = 'b' AND try_number = 1"
    ) == [("killed: cleared by operator (retry a with downstream)",)]
    a_ended = span(home, "busy", "a", 2)[1]
    assert span(home, "busy", "b", 1)[1] <= span(home, "busy", "b", 2)[0]  # never side by side
    assert a_ended <= span(home, "busy", "b", 2)[0]
    assert a_ended <= span(home, "busy", "c", 1)[0]
    assert span(home, "busy", "b", 2)[1] <= span(home, "busy", "d", 1)[0]
    taken_back = rows(
        home,
        "SELECT e.from_state, e.to_state, e.actor FROM events e JOIN task_instances t "
        "ON t.id = e.ti_id WHERE t.task_id = 'c' ORDER BY e.id",
    )
    assert ("queued", "scheduled", "operator") in taken_back
    wait_until(
        lambda: not processes_with_env_marker(f"retry-downstream-{marker}"),
        message="no process of b left",
    )


def test_without_the_flag_only_the_given_task_and_the_tasks_it_blocked_run_again(
    home: Path, tmp_path: Path
) -> None:
    trace, fixed = tmp_path / "trace", tmp_path / "fixed"
    workflow = write(home, "chain", CHAIN, trace=trace, fixed=fixed)
    assert run_cli(home, "run", str(workflow), "--headless", "--run-id", "r1").returncode == 1
    fixed.touch()

    outcome = retry_json(home, "chain/a")  # no engine: stored for the next one
    assert outcome == {
        "request": outcome["request"],
        "downstream": False,
        "status": "stored",
        "result": None,
        "retried": ["chain/a/r1#1"],
        "cleared": None,
    }
    assert run_cli(home, "scheduler", "--until-idle").returncode == 0
    # a ran again; b (failed) and c (upstream_failed) were left as they were.
    assert tries(home, "chain") == {
        "a": [(1, "success"), (2, "success")],
        "b": [(1, "failed")],
        "c": [(1, "upstream_failed")],
    }
    assert ran(trace) == ["a", "b", "a"]

    retried = run_cli(home, "tasks", "retry", "chain/b")
    assert retried.returncode == 0, retried.stderr
    assert run_cli(home, "scheduler", "--until-idle").returncode == 0
    # b's new try succeeded and released c's (same) try, which ran once.
    assert tries(home, "chain") == {
        "a": [(1, "success"), (2, "success")],
        "b": [(1, "failed"), (2, "success")],
        "c": [(1, "success")],
    }
    assert ran(trace) == ["a", "b", "a", "b", "c"]

    # Bad input is refused with one line, exit 2, and no request stored.
    requests = rows(home, "SELECT count(*) FROM requests")
    for args, message in [
        (["nope/x"], "no task instance matches nope/x"),
        (["chain/b#1"], "not its task's latest try"),
        (["chain/a", "chain/zzz"], "no task instance matches chain/zzz"),
        ([], "Missing argument 'keys'"),
    ]:
        result = run_cli(home, "tasks", "retry", *args, "--downstream", "--json")
        assert result.returncode == 2, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (args, lines)
        assert result.stdout == ""
    assert rows(home, "SELECT count(*) FROM requests") == requests
