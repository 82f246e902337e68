"""A worker or pool process that dies under a try takes the try's tree with it, and only then is the try over.

Two holes, closed here:

- During a try's quiet start (its first ``running_report_delay`` seconds, when
  it has not said RUNNING) nothing but the pool process knew its pid: a pool
  or worker dying then left the try running unsupervised, and the engine,
  which only watched leases of tries it knew to be claimed, showed it queued
  until ``queued_timeout`` and then ran it again.
- Celery stores FAILURE (WorkerLostError) the moment it reaps a dead pool
  process, while the try's guard is still stopping its tree (SIGTERM, then
  SIGKILL after a grace): taken as the end, it let the retry start beside a
  try that ignores SIGTERM.

The tries here ignore SIGTERM and tick into a file, so a tree that outlives
its first signal shows; the workers' quiet start is made long, so "during the
quiet start" is not a race. Each test asserts, at the moment the end is
reported, that nothing of the try still runs.
"""

from __future__ import annotations

import os
import signal
import uuid

import psutil
import pytest

from executors.state import TaskState
from executors.workload import Workload
from tests.celery.conftest import Cluster, Driver, WorkerProcess, lines
from tests.helpers import processes_with_env_marker

pytestmark = pytest.mark.celery

LEASE_SECONDS = 12.0
"""Long enough that a worker's guard waits its whole TERMINATE_GRACE_SECONDS (5 s)
before SIGKILL (its grace is min(5, lease / 2)): a Celery FAILURE taken as the
end lands well inside that grace."""


def _stubborn(cluster: Cluster, ticks: str) -> tuple[Workload, str]:
    """A try that ignores SIGTERM (its child too) and ticks every 0.1 s; and its own marker."""
    workload = cluster.workload(
        f'trap "" TERM; echo started >> {ticks}.runs; '
        f"while true; do echo tick >> {ticks}; sleep 0.1; done"
    )
    marker = f"{cluster.marker}-{uuid.uuid4().hex}"
    workload.env["EXECCONSOLE_TEST_MARKER"] = marker
    return workload, marker


def _try_process(driver: Driver, marker: str) -> psutil.Process:
    """The try's leader (the shell the pool process started), once it runs."""
    found: list[psutil.Process] = []

    def leader() -> bool:
        found[:] = [p for p in processes_with_env_marker(marker) if p.name() == "sh"]
        return bool(found)

    driver.until(leader, "the try's process to start")
    return found[0]


def _worker(cluster: Cluster, name: str, **settings: object) -> WorkerProcess:
    cluster.worker_settings = {"lease_seconds": LEASE_SECONDS, **settings}
    return cluster.start_worker(name, "default", concurrency=1)


def test_a_pool_process_killed_in_the_trys_quiet_start_takes_the_tree_and_ends_it_after(
    private_cluster: Cluster,
) -> None:
    cluster = private_cluster
    # The try stays in its quiet start for as long as the test lasts.
    worker = _worker(cluster, "quiet", running_report_delay=600.0)
    executor = cluster.executor(lease_seconds=LEASE_SECONDS)
    driver = Driver(executor)
    ticks = str(cluster.root / "ticks")
    workload, marker = _stubborn(cluster, ticks)
    executor.queue_workload(workload)
    leader = _try_process(driver, marker)
    pool = leader.parent()
    assert pool is not None and pool.pid in worker.pool_pids()
    assert workload.key not in driver.started  # still quiet: never said RUNNING

    pool.kill()
    driver.until_finished(workload.key, timeout=60)

    # Reported only once the tree is gone: a retry started now runs alone.
    still = processes_with_env_marker(marker)
    assert still == [], [p.info for p in still]
    assert driver.state(workload.key) is TaskState.FAILED
    assert "lost" in (driver.report(workload.key).reason or ""), driver.report(workload.key)
    assert lines(cluster.root / "ticks.runs") == ["started"]


def test_a_pool_process_killed_under_a_running_try_ends_it_only_once_its_tree_is_gone(
    private_cluster: Cluster,
) -> None:
    cluster = private_cluster
    worker = _worker(cluster, "running")
    executor = cluster.executor(lease_seconds=LEASE_SECONDS)
    driver = Driver(executor)
    ticks = str(cluster.root / "ticks")
    workload, marker = _stubborn(cluster, ticks)
    executor.queue_workload(workload)
    driver.until_started(workload.key)
    leader = _try_process(driver, marker)
    pool = leader.parent()
    assert pool is not None and pool.pid in worker.pool_pids()

    pool.kill()
    driver.until_finished(workload.key, timeout=60)

    still = processes_with_env_marker(marker)
    assert still == [], [p.info for p in still]
    assert driver.state(workload.key) is TaskState.FAILED
    report = driver.report(workload.key)
    assert (report.reason or "").startswith("worker process lost"), report


def test_a_worker_killed_in_the_trys_quiet_start_takes_the_tree_and_the_engine_notices(
    private_cluster: Cluster,
) -> None:
    cluster = private_cluster
    cluster.worker_settings = {"running_report_delay": 600.0}
    doomed = cluster.start_worker("doomed", "default", concurrency=1)
    executor = cluster.executor()  # the tests' short lease: lost within seconds
    driver = Driver(executor)
    ticks = str(cluster.root / "ticks")
    workload, marker = _stubborn(cluster, ticks)
    executor.queue_workload(workload)
    leader = _try_process(driver, marker)
    assert workload.key not in driver.started

    os.kill(doomed.process.pid, signal.SIGKILL)  # the main process; its pool dies with it
    doomed.process.wait(timeout=10)
    # Without a RUNNING state the engine still finds the claim, and its lease gone.
    driver.until_finished(workload.key, timeout=60)

    assert not leader.is_running() or leader.status() == psutil.STATUS_ZOMBIE
    still = processes_with_env_marker(marker)
    assert still == [], [p.info for p in still]
    assert driver.state(workload.key) is TaskState.FAILED
    reason = driver.report(workload.key).reason or ""
    assert reason.startswith("worker lost: its worker stopped renewing"), reason
    assert lines(cluster.root / "ticks.runs") == ["started"]
