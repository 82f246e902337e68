"""An engine and a worker with different key_prefix settings: the try is refused, not run unseen.

The executor watches a try's claim and lease under its own ``key_prefix``. A
worker keeping them under another prefix would run the try while the
executor saw no lease, called it lost, and started the next try beside it.
Each machine is configured on its own, so the mismatch is easy to make: the
worker refuses such a try before starting anything, and the try fails with
one line naming both prefixes.
"""

from __future__ import annotations

import pytest

from executors.state import TaskState
from tests.celery.conftest import Cluster, Driver, lines

pytestmark = pytest.mark.celery


def test_a_worker_with_another_key_prefix_refuses_the_try_naming_both_prefixes(
    private_cluster: Cluster,
) -> None:
    cluster = private_cluster
    cluster.start_worker("other", "default", concurrency=1)  # the default prefix, "execconsole"
    executor = cluster.executor(key_prefix="alpha")
    side = cluster.root / "side.txt"
    workload = cluster.workload(f"echo ran >> {side}; sleep 5")
    driver = Driver(executor)
    executor.queue_workload(workload)
    driver.until_finished(workload.key)

    assert driver.state(workload.key) is TaskState.FAILED
    reason = driver.report(workload.key).reason or ""
    assert "key_prefix" in reason and "'alpha'" in reason and "'execconsole'" in reason, reason
    assert "other@test" in reason, reason
    assert lines(side) == []  # nothing started


def test_the_same_key_prefix_on_both_sides_runs_the_try(private_cluster: Cluster) -> None:
    cluster = private_cluster
    cluster.worker_settings["key_prefix"] = "alpha"
    cluster.start_worker("same", "default", concurrency=1)
    executor = cluster.executor(key_prefix="alpha")
    workload = cluster.workload("true")
    driver = Driver(executor)
    executor.queue_workload(workload)
    driver.until_finished(workload.key)
    assert driver.state(workload.key) is TaskState.SUCCESS
