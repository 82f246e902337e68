"""The whole product on Celery: the real engine and store, real Redis, real workers.

The executor-level tests beside this file drive a CeleryExecutor by hand. Here
the same events go through the engine (``Runtime(...).build_engine()``) or the
real CLI (``python -m console run|scheduler`` with ``EXECCONSOLE__CORE__EXECUTOR``
naming celery), so what is checked is what an operator sees: the store.

Every test counts side effects (each try appends ``<task> <try>`` to a trace
file) and checks that the store accounts for every task exactly once: its
tries numbered 1..n, every try but the last ``up_for_retry``, the last one
terminal, and nothing left scheduled, queued or running.

Tries that must still be running at a chosen moment wait for a release file
instead of sleeping, so no test depends on how fast anything is.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from console import actions
from console.engine import Engine
from console.runtime import Runtime
from console.workflow import parse_workflow
from tests.celery.conftest import DEADLINE, TEST_SETTINGS, Cluster
from tests.helpers import start_cli, wait_until

pytestmark = pytest.mark.celery

HOSTNAME = socket.gethostname()
TERMINAL = {"success", "failed", "upstream_failed"}


# ---- helpers shared with test_hybrid.py ---------------------------------------------


def clear_execconsole_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("EXECCONSOLE"):
            monkeypatch.delenv(key)


def cli_env_for(cluster: Cluster, home: Path, executor: str) -> dict[str, str]:
    """The CLI's environment: the cluster's Redis and test settings, a home, the executor list."""
    env = cluster.worker_env()  # no inherited EXECCONSOLE*, the marker, the broker URL
    env["EXECCONSOLE_HOME"] = str(home)
    env["EXECCONSOLE__CORE__EXECUTOR"] = executor
    return env


class Engines:
    """Builds engines through the product's construction path; shuts every one down after."""

    def __init__(self, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.home = home
        self.monkeypatch = monkeypatch
        self.built: list[Engine] = []

    def build(self, cluster: Cluster, executor: str = "celery", parallelism: int = 4) -> Engine:
        for name, value in cluster.worker_env().items():
            if name.startswith("EXECCONSOLE__"):
                self.monkeypatch.setenv(name, value)
        runtime = Runtime.load(home=self.home, executor=executor, parallelism=parallelism)
        engine = runtime.build_engine()
        engine.start()
        self.built.append(engine)
        return engine

    def close(self) -> None:
        for engine in self.built:
            with contextlib.suppress(Exception):
                if engine._started:
                    engine.shutdown("kill", timeout=5)
            engine.store.close()


def make_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private EXECCONSOLE_HOME, with no EXECCONSOLE* setting inherited from outside."""
    clear_execconsole_env(monkeypatch)
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("EXECCONSOLE_HOME", str(path))
    return path


def submit(engine: Engine, toml: str) -> str:
    spec = parse_workflow(textwrap.dedent(toml), known_executors=list(engine.executors))
    run_id, _keys = actions.submit_workflow(
        engine.store, spec, default_executor=next(iter(engine.executors))
    )
    return run_id


def drive(
    engine: Engine,
    until: Callable[[], object],
    what: str,
    timeout: float = DEADLINE * 2,
    check: Callable[[Engine], None] | None = None,
) -> None:
    """Iterate the engine until ``until()`` holds (bounded); ``check`` runs after each pass."""
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"gave up waiting for {what} after {timeout}s:\n{engine.debug_dump()}"
            )
        engine.iterate()
        if check is not None:
            check(engine)


def drive_for(engine: Engine, seconds: float) -> None:
    """Keep the engine going for a while (to let an outage last), asserting nothing about time."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        engine.iterate()


def idle(engine: Engine) -> Callable[[], bool]:
    return lambda: not engine.in_flight and engine.store.unfinished_count() == 0


def rows(home: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(home / "execconsole.db", timeout=30)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def poll_rows(home: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """``rows`` for waiting on a store another process may not have created yet."""
    if not (home / "execconsole.db").exists():
        return []  # connecting would create an empty file under the CLI's feet
    try:
        return rows(home, sql, params)
    except sqlite3.OperationalError:  # created, not yet migrated
        return []


def tries_by_task(home: Path, dag: str) -> dict[str, list[dict[str, Any]]]:
    """Every try of every task of ``dag``, in try order."""
    columns = (
        "task_id",
        "try_number",
        "state",
        "executor",
        "queue",
        "hostname",
        "worker",
        "token",
        "reason",
        "pid",
    )
    found: dict[str, list[dict[str, Any]]] = {}
    for row in rows(
        home,
        f"SELECT {', '.join(columns)} FROM task_instances WHERE dag_id = ? ORDER BY task_id, try_number",
        (dag,),
    ):
        item = dict(zip(columns, row, strict=True))
        found.setdefault(item["task_id"], []).append(item)
    return found


def assert_accounted_once(home: Path, dag: str, tasks: set[str]) -> dict[str, list[dict]]:
    """The store accounts for every task exactly once: tries 1..n, only the last one terminal."""
    found = tries_by_task(home, dag)
    assert set(found) == tasks
    for task, tries in found.items():
        assert [t["try_number"] for t in tries] == list(range(1, len(tries) + 1)), (task, tries)
        assert [t["state"] for t in tries[:-1]] == ["up_for_retry"] * (len(tries) - 1), tries
        assert tries[-1]["state"] in TERMINAL, (task, tries)
    assert rows(
        home,
        "SELECT count(*) FROM task_instances WHERE state IN ('scheduled','queued','running')",
    ) == [(0,)]
    return found


def trace_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def trace_command(trace: Path, then: str = "") -> str:
    """A shell command that records ``<task> <try>`` as its side effect, then does ``then``."""
    record = f"echo $EXECCONSOLE_TASK_ID $EXECCONSOLE_TRY_NUMBER >> {trace}"
    return f"{record}; {then}" if then else record


def hold_until(release: Path) -> str:
    return f"while [ ! -e {release} ]; do sleep 0.05; done"


def kill_tree(pid: int) -> None:
    with contextlib.suppress(psutil.Error):
        process = psutil.Process(pid)
        for member in [*process.children(recursive=True), process]:
            with contextlib.suppress(psutil.Error):
                member.kill()


# ---- the tests ---------------------------------------------------------------------------


def test_a_workflow_with_dependencies_and_a_flaky_task_runs_to_the_end_on_celery(
    cluster: Cluster, engines: Engines, tmp_path: Path
) -> None:
    trace = tmp_path / "trace"
    engine = engines.build(cluster)
    submit(
        engine,
        f"""
        id = "wf"
        [[task]]
        id = "extract"
        shell = true
        command = "{trace_command(trace)}"
        [[task]]
        id = "transform"
        upstream = ["extract"]
        shell = true
        command = "{trace_command(trace)}"
        [[task]]
        id = "flaky"
        upstream = ["extract"]
        retries = 2
        shell = true
        command = "{trace_command(trace, "test $EXECCONSOLE_TRY_NUMBER -ge 2")}"
        [[task]]
        id = "load"
        upstream = ["transform", "flaky"]
        shell = true
        command = "{trace_command(trace)}"
        """,
    )
    drive(engine, idle(engine), "the workflow to finish")

    found = assert_accounted_once(engines.home, "wf", {"extract", "transform", "flaky", "load"})
    assert {task: [t["state"] for t in tries] for task, tries in found.items()} == {
        "extract": ["success"],
        "transform": ["success"],
        "flaky": ["up_for_retry", "success"],
        "load": ["success"],
    }
    assert found["flaky"][0]["reason"] == "exited with code 1"
    # Each try ran once, in dependency order, on the Celery worker.
    ran = trace_lines(trace)
    assert sorted(ran) == sorted(["extract 1", "transform 1", "flaky 1", "flaky 2", "load 1"]), ran
    assert ran[0] == "extract 1" and ran[-1] == "load 1"
    assert ran.index("flaky 1") < ran.index("flaky 2")
    for tries in found.values():
        for attempt in tries:
            assert attempt["executor"] == "celery"
            assert (attempt["worker"], attempt["hostname"]) == ("alpha@test", HOSTNAME)
    # The audit log shows the whole path of the retried try, recorded by the engine.
    history = [
        (from_state, to_state)
        for from_state, to_state in rows(
            engines.home,
            "SELECT e.from_state, e.to_state FROM events e JOIN task_instances t ON t.id = e.ti_id "
            "WHERE t.task_id = 'flaky' AND t.try_number = 1 ORDER BY e.id",
        )
    ]
    assert history == [
        (None, "scheduled"),
        ("scheduled", "queued"),
        ("queued", "running"),
        ("running", "up_for_retry"),
    ]


def test_tasks_run_on_the_worker_consuming_the_queue_they_name(
    cluster: Cluster, engines: Engines, tmp_path: Path
) -> None:
    trace = tmp_path / "trace"
    engine = engines.build(cluster)
    tasks = {"a1": "alpha", "a2": "alpha", "b1": "beta", "b2": "beta", "d1": "default"}
    submit(
        engine,
        'id = "routed"\n'
        + "".join(
            f"""
            [[task]]
            id = "{task}"
            queue = "{queue}"
            shell = true
            command = "{trace_command(trace)}"
            """
            for task, queue in tasks.items()
        ),
    )
    drive(engine, idle(engine), "the routed tasks to finish")

    found = assert_accounted_once(engines.home, "routed", set(tasks))
    consumer = {"alpha": "alpha@test", "beta": "beta@test", "default": "alpha@test"}
    for task, queue in tasks.items():
        (attempt,) = found[task]
        assert attempt["state"] == "success"
        assert attempt["queue"] == queue
        assert attempt["worker"] == consumer[queue], (task, attempt)
    assert sorted(trace_lines(trace)) == sorted(f"{task} 1" for task in tasks)


def test_a_worker_killed_mid_task_fails_the_try_into_its_retry_policy_and_loses_nothing(
    private_cluster: Cluster, engines: Engines, tmp_path: Path
) -> None:
    cluster = private_cluster
    doomed = cluster.start_worker("doomed", "default", concurrency=1)
    trace = tmp_path / "trace"
    engine = engines.build(cluster, parallelism=4)
    quick = [f"q{n}" for n in range(5)]
    submit(
        engine,
        f"""
        id = "loss"
        [[task]]
        id = "slow"
        priority = 9
        retries = 1
        shell = true
        command = "{trace_command(trace, "[ $EXECCONSOLE_TRY_NUMBER -ge 2 ] || sleep 300")}"
        """
        + "".join(
            f"""
            [[task]]
            id = "{task}"
            shell = true
            command = "{trace_command(trace)}"
            """
            for task in quick
        ),
    )
    store = engine.store

    def slow_running() -> bool:
        record = next(r for r in store.list_tasks(dag_id="loss") if r.task_id == "slow")
        return str(record.state) == "running" and record.pid is not None

    # The worker has one pool process: the slow try holds it, the rest wait in Redis.
    drive(engine, slow_running, "the slow try to run on the doomed worker")
    slow = next(r for r in store.list_tasks(dag_id="loss") if r.task_id == "slow")
    assert slow.worker == "doomed@test"
    # The machine dies: the worker, its pool, and the try's own process tree.
    # (The worker first: were the try killed first, its worker would report that.)
    assert slow.pid is not None
    doomed.kill_hard()
    kill_tree(slow.pid)
    heir = cluster.start_worker("heir", "default", concurrency=2)

    drive(engine, idle(engine), "every try to end after the worker died")

    found = assert_accounted_once(engines.home, "loss", {"slow", *quick})
    first, second = found["slow"]
    assert first["state"] == "up_for_retry" and first["worker"] == "doomed@test"
    assert (first["reason"] or "").startswith("worker lost"), first["reason"]
    assert second["state"] == "success" and second["worker"] == "heir@test"
    assert first["token"] != second["token"]
    for task in quick:
        assert [t["state"] for t in found[task]] == ["success"], found[task]
    # Nothing lost, nothing twice: each try's side effect exactly once.
    expected = ["slow 1", "slow 2", *(f"{task} 1" for task in quick)]
    assert sorted(trace_lines(trace)) == sorted(expected)
    # The dead worker's unacknowledged message comes back to the heir, which
    # finds the try claimed by a worker that is gone and records it as lost
    # instead of running it (the trace above stays as it is).
    wait_until(lambda: "TryLost" in heir.log(), timeout=DEADLINE, message="the redelivery")
    assert sorted(trace_lines(trace)) == sorted(expected)


def test_a_redis_outage_mid_run_loses_nothing_and_runs_nothing_twice(
    private_cluster: Cluster, engines: Engines, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = private_cluster
    # Tries that end during the outage store their result when Redis is back,
    # after up to 2 s of Celery's retry back-off; meanwhile their lease is
    # gone. A lease longer than that back-off (15 s by default) keeps the
    # executor from calling them lost first.
    monkeypatch.setitem(TEST_SETTINGS, "lease_seconds", 5.0)
    cluster.start_worker("steady", "default", concurrency=2)
    trace = tmp_path / "trace"
    engine = engines.build(cluster, parallelism=0)
    wide = [f"w{n}" for n in range(8)]
    submit(
        engine,
        'id = "outage"\n'
        + "".join(
            f"""
            [[task]]
            id = "{task}"
            shell = true
            command = "{trace_command(trace, "sleep 1")}"
            """
            for task in wide
        )
        + f"""
        [[task]]
        id = "after"
        upstream = {wide!r}
        shell = true
        command = "{trace_command(trace)}"
        """.replace("'", '"'),
    )
    store = engine.store
    drive(
        engine,
        lambda: store.count_by_state(dag_id="outage")["running"] == 2,
        "two tries to run before the outage",
    )

    cluster.redis.stop(keep_data=False)  # the harder case: Redis comes back empty
    drive(
        engine,
        lambda: engine.gauges()["executor.celery.broker_ok"] == 0,
        "the executor to notice that Redis is gone",
    )
    drive_for(engine, 3.0)  # the engine goes on ticking with the broker down
    counts = store.count_by_state(dag_id="outage")
    assert counts["failed"] == 0 and counts["up_for_retry"] == 0, counts
    cluster.redis.start()

    drive(engine, idle(engine), "every try to finish after Redis came back", timeout=120)

    assert engine.gauges()["executor.celery.broker_ok"] == 1
    found = assert_accounted_once(engines.home, "outage", {*wide, "after"})
    # One try each: the outage failed none of them into a retry.
    assert {task: [t["state"] for t in tries] for task, tries in found.items()} == {
        task: ["success"] for task in [*wide, "after"]
    }
    assert sorted(trace_lines(trace)) == sorted(f"{task} 1" for task in [*wide, "after"])


def test_a_restarted_scheduler_adopts_running_celery_tries_by_task_id(
    cluster: Cluster, home: Path, tmp_path: Path
) -> None:
    trace = tmp_path / "trace"
    release = tmp_path / "release"
    holders = [f"h{n}" for n in range(6)]
    workflow = tmp_path / "restart.toml"
    workflow.write_text(
        'id = "restart"\n'
        + "".join(
            f"""
[[task]]
id = "{task}"
shell = true
command = "{trace_command(trace, hold_until(release) + "; echo $EXECCONSOLE_TASK_ID done >> " + str(trace))}"
"""
            for task in holders
        )
        + f"""
[[task]]
id = "after"
upstream = {holders!r}
shell = true
command = "{trace_command(trace)}"
""".replace("'", '"')
    )
    env = cli_env_for(cluster, home, "celery")
    first = start_cli(home, "run", str(workflow), "--headless", "--parallelism", "4", env=env)
    second: subprocess.Popen[str] | None = None
    try:
        # alpha has two pool processes: two tries run, two wait in Redis.
        wait_until(
            lambda: (
                poll_rows(home, "SELECT count(*) FROM task_instances WHERE state = 'running'")
                == [(2,)]
            ),
            timeout=DEADLINE,
            message="two tries running",
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        running = dict(
            rows(home, "SELECT task_id, token FROM task_instances WHERE state = 'running'")
        )
        assert len(running) == 2, running

        second = start_cli(home, "scheduler", "--until-idle", env=env)

        def adopted() -> bool:
            notes = rows(
                home,
                "SELECT t.task_id FROM events e JOIN task_instances t ON t.id = e.ti_id "
                "WHERE e.actor = 'engine:recovery' AND e.reason = 'adopted after engine restart'",
            )
            return {task for (task,) in notes} == set(running)

        wait_until(adopted, timeout=DEADLINE, message="the new scheduler to adopt both tries")
        release.touch()
        _out, err = second.communicate(timeout=120)
        assert second.returncode == 0, err
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

    found = assert_accounted_once(home, "restart", {*holders, "after"})
    # No extra try: adopted tries kept their Celery task id and finished once;
    # those that had not started were handed out again under the same try number.
    for task, tries in found.items():
        assert [t["state"] for t in tries] == ["success"], (task, tries)
    for task, token in running.items():
        assert found[task][0]["token"] == token
    ran = trace_lines(trace)
    expected = [*(f"{task} 1" for task in holders), *(f"{task} done" for task in holders)]
    assert sorted(ran) == sorted([*expected, "after 1"]), ran
    # The recovery is in the audit log, and the new engine recorded the end.
    for task in running:
        (actor,) = rows(
            home,
            "SELECT e.actor FROM events e JOIN task_instances t ON t.id = e.ti_id "
            "WHERE t.task_id = ? AND e.to_state = 'success'",
            (task,),
        )[0]
        assert actor == "executor:celery"
