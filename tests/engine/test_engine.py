"""The engine with the real LocalExecutor and a real store: scheduling, retries, requests."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import psutil
import pytest

from console import actions
from console.workflow import parse_workflow
from executors.state import TaskState
from store import StoreOwned
from tests.engine.conftest import drive, idle, open_store


def submit(engine, toml: str) -> str:  # type: ignore[no-untyped-def]
    spec = parse_workflow(textwrap.dedent(toml), known_executors=list(engine.executors))
    run_id, _keys = actions.submit_workflow(engine.store, spec, default_executor="local")
    return run_id


def states(engine, dag: str = "wf") -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Latest try's state per task id."""
    latest: dict[str, tuple[int, str]] = {}
    for record in engine.store.list_tasks(dag_id=dag):
        if record.task_id not in latest or record.try_number > latest[record.task_id][0]:
            latest[record.task_id] = (record.try_number, str(record.state))
    return {task: state for task, (_try, state) in latest.items()}


def test_tasks_run_after_their_upstreams_and_all_succeed(make_engine, tmp_path: Path) -> None:
    engine = make_engine(parallelism=2)
    trace = tmp_path / "trace"
    submit(
        engine,
        f"""
        id = "wf"
        [[task]]
        id = "a"
        command = ["sh", "-c", "echo a >> {trace}"]
        [[task]]
        id = "b"
        upstream = ["a"]
        command = ["sh", "-c", "echo b >> {trace}"]
        [[task]]
        id = "c"
        upstream = ["a"]
        command = ["sh", "-c", "echo c >> {trace}"]
        [[task]]
        id = "d"
        upstream = ["b", "c"]
        command = ["sh", "-c", "echo d >> {trace}"]
        """,
    )
    drive(engine, idle(engine))
    order = trace.read_text().split()
    assert order[0] == "a" and order[-1] == "d" and sorted(order[1:3]) == ["b", "c"]
    assert states(engine) == {"a": "success", "b": "success", "c": "success", "d": "success"}


def test_a_failed_try_is_retried_as_a_new_try_and_the_audit_log_shows_each_step(
    make_engine,
) -> None:
    engine = make_engine()
    submit(
        engine,
        """
        id = "wf"
        [[task]]
        id = "flaky"
        retries = 2
        shell = true
        command = "test $EXECCONSOLE_TRY_NUMBER -ge 2"
        """,
    )
    drive(engine, idle(engine))
    tries = engine.store.list_tasks(dag_id="wf")
    assert [(t.try_number, str(t.state)) for t in tries] == [(1, "up_for_retry"), (2, "success")]
    assert tries[0].exit_code == 1 and tries[0].reason == "exited with code 1"
    history = [(e.from_state, e.to_state) for e in reversed(engine.store.events(ti_id=tries[0].id))]
    assert history == [
        (None, "scheduled"),
        ("scheduled", "queued"),
        ("queued", "running"),
        ("running", "up_for_retry"),
    ]


def test_a_final_failure_marks_everything_downstream_upstream_failed(make_engine) -> None:
    engine = make_engine()
    submit(
        engine,
        """
        id = "wf"
        [[task]]
        id = "broken"
        command = ["false"]
        [[task]]
        id = "child"
        upstream = ["broken"]
        command = ["true"]
        [[task]]
        id = "grandchild"
        upstream = ["child"]
        command = ["true"]
        [[task]]
        id = "independent"
        command = ["true"]
        """,
    )
    drive(engine, idle(engine))
    assert states(engine) == {
        "broken": "failed",
        "child": "upstream_failed",
        "grandchild": "upstream_failed",
        "independent": "success",
    }


def test_higher_priority_tasks_start_first(make_engine, tmp_path: Path) -> None:
    engine = make_engine(parallelism=1)
    trace = tmp_path / "order"
    tasks = "".join(
        f"""
        [[task]]
        id = "p{priority}"
        priority = {priority}
        command = ["sh", "-c", "echo p{priority} >> {trace}"]
        """
        for priority in (1, 5, 3, 9, 2)
    )
    submit(engine, 'id = "wf"\n' + tasks)
    drive(engine, idle(engine))
    assert trace.read_text().split() == ["p9", "p5", "p3", "p2", "p1"]


def test_kill_request_stops_the_process_tree_and_does_not_retry(
    make_engine, tmp_path: Path
) -> None:
    engine = make_engine()
    pidfile = tmp_path / "child.pid"
    submit(
        engine,
        f"""
        id = "wf"
        [[task]]
        id = "long"
        retries = 3
        shell = true
        command = "sleep 300 & echo $! > {pidfile}; wait"
        """,
    )
    drive(engine, lambda: pidfile.exists() and pidfile.read_text().strip())
    grandchild = int(pidfile.read_text())
    actions.kill(engine.store, ["wf/long"])
    drive(engine, idle(engine))
    (only,) = engine.store.list_tasks(dag_id="wf")
    assert only.state == TaskState.FAILED
    assert only.reason == "killed by operator"
    assert (
        not psutil.pid_exists(grandchild)
        or psutil.Process(grandchild).status() == psutil.STATUS_ZOMBIE
    )


def test_marking_a_failed_task_success_lets_its_downstream_run(make_engine) -> None:
    engine = make_engine()
    submit(
        engine,
        """
        id = "wf"
        [[task]]
        id = "broken"
        command = ["false"]
        [[task]]
        id = "after"
        upstream = ["broken"]
        command = ["true"]
        """,
    )
    drive(engine, idle(engine))
    assert states(engine)["after"] == "upstream_failed"
    actions.mark(engine.store, ["wf/broken"], "success")
    drive(engine, lambda: states(engine)["after"] == "success")
    assert states(engine)["broken"] == "success"


def test_retry_request_runs_a_failed_task_again_and_revives_its_downstream(
    make_engine, tmp_path: Path
) -> None:
    engine = make_engine()
    gate = tmp_path / "gate"
    submit(
        engine,
        f"""
        id = "wf"
        [[task]]
        id = "needs_gate"
        command = ["test", "-e", "{gate}"]
        [[task]]
        id = "after"
        upstream = ["needs_gate"]
        command = ["true"]
        """,
    )
    drive(engine, idle(engine))
    assert states(engine) == {"needs_gate": "failed", "after": "upstream_failed"}
    gate.touch()
    actions.retry(engine.store, ["wf/needs_gate"])
    drive(engine, lambda: states(engine) == {"needs_gate": "success", "after": "success"})
    assert [
        t.try_number for t in engine.store.list_tasks(dag_id="wf") if t.task_id == "needs_gate"
    ] == [1, 2]


def test_pause_stops_new_dispatch_and_resume_restarts_it(make_engine) -> None:
    engine = make_engine()
    actions.pause(engine.store)
    drive(engine, lambda: engine.paused)
    submit(engine, 'id = "wf"\n[[task]]\nid = "t"\ncommand = ["true"]\n')
    for _ in range(50):
        engine.iterate()
    assert states(engine) == {"t": "scheduled"}
    assert engine.store.get_setting("paused") is True
    actions.resume(engine.store)
    drive(engine, idle(engine))
    assert states(engine) == {"t": "success"}


def test_pause_takes_back_tries_waiting_at_the_workers_too(make_engine, tmp_path: Path) -> None:
    engine = make_engine(parallelism=1)
    warm_up = "\n".join(f'[[task]]\nid = "warm{i}"\ncommand = ["true"]' for i in range(10))
    submit(engine, f'id = "warm"\n{warm_up}\n')
    drive(engine, idle(engine))
    executor = engine.default_executor
    # Short tries: once the warm-up burst has aged out of the rate, one waits at the worker.
    drive(engine, lambda: executor.prefetch_depth() == 1)

    release = tmp_path / "release"
    marker = tmp_path / "ran"
    submit(
        engine,
        f"""
        id = "wf"
        [[task]]
        id = "blocker"
        priority = 10
        command = ["sh", "-c", "while [ ! -e {release} ]; do sleep 0.05; done"]
        [[task]]
        id = "waiting"
        command = ["touch", "{marker}"]
        """,
    )
    drive(engine, lambda: states(engine).get("blocker") == "running" and executor.prefetched())
    assert [str(key) for key in executor.prefetched()] == [
        str(engine.store.resolve("wf/waiting").key)
    ]

    actions.pause(engine.store)
    drive(engine, lambda: engine.paused)
    assert executor.prefetched() == []
    release.touch()
    drive(engine, lambda: states(engine)["blocker"] == "success")
    for _ in range(50):
        engine.iterate()
    assert states(engine)["waiting"] == "scheduled" and not marker.exists()

    actions.resume(engine.store)
    drive(engine, idle(engine))
    assert states(engine)["waiting"] == "success" and marker.exists()
    [waiting] = [t for t in engine.store.list_tasks(dag_id="wf") if t.task_id == "waiting"]
    assert waiting.try_number == 1  # taken back before it started: the same try, run once


def test_parallelism_request_changes_the_live_executor(make_engine) -> None:
    engine = make_engine(parallelism=2)
    requested = actions.set_parallelism(engine.store, 5)
    drive(engine, lambda: engine.store.get_request(requested.request_id).status != "pending")
    assert engine.default_executor.parallelism == 5
    assert engine.store.get_setting("parallelism.local") == 5


def test_a_try_that_waits_in_queued_too_long_is_handed_out_again_then_failed(
    make_engine, tmp_path: Path
) -> None:
    engine = make_engine(parallelism=1, queued_timeout=0.3, queued_retry_limit=2)
    submit(
        engine,
        """
        id = "wf"
        [[task]]
        id = "hog"
        priority = 10
        command = ["sleep", "300"]
        [[task]]
        id = "starved"
        command = ["true"]
        """,
    )
    drive(engine, lambda: states(engine)["starved"] == "failed")
    starved = engine.store.resolve("wf/starved")
    assert starved.requeues == 2 and "stuck in queued" in (starved.reason or "")
    actions.kill(engine.store, ["wf/hog"])
    drive(engine, idle(engine))


def test_a_second_engine_on_the_same_store_is_refused_with_the_owner_named(
    make_engine, home: Path
) -> None:
    make_engine()
    from console.runtime import Runtime

    second = Runtime.load(home=home).build_engine()
    # Same process: pretend to be another pid by checking the message of a
    # fresh store's lease check after rewriting the owner.
    second.store.conn.execute("UPDATE lease SET pid = 1")  # pid 1 is alive and is not us
    with pytest.raises(StoreOwned, match="owned by the engine with pid 1"):
        second.store.acquire_lease()
    second.store.close()


def test_every_transition_is_in_the_audit_log(make_engine) -> None:
    engine = make_engine()
    submit(engine, 'id = "wf"\n[[task]]\nid = "t"\ncommand = ["true"]\n')
    drive(engine, idle(engine))
    store = open_store(engine.store.path.parent)
    (record,) = store.list_tasks(dag_id="wf")
    assert [e.to_state for e in reversed(store.events(ti_id=record.id))] == [
        "scheduled",
        "queued",
        "running",
        "success",
    ]
    assert record.pid and record.start_date and record.end_date and record.duration is not None
    assert json.loads(json.dumps(record.to_json()))["key"] == str(record.key)
    store.close()


def test_detaching_leaves_tries_running_and_the_next_engine_adopts_their_outcome(
    make_engine, tmp_path: Path
) -> None:
    first = make_engine()
    gate = tmp_path / "gate"
    submit(
        first,
        f"""
        id = "wf"
        [[task]]
        id = "outlives"
        retries = 2
        shell = true
        command = "while [ ! -e {gate} ]; do sleep 0.05; done; echo ran >> {tmp_path}/ran; exit 3"
        """,
    )
    drive(first, lambda: states(first) == {"outlives": "running"})
    pid = first.store.resolve("wf/outlives").pid
    first.shutdown("detach")
    assert psutil.pid_exists(pid), "detach must not stop the running try"
    gate.touch()  # let it finish while no engine watches

    second = make_engine()
    assert "recovered 1 try left in flight by a previous engine" in second.messages
    drive(second, idle(second))
    tries = second.store.list_tasks(dag_id="wf")
    # Adopted, not re-run: its real exit status is recorded, then the retry policy applies.
    assert tries[0].exit_code == 3 and tries[0].state == TaskState.UP_FOR_RETRY
    assert (tmp_path / "ran").read_text().count("ran") == len(tries)


def test_a_worker_killed_mid_task_fails_the_try_which_is_retried_and_the_pool_refills(
    make_engine, tmp_path: Path
) -> None:
    engine = make_engine(parallelism=2)
    trace = tmp_path / "trace"
    tasks = "".join(
        f"""
        [[task]]
        id = "t{n}"
        retries = 1
        shell = true
        command = "echo $EXECCONSOLE_TASK_ID $EXECCONSOLE_TRY_NUMBER >> {trace}; sleep {3 if n == 0 else 0.2}"
        """
        for n in range(6)
    )
    submit(engine, 'id = "wf"\n' + tasks)
    drive(engine, lambda: engine.store.resolve("wf/t0").state == TaskState.RUNNING)
    worker_name = engine.store.resolve("wf/t0").worker or ""
    worker_pid = int(worker_name.rsplit(":", 1)[1])
    psutil.Process(worker_pid).kill()
    drive(engine, idle(engine))

    first, second = engine.store.tries(engine.store.resolve("wf/t0"))
    assert first.state == TaskState.UP_FOR_RETRY and "died" in (first.reason or "")
    assert second.state == TaskState.SUCCESS
    assert states(engine) == {f"t{n}": "success" for n in range(6)}
    # Each try ran once; the killed worker's try ran once and its retry once.
    lines = trace.read_text().split("\n")
    assert sorted(filter(None, lines)) == sorted({line for line in lines if line})
    # A new worker took the dead one's place.
    alive = [w for w in engine.default_executor.worker_processes() if w.alive]
    assert worker_pid not in [w.pid for w in alive] and len(alive) >= 1


# A regular store tick an hour away: whatever these tests see happen comes from
# the ticks the engine asks for itself. Should one be missing, the engine waits
# out the hour and the test's own timeout fails it.
NO_REGULAR_TICK = 3600.0


@pytest.mark.timeout(120)
def test_each_link_of_a_chain_starts_without_waiting_for_a_regular_tick(make_engine) -> None:
    engine = make_engine(parallelism=2, tick_interval=NO_REGULAR_TICK)
    submit(
        engine,
        """
        id = "wf"
        [[task]]
        id = "a"
        command = ["true"]
        [[task]]
        id = "b"
        upstream = ["a"]
        command = ["true"]
        [[task]]
        id = "c"
        upstream = ["b"]
        command = ["true"]
        """,
    )
    drive(engine, idle(engine))
    assert states(engine) == {"a": "success", "b": "success", "c": "success"}


@pytest.mark.timeout(120)
def test_a_retry_without_delay_starts_without_waiting_for_a_regular_tick(make_engine) -> None:
    engine = make_engine(tick_interval=NO_REGULAR_TICK)
    submit(
        engine,
        """
        id = "wf"
        [[task]]
        id = "flaky"
        retries = 1
        shell = true
        command = "test $EXECCONSOLE_TRY_NUMBER -ge 2"
        """,
    )
    drive(engine, idle(engine))
    tries = engine.store.list_tasks(dag_id="wf")
    assert [(t.try_number, str(t.state)) for t in tries] == [(1, "up_for_retry"), (2, "success")]


@pytest.mark.timeout(120)
def test_the_host_sees_a_run_end_without_waiting_out_a_tick(home: Path) -> None:
    from console.headless import host_engine
    from console.runtime import Runtime

    runtime = Runtime.load(home=home, executor="local", parallelism=2)
    engine = runtime.build_engine()
    engine.tick_interval = NO_REGULAR_TICK
    submit(
        engine,
        """
        id = "wf"
        [[task]]
        id = "only"
        command = ["true"]
        """,
    )
    try:
        host_engine(
            runtime,
            until=lambda e: not e.in_flight and e.store.unfinished_count() == 0,
            engine=engine,
        )
        assert states(engine) == {"only": "success"}
    finally:
        engine.store.close()


def test_a_try_that_ends_keeps_no_earlier_note_as_its_reason(make_engine) -> None:
    engine = make_engine(parallelism=2)
    submit(
        engine,
        """
        id = "wf"
        [[task]]
        id = "ok"
        command = ["true"]
        [[task]]
        id = "bad"
        command = ["false"]
        """,
    )
    # As recovery leaves it on a try it hands out again after an engine restart.
    engine.store.conn.execute(
        "UPDATE task_instances SET reason = 'never started before the engine stopped; handed out again'"
    )
    drive(engine, idle(engine))
    reasons = dict(engine.store.conn.execute("SELECT task_id, reason FROM task_instances"))
    assert reasons["ok"] is None
    assert reasons["bad"] is not None and "handed out again" not in reasons["bad"]
