"""A worker killed under a running try: the try fails into its retry policy and never runs again."""

from __future__ import annotations

import os
import signal

import psutil
import pytest

from executors.celery.task_meta import read_meta
from executors.state import TaskState
from tests.celery.conftest import TEST_SETTINGS, Cluster, Driver, lines, wait_for

pytestmark = pytest.mark.celery


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_pool_process_killed_mid_try_fails_the_try_and_stops_its_process(
    private_cluster: Cluster,
) -> None:
    cluster = private_cluster
    worker = cluster.start_worker("victim", "default", concurrency=1)
    executor = cluster.executor()
    runs = cluster.root / "runs.txt"
    workload = cluster.workload(f"echo ran >> {runs}; sleep 60")
    driver = Driver(executor)
    executor.queue_workload(workload)
    driver.until_started(workload.key)
    task_pid = driver.started[workload.key].pid  # type: ignore[union-attr]
    assert task_pid is not None
    pool_process = psutil.Process(task_pid).parent()
    assert pool_process is not None and pool_process.pid in worker.pool_pids()

    os.kill(pool_process.pid, signal.SIGKILL)
    driver.until_finished(workload.key)

    assert driver.state(workload.key) is TaskState.FAILED
    # Celery's WorkerLostError or the expired lease, whichever is seen first.
    assert "lost" in (driver.report(workload.key).reason or "")
    # The worker's main process stops the try it can no longer supervise.
    wait_for(lambda: _gone(task_pid), "the orphaned try to be stopped")
    client = cluster.redis.client()
    token = workload.token.encode()

    def unacknowledged() -> list[bytes]:
        return [body for body in client.hvals("unacked") if token in body]

    # Celery records WorkerLostError and acknowledges the message (no requeue):
    # then no copy waits to be delivered again, in the queue or in kombu's
    # unacknowledged set. Under heavy load Celery may still have redelivered it
    # once before the ack; the claim in Redis is what stops a second run.
    wait_for(
        lambda: b"WorkerLostError" in (client.get(f"celery-task-meta-{workload.token}") or b""),
        "Celery to record the lost try",
    )
    wait_for(lambda: not unacknowledged(), "Celery to acknowledge the lost try's message")
    assert not [body for body in client.lrange("default", 0, -1) if token in body]
    assert worker.log().count(f"run_try[{workload.token}] received") >= 1
    later = cluster.workload("true")
    executor.queue_workload(later)
    driver.until_finished(later.key)
    assert driver.state(later.key) is TaskState.SUCCESS
    assert lines(runs) == ["ran"]


def test_a_worker_killed_outright_fails_its_try_and_a_redelivery_does_not_run_it(
    private_cluster: Cluster,
) -> None:
    cluster = private_cluster
    doomed = cluster.start_worker("doomed", "default", concurrency=1)
    executor = cluster.executor()
    runs = cluster.root / "runs.txt"
    workload = cluster.workload(f"echo ran >> {runs}; sleep 60")
    driver = Driver(executor)
    executor.queue_workload(workload)
    driver.until_started(workload.key)

    # Unacknowledged while it runs (acks_late): this copy is what Redis hands out again.
    token = workload.token.encode()
    assert [body for body in cluster.redis.client().hvals("unacked") if token in body]

    doomed.kill_hard()  # main process and pool at once: nobody is left to report
    driver.until_finished(workload.key, timeout=4 * float(TEST_SETTINGS["lease_seconds"]) + 10)

    assert driver.state(workload.key) is TaskState.FAILED
    reason = driver.report(workload.key).reason or ""
    assert reason.startswith("worker lost: worker doomed@test stopped renewing"), reason

    # The message was never acknowledged: Redis hands it to the next worker
    # after the visibility timeout. That worker finds the try claimed by a
    # worker whose lease is gone, and records the try as lost instead of
    # running it: accounted for even with no executor watching.
    heir = cluster.start_worker("heir", "default", concurrency=1)
    wait_for(lambda: "TryLost" in heir.log(), "the redelivered message to be recorded as lost")
    stored = read_meta(cluster.redis.client().get(f"celery-task-meta-{workload.token}") or b"")
    assert stored.state is TaskState.FAILED and stored.report is not None
    assert (stored.report.reason or "").startswith("worker lost: doomed@test claimed the try")
    assert lines(runs) == ["ran"]


def test_a_worker_main_process_killed_mid_try_takes_the_trys_tree_with_it(
    private_cluster: Cluster,
) -> None:
    """``kill -9`` of the main process: Celery's pool processes die with it, and the try
    (in its own session) must die too, before its next try starts: none runs twice."""
    cluster = private_cluster
    doomed = cluster.start_worker("doomed", "default", concurrency=1)
    executor = cluster.executor()
    runs = cluster.root / "runs.txt"
    driver = Driver(executor)

    def attempt(number: int):  # type: ignore[no-untyped-def]
        # The child shell and its sleep are the tree; "end" is written only by a try left running.
        return cluster.workload(
            f"echo start-{number} >> {runs}; sh -c 'sleep 8'; echo end-{number} >> {runs}",
            task="twice",
            run=f"try{number}",
        )

    first = attempt(1)
    executor.queue_workload(first)
    driver.until_started(first.key)
    task_pid = driver.started[first.key].pid  # type: ignore[union-attr]
    assert task_pid is not None
    tree = [psutil.Process(task_pid), *psutil.Process(task_pid).children(recursive=True)]

    os.kill(doomed.process.pid, signal.SIGKILL)  # the main process only
    doomed.process.wait(timeout=10)
    driver.until_finished(first.key, timeout=4 * float(TEST_SETTINGS["lease_seconds"]) + 10)
    assert driver.state(first.key) is TaskState.FAILED
    assert "worker lost" in (driver.report(first.key).reason or "")
    # Gone before the engine could hand out the next try.
    assert all(_gone(process.pid) for process in tree), [p.pid for p in tree if not _gone(p.pid)]

    cluster.start_worker("heir", "default", concurrency=1)
    second = attempt(2)
    executor.queue_workload(second)
    driver.until_finished(second.key, timeout=60)
    assert driver.state(second.key) is TaskState.SUCCESS, driver.report(second.key)
    assert lines(runs) == ["start-1", "start-2", "end-2"]
