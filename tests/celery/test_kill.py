"""Killing tries: a running try's whole process tree dies; a queued one never starts."""

from __future__ import annotations

import psutil
import pytest

from executors.state import TaskState
from tests.celery.conftest import Cluster, Driver, lines, wait_for

pytestmark = pytest.mark.celery


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_killing_a_running_try_stops_its_whole_process_tree(cluster: Cluster) -> None:
    executor = cluster.executor()
    # A shell with a background grandchild: both live in the try's own session.
    workload = cluster.workload("sleep 60 & sleep 60; echo never")
    driver = Driver(executor)
    executor.queue_workload(workload)
    driver.until_started(workload.key)
    leader = driver.started[workload.key]
    assert leader is not None and leader.pid is not None
    wait_for(lambda: len(psutil.Process(leader.pid).children()) == 2, "both sleeps to start")
    tree = [leader.pid, *(child.pid for child in psutil.Process(leader.pid).children())]

    assert executor.kill(workload.key)
    driver.until_finished(workload.key)

    assert driver.state(workload.key) is TaskState.FAILED
    assert (driver.report(workload.key).reason or "").startswith("killed on request")
    wait_for(lambda: all(_gone(pid) for pid in tree), "every process of the try to exit")
    assert "never" not in executor.get_task_log(workload.key, workload.log_path).text


def test_killing_a_try_that_waits_in_the_queue_means_it_never_starts(cluster: Cluster) -> None:
    executor = cluster.executor()
    side_effects = cluster.root / "queued-kill.txt"
    # Fill both of alpha's pool processes, so the third try waits in Redis.
    # The blockers wait on a gate, not a timer: under load a timed blocker could
    # finish before the kill and let the waiting try start.
    gate = cluster.root / "queued-kill.gate"
    blockers = [
        cluster.workload(f"while [ ! -e {gate} ]; do sleep 0.05; done", queue="alpha")
        for _ in range(2)
    ]
    waiting = cluster.workload(f"echo ran >> {side_effects}", queue="alpha")
    driver = Driver(executor)
    for workload in (*blockers, waiting):
        executor.queue_workload(workload)
    driver.until_started(*(b.key for b in blockers))

    assert executor.kill(waiting.key)
    driver.beat()
    assert driver.state(waiting.key) is TaskState.FAILED
    assert driver.report(waiting.key).reason == "killed on request before it started"
    gate.touch()

    # Once the blockers are done the worker takes the killed try's message,
    # finds it revoked, and drops it; a try sent after it does run.
    after = cluster.workload("true", queue="alpha")
    executor.queue_workload(after)
    driver.until_finished(*(b.key for b in blockers), after.key)
    assert lines(side_effects) == []
    assert driver.state(after.key) is TaskState.SUCCESS


def test_killing_an_unknown_key_says_no(cluster: Cluster) -> None:
    executor = cluster.executor()
    assert executor.kill(cluster.workload("true").key) is False
