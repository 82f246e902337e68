"""What a worker's pool process keeps between tries: environment, signal handler, Redis plumbing."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import psutil
import pytest
import redis

from executors.celery.app import make_app
from executors.celery.claims import RedisClaims
from executors.celery.keys import RedisKeys
from executors.celery.log_tail import read_tail
from executors.celery.settings import CelerySettings
from executors.state import TaskState
from tests.celery.conftest import Cluster, Driver, wait_for
from tests.helpers import REPO

pytestmark = pytest.mark.celery


def _log(driver: Driver, key: object) -> str:
    return driver.executor.get_task_log(key, None).text  # type: ignore[arg-type]


def test_a_try_sees_its_own_variables_and_none_that_the_try_before_it_set(
    private_cluster: Cluster,
) -> None:
    # One pool process, so both tries run in the same process, one after the other.
    cluster = private_cluster
    cluster.start_worker("solo", "default", concurrency=1)
    executor = cluster.executor()
    driver = Driver(executor)
    first = cluster.workload('echo "first ${ONLY_FIRST-unset} $HOME"')
    first = dataclasses.replace(first, env={**first.env, "ONLY_FIRST": "set", "HOME": "/first"})
    second = cluster.workload('echo "second ${ONLY_FIRST-unset} $HOME"')

    executor.queue_workload(first)
    driver.until_finished(first.key)
    executor.queue_workload(second)
    driver.until_finished(second.key)

    assert driver.state(first.key) is driver.state(second.key) is TaskState.SUCCESS
    assert driver.report(first.key).pid != driver.report(second.key).pid
    assert _log(driver, first.key) == "first set /first\n"
    # The worker's own HOME is back, and the first try's variable is gone.
    assert _log(driver, second.key) == f"second unset {os.environ['HOME']}\n"


def test_an_idle_pool_process_told_to_terminate_still_dies_and_is_replaced(
    private_cluster: Cluster,
) -> None:
    cluster = private_cluster
    worker = cluster.start_worker("solo", "default", concurrency=1)
    executor = cluster.executor()
    driver = Driver(executor)
    warm = cluster.workload("true")  # the pool process sets up its handler on its first try
    executor.queue_workload(warm)
    driver.until_finished(warm.key)
    [pool_pid] = worker.pool_pids()

    os.kill(pool_pid, signal.SIGTERM)

    wait_for(lambda: pool_pid not in worker.pool_pids(), "the idle pool process to exit")
    later = cluster.workload("true")
    executor.queue_workload(later)
    driver.until_finished(later.key)
    assert driver.state(later.key) is TaskState.SUCCESS


def test_a_stop_before_the_try_announced_itself_finds_and_stops_its_tree(tmp_path: Path) -> None:
    # In a process of its own: the stopper looks for the try among the
    # children of the process it runs in, as a pool process's only child.
    script = textwrap.dedent(
        """
        import subprocess, sys, time
        import psutil
        from executors.celery.task import TreeStopper

        leader = subprocess.Popen(["sh", "-c", "sleep 60 & wait"], start_new_session=True)
        while not psutil.Process(leader.pid).children():
            time.sleep(0.01)
        grandchild = psutil.Process(leader.pid).children()[0].pid
        print(grandchild, flush=True)
        TreeStopper(grace=30).stop()  # no pid was ever given to it
        print(leader.wait(), flush=True)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    grandchild, status = (int(line) for line in done.stdout.split())

    assert status == -signal.SIGTERM

    def gone() -> bool:
        try:
            return psutil.Process(grandchild).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    wait_for(gone, "the try's grandchild to be stopped too")


def test_claiming_again_with_the_same_record_is_ours_and_any_other_claim_is_refused(
    cluster: Cluster,
) -> None:
    # A claim whose reply was lost is sent again with the same record: it must
    # not read as someone else's claim, or the try would never run.
    client = cluster.redis.client()
    keys = RedisKeys(f"claim-test-{uuid.uuid4().hex[:6]}")
    claims = RedisClaims(client, keys, claim_ttl=600, lease_seconds=30)
    token = uuid.uuid4().hex
    details = {"worker": "w1", "pool_pid": 1, "claimed_at": "2026-01-01T00:00:00.000001+00:00"}

    first = claims.claim(token, **details)
    again = claims.claim(token, **details)
    other = claims.claim(token, **{**details, "pool_pid": 2})

    assert first is not None and again == first
    assert other is None
    assert client.get(keys.claim(token)) == first.encode()


def test_the_log_tail_is_the_files_size_and_last_bytes(tmp_path: Path) -> None:
    log = tmp_path / "try.log"
    log.write_bytes(b"".join(b"line %d\n" % n for n in range(1000)))
    empty = tmp_path / "empty.log"
    empty.touch()

    size, data = read_tail(str(log), 20)

    assert size == log.stat().st_size
    assert data == log.read_bytes()[-20:]
    assert read_tail(str(log), 10**6) == (size, log.read_bytes())
    assert read_tail(str(empty), 20) == (0, b"")
    assert read_tail(str(tmp_path / "missing.log"), 20) == (0, b"")


def test_a_broker_channel_keeps_one_redis_client_until_its_pool_is_replaced(
    cluster: Cluster,
) -> None:
    app = make_app(CelerySettings(broker_url=cluster.redis.url), role="client")
    try:
        with app.connection_for_write() as connection:
            channel = connection.default_channel
            with channel.conn_or_acquire() as one, channel.conn_or_acquire() as two:
                assert one is two
                assert one.ping()
            old_pool = channel.pool
            channel._disconnect_pools()  # what kombu does after a lost connection
            with channel.conn_or_acquire() as three:
                assert three is not one
                assert three.connection_pool is channel.pool is not old_pool
                assert three.ping()
    finally:
        app.close()


def test_a_channel_whose_connection_was_closed_still_reaches_redis(cluster: Cluster) -> None:
    """After Redis restarts, Celery closes the broker connection, yet a try that
    ends later acknowledges its message on the old channel (and kombu may still
    restore unacknowledged messages on it). That must reach Redis, not kill the
    worker with an AttributeError from the closed connection."""
    app = make_app(CelerySettings(broker_url=cluster.redis.url), role="client")
    try:
        connection = app.connection_for_write()
        channel = connection.default_channel
        with channel.conn_or_acquire() as kept:
            assert kept.ping()
        connection.close()  # what Celery does with a connection Redis dropped
        with channel.conn_or_acquire() as after:
            assert after is kept
            assert after.ping()
        channel.qos.restore_visible()  # runs in the worker's loop; must not raise

        fresh = app.connection_for_write()
        never_used = fresh.default_channel
        fresh.close()
        with pytest.raises(redis.ConnectionError), never_used.conn_or_acquire():
            pass
    finally:
        app.close()


def _ignored_signals(status_text: str) -> int:
    status = dict(line.split(":\t", 1) for line in status_text.splitlines() if ":\t" in line)
    return int(status["SigIgn"], 16)


def test_a_try_does_not_inherit_the_pool_process_ignoring_sigint(cluster: Cluster) -> None:
    """Celery's pool processes ignore SIGINT; a try started there must get the
    default, so `kill -INT` reaches it."""
    executor = cluster.executor()
    driver = Driver(executor)
    workload = cluster.workload("cat /proc/self/status")
    executor.queue_workload(workload)
    driver.until_finished(workload.key)

    assert driver.state(workload.key) is TaskState.SUCCESS
    assert not _ignored_signals(_log(driver, workload.key)) & (1 << (signal.SIGINT - 1))
