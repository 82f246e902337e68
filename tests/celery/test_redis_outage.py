"""Redis goes away mid-run and comes back on the same port: nothing lost, nothing run twice."""

from __future__ import annotations

import contextlib
import time

import pytest
import redis

from executors.state import TaskState
from tests.celery.conftest import Cluster, Driver, RedisServer, lines, wait_for

pytestmark = pytest.mark.celery


@pytest.mark.parametrize("keep_data", [False, True], ids=["data-lost", "data-kept"])
def test_an_outage_loses_no_try_and_runs_none_twice(
    private_cluster: Cluster, keep_data: bool, caplog: pytest.LogCaptureFixture
) -> None:
    cluster = private_cluster
    cluster.start_worker("steady", "default", concurrency=2)
    executor = cluster.executor()
    runs = cluster.root / "runs.txt"
    driver = Driver(executor)

    def workload(name: str, seconds: float):  # type: ignore[no-untyped-def]
        return cluster.workload(f"echo {name} >> {runs}; sleep {seconds}", task=name)

    # Two run through the outage; four wait in Redis behind them.
    before = [workload(f"before{i}", 3 if i < 2 else 0.1) for i in range(6)]
    for item in before:
        executor.queue_workload(item)
    driver.until(lambda: len(driver.started) == 2, "two tries to start")

    cluster.redis.stop(keep_data=keep_data)
    driver.until(lambda: not executor.broker_ok, "the executor to notice Redis is gone")
    assert cluster.redis.url in executor.broker_message
    # Tries handed over during the outage wait in the executor.
    during = [workload(f"during{i}", 0.1) for i in range(3)]
    for item in during:
        executor.queue_workload(item)
    for _ in range(5):
        driver.beat()
        time.sleep(0.2)
    assert executor.gauges()["executor.celery.unsent_tasks"] == 3
    assert not any(item.key in driver.final for item in during)

    cluster.redis.start()
    everything = [item.key for item in before + during]
    driver.until_finished(*everything, timeout=90)

    assert executor.broker_ok and executor.broker_message == ""
    assert {driver.state(key) for key in everything} == {TaskState.SUCCESS}
    # Each try ran exactly once, however many copies of its message existed.
    wait_for(lambda: len(lines(runs)) >= len(everything), "every side effect to be written")
    assert sorted(lines(runs)) == sorted(key.task_id for key in everything)
    # Without its data, Redis forgot the four queued messages: the executor
    # noticed and sent them again.
    assert ("Redis lost its data" in caplog.text) is not keep_data


def _shutdown_nosave(server: RedisServer) -> None:
    """``redis-cli shutdown nosave``, as an operator restarting Redis would."""
    assert server.process is not None
    with contextlib.suppress(redis.ConnectionError):
        server.client().shutdown(nosave=True)
    server.process.wait(timeout=10)
    server.process = None


def test_a_worker_survives_redis_restarting_under_a_running_try(private_cluster: Cluster) -> None:
    cluster = private_cluster
    worker = cluster.start_worker("survivor", "default", concurrency=1)
    executor = cluster.executor()
    runs = cluster.root / "runs.txt"
    driver = Driver(executor)
    first = cluster.workload(f"echo first >> {runs}; sleep 12", task="first")
    executor.queue_workload(first)
    driver.until_started(first.key)

    _shutdown_nosave(cluster.redis)
    for _ in range(20):  # 4 s without Redis, the engine beating all along
        driver.beat()
        time.sleep(0.2)
    cluster.redis.start()

    driver.until_finished(first.key, timeout=60)
    assert driver.state(first.key) is TaskState.SUCCESS, driver.report(first.key)
    later = cluster.workload(f"echo later >> {runs}", task="later")
    executor.queue_workload(later)
    driver.until_finished(later.key, timeout=60)
    assert driver.state(later.key) is TaskState.SUCCESS, driver.report(later.key)

    assert worker.process.poll() is None, worker.log()[-3000:]
    assert "Unrecoverable error" not in worker.log()
    assert lines(runs) == ["first", "later"]
