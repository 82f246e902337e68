"""Why a try sits in queued: the executor says when its queue has no consumer.

A try sent to a queue no worker consumes (a typo, a worker not started yet)
waits until the engine gives up on it as stuck; "queue 'typo' has no
consumer" is what the operator needs to read then. ``queued_reason`` is the
celery executor's answer, for the engine to put in its reason.
"""

from __future__ import annotations

import uuid

import pytest

from tests.celery.conftest import Cluster, Driver

pytestmark = pytest.mark.celery


def test_a_try_in_a_queue_no_worker_consumes_is_said_to_be_so(cluster: Cluster) -> None:
    executor = cluster.executor()
    driver = Driver(executor)
    typo = f"typo-{uuid.uuid4().hex[:6]}"
    stranded = cluster.workload("true", queue=typo)
    executor.queue_workload(stranded)
    driver.until(
        lambda: executor.gauges()["executor.celery.unsent_tasks"] == 0, "the try to be sent"
    )
    try:
        assert executor.queued_reason(stranded.key) == f"queue {typo!r} has no consumer"
    finally:
        executor.dequeue(stranded.key)


def test_a_try_in_a_consumed_queue_has_no_such_reason(cluster: Cluster) -> None:
    executor = cluster.executor()
    gate = cluster.root / f"gate-{uuid.uuid4().hex[:6]}"
    held = cluster.workload(f"while [ ! -e {gate} ]; do sleep 0.05; done", queue="beta")
    driver = Driver(executor)
    executor.queue_workload(held)
    driver.until(
        lambda: executor.gauges()["executor.celery.unsent_tasks"] == 0, "the try to be sent"
    )
    try:
        # A worker slow to answer one status broadcast (a loaded machine) is not
        # one that consumes nothing: ask until one has answered, then the reason
        # comes from that answer (no new broadcast within inspect_interval).
        driver.until(
            lambda: any("beta" in worker.queues for worker in executor.cluster.poll().workers),
            "a worker consuming beta to answer",
        )
        assert executor.queued_reason(held.key) is None
    finally:
        gate.touch()
        driver.until_finished(held.key)
