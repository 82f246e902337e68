"""A try taken back or killed before it started never runs, and leaves nothing waiting in Redis.

Revoking writes a claim that tells workers to drop the try's message, but
that claim expires (``claim_ttl_seconds``). The message must not outlive it:
it is removed from its queue when the try is taken back, and it carries an
expiry of its own, so even a copy left behind (an engine killed before it
could remove it) is dropped by the worker that reads it. Queue lengths (what
``celery inspect`` shows) then count only work that may still run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest

from executors.state import TaskState
from tests.celery.conftest import Cluster, Driver, lines, wait_for
from tests.helpers import REPO

pytestmark = pytest.mark.celery


def _inspect(cluster: Cluster) -> dict[str, dict]:
    result = subprocess.run(
        [sys.executable, "-m", "executors.celery", "inspect", "--json"],
        cwd=REPO,
        env=cluster.worker_env(),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    return {q["name"]: q for q in json.loads(result.stdout)["queues"]}


@pytest.mark.parametrize("how", ["dequeue", "kill"])
def test_a_try_taken_back_before_it_started_leaves_its_queue_empty(
    cluster: Cluster, how: str
) -> None:
    queue = f"nowhere-{uuid.uuid4().hex[:8]}"
    executor = cluster.executor()
    driver = Driver(executor)
    workload = cluster.workload("true", queue=queue)
    executor.queue_workload(workload)
    driver.until(
        lambda: executor.gauges()["executor.celery.unsent_tasks"] == 0, "the try to be sent"
    )
    broker = cluster.redis.client()
    assert broker.llen(queue) == 1
    assert _inspect(cluster)[queue]["unconsumed"] is True

    if how == "dequeue":
        assert executor.dequeue(workload.key)
    else:
        assert executor.kill(workload.key)
    driver.until(lambda: broker.llen(queue) == 0, "the revoked try's message to leave its queue")

    shown = _inspect(cluster).get(queue)
    assert shown is None or (shown["waiting"] == 0 and not shown["unconsumed"]), shown


def test_a_revoked_try_never_runs_even_once_its_revocation_has_expired(
    private_cluster: Cluster,
) -> None:
    cluster = private_cluster
    cluster.worker_settings["claim_ttl_seconds"] = 2
    queue = "later"
    side = cluster.root / "side.txt"
    executor = cluster.executor(claim_ttl_seconds=2)
    driver = Driver(executor)
    revoked = cluster.workload(f"echo revoked >> {side}", queue=queue)
    executor.queue_workload(revoked)
    driver.until(
        lambda: executor.gauges()["executor.celery.unsent_tasks"] == 0, "the try to be sent"
    )
    # Taken back, and no beat after it: as if the engine died right then, before
    # it could remove the message from the queue.
    assert executor.dequeue(revoked.key)
    client = cluster.redis.client()
    claim = f"{executor.keys.prefix}:claim:{revoked.token}"
    assert client.exists(claim)
    wait_for(lambda: not client.exists(claim), "the revocation to expire")

    # A worker for that queue comes up, and a try sent after the revoked one runs.
    cluster.start_worker("late", queue, concurrency=1)
    other = Driver(cluster.executor(claim_ttl_seconds=2))
    after = cluster.workload(f"echo after >> {side}", queue=queue)
    other.executor.queue_workload(after)
    other.until_finished(after.key)

    assert other.state(after.key) is TaskState.SUCCESS
    assert lines(side) == ["after"]
