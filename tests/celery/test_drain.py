"""Stopping an engine takes back the Celery tries no worker has claimed.

On Ctrl-C or SIGTERM a headless engine calls ``drain()``: tries handed out but
not started go back to the store, still scheduled, for the next engine; only
the tries that run are waited for. For the celery executor, "handed out but
not started" is a try waiting in Redis that no worker has claimed: it is
revoked there, so whichever worker reads its message later drops it.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.celery.conftest import DEADLINE, Cluster
from tests.celery.test_engine_celery import (
    Engines,
    assert_accounted_once,
    cli_env_for,
    drive,
    hold_until,
    idle,
    poll_rows,
    submit,
    trace_command,
    trace_lines,
)
from tests.helpers import start_cli, wait_until

pytestmark = pytest.mark.celery


def test_draining_gives_back_tries_waiting_in_redis_and_waits_only_for_the_running_one(
    private_cluster: Cluster, engines: Engines, tmp_path: Path
) -> None:
    cluster = private_cluster
    cluster.start_worker("single", "default", concurrency=1)
    trace = tmp_path / "trace"
    gate = tmp_path / "gate"
    waiting = ["w1", "w2", "w3"]
    engine = engines.build(cluster, parallelism=0)
    submit(
        engine,
        f"""
        id = "wf"
        [[task]]
        id = "first"
        priority = 9
        shell = true
        command = "{trace_command(trace, hold_until(gate))}"
        """
        + "".join(
            f"""
            [[task]]
            id = "{task}"
            shell = true
            command = "{trace_command(trace)}"
            """
            for task in waiting
        ),
    )
    store = engine.store

    def handed_out() -> bool:
        counts = store.count_by_state(dag_id="wf")
        return counts["running"] == 1 and counts["queued"] == len(waiting)

    # One pool process: the first try runs, the others wait in Redis.
    drive(engine, handed_out, "the first try to run and the rest to be sent")

    engine.drain()  # what a headless engine does on the first Ctrl-C

    assert {key.task_id for key in engine.in_flight} == {"first"}
    states = {r.task_id: str(r.state) for r in store.list_tasks(dag_id="wf")}
    assert states == {"first": "running", **{task: "scheduled" for task in waiting}}, states
    gate.touch()
    drive(engine, lambda: not engine.in_flight, "the running try to end")
    engine.shutdown("finish")
    assert trace_lines(trace) == ["first 1"]

    # The next engine hands the given-back tries out again; each runs once.
    successor = engines.build(cluster, parallelism=0)
    drive(successor, idle(successor), "the given-back tries to run")
    found = assert_accounted_once(engines.home, "wf", {"first", *waiting})
    assert {task: [t["state"] for t in tries] for task, tries in found.items()} == {
        task: ["success"] for task in ["first", *waiting]
    }
    assert sorted(trace_lines(trace)) == sorted(f"{task} 1" for task in ["first", *waiting])


def test_ctrl_c_on_a_headless_run_fails_no_try_that_waited_in_redis(
    private_cluster: Cluster, home: Path, tmp_path: Path
) -> None:
    """The operator's view: the banner counts the running try only, and no waiting try fails."""
    cluster = private_cluster
    cluster.start_worker("single", "default", concurrency=1)
    trace = tmp_path / "trace"
    gate = tmp_path / "gate"
    waiting = ["w1", "w2", "w3"]
    workflow = tmp_path / "wf.toml"
    workflow.write_text(
        f"""
id = "wf"
[[task]]
id = "first"
priority = 9
shell = true
command = "{trace_command(trace, hold_until(gate))}"
"""
        + "".join(
            f"""
[[task]]
id = "{task}"
shell = true
command = "{trace_command(trace)}"
"""
            for task in waiting
        )
    )
    env = cli_env_for(cluster, home, "celery")
    run = start_cli(home, "run", str(workflow), "--headless", "--parallelism", "0", env=env)
    try:

        def states() -> dict[str, str]:
            return dict(poll_rows(home, "SELECT task_id, state FROM task_instances"))

        wait_until(
            lambda: states() == {"first": "running", **{t: "queued" for t in waiting}},
            timeout=DEADLINE,
            message="the first try to run and the rest to wait in Redis",
        )
        run.send_signal(signal.SIGINT)
        wait_until(
            lambda: states() == {"first": "running", **{t: "scheduled" for t in waiting}},
            timeout=DEADLINE,
            message="the waiting tries to be given back",
        )
        gate.touch()
        _out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait(timeout=10)

    assert "for 1 running try to finish" in err, err
    assert "killing" not in err, err
    assert states() == {"first": "success", **{t: "scheduled" for t in waiting}}
    assert trace_lines(trace) == ["first 1"]
