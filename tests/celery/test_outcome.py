"""How a try's end reaches Redis: one script call from the worker, and a notice that wakes the executor."""

from __future__ import annotations

import json
import threading
import uuid
from multiprocessing.connection import wait as wait_for_handles

import pytest

from executors.celery.claims import FINISHED, RedisClaims, decode_record, encode_record
from executors.celery.keys import RedisKeys
from executors.celery.outcome import OutcomeWriter
from executors.celery.task_meta import read_meta
from executors.state import TaskState
from executors.task_key import TaskKey
from executors.workload import TaskReport
from tests.celery.conftest import DEADLINE, Cluster, Driver, wait_for

pytestmark = pytest.mark.celery


def test_a_try_ends_in_one_script_call_and_celery_stores_nothing_more(cluster: Cluster) -> None:
    executor = cluster.executor()
    workload = cluster.workload("echo done")
    commands: list[tuple[str, str]] = []  # (client address or "lua", command)
    ready = threading.Event()

    def watch() -> None:
        with cluster.redis.client().monitor() as monitor:
            ready.set()
            for entry in monitor.listen():
                if entry["command"] == "ECHO stop-watching":
                    return
                commands.append((str(entry.get("client_type") or ""), entry["command"]))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    assert ready.wait(5)
    driver = Driver(executor)
    executor.queue_workload(workload)
    driver.until_finished(workload.key)
    cluster.redis.client().echo("stop-watching")
    watcher.join(10)

    assert driver.state(workload.key) is TaskState.SUCCESS
    sent = [command for kind, command in commands if kind != "lua"]
    # EVALSHA alone: no SCRIPT EXISTS per call (a SCRIPT LOAD follows a NOSCRIPT once).
    assert not [c for c in sent if c.upper().startswith("SCRIPT EXISTS")], sent
    meta_key = f"celery-task-meta-{workload.token}"
    # Only the script writes the result; no client GETs or SETs it on the side.
    assert not [c for c in sent if meta_key in c and not c.startswith(("EVALSHA", "MGET"))], sent
    assert [c for kind, c in commands if kind == "lua" and c.startswith(f"SET {meta_key}")]

    client = cluster.redis.client()
    keys = RedisKeys()
    claim = decode_record(client.get(keys.claim(workload.token)))
    assert claim is not None and claim["state"] == FINISHED and claim["exit_code"] == 0
    assert client.get(keys.lease(workload.token)) is None
    tail = client.hgetall(keys.log(workload.key))
    assert tail[b"final"] == b"1" and tail[b"data"] == b"done\n"
    stored = json.loads(client.get(meta_key))
    assert stored["status"] == "SUCCESS" and stored["task_id"] == workload.token
    assert read_meta(client.get(meta_key)).report == driver.report(workload.key)


def _writer(cluster: Cluster) -> tuple[OutcomeWriter, RedisClaims, RedisKeys]:
    client = cluster.redis.client()
    keys = RedisKeys(f"outcome-test-{uuid.uuid4().hex[:6]}")
    writer = OutcomeWriter(
        client, keys, claim_ttl=600, log_tail_bytes=4096, log_ttl=600, result_ttl=600
    )
    return writer, RedisClaims(client, keys, claim_ttl=600, lease_seconds=30), keys


def test_a_stored_success_is_never_overwritten(cluster: Cluster) -> None:
    writer, claims, keys = _writer(cluster)
    client = cluster.redis.client()
    token = uuid.uuid4().hex
    key = TaskKey("celery_tests", "twice", "r1")
    first = claims.claim(token, worker="w1")
    assert first is not None
    writer.store(
        token, key, claim_record=first, report=TaskReport(exit_code=0), log_path="/nx", host="h"
    )
    before = client.get(keys.meta(token))

    writer.store(
        token, key, claim_record=None, report=TaskReport(exit_code=9), log_path="/nx", host="h"
    )

    assert client.get(keys.meta(token)) == before
    reading = read_meta(before)
    assert reading.state is TaskState.SUCCESS and reading.report == TaskReport(exit_code=0)


def test_a_claim_taken_over_is_left_to_its_new_holder(cluster: Cluster) -> None:
    writer, claims, keys = _writer(cluster)
    client = cluster.redis.client()
    token = uuid.uuid4().hex
    key = TaskKey("celery_tests", "taken", "r1")
    ours = claims.claim(token, worker="w1")
    assert ours is not None
    theirs = encode_record("claimed", {"worker": "w2"})
    client.set(keys.claim(token), theirs)
    client.set(keys.lease(token), "1")

    finished = writer.store(
        token, key, claim_record=ours, report=TaskReport(exit_code=0), log_path="/nx", host="h"
    )

    assert finished is False
    assert client.get(keys.claim(token)) == theirs.encode()
    assert client.get(keys.lease(token)) == b"1"
    # The result itself is still stored: the executor hears how this copy ended.
    assert read_meta(client.get(keys.meta(token))).state is TaskState.SUCCESS


def test_the_wait_handle_wakes_when_a_worker_finishes_a_try(cluster: Cluster) -> None:
    # With this poll interval, only a worker's notice can prompt a read after the first.
    executor = cluster.executor(poll_interval=3600.0)
    handles = executor.wait_handles()
    assert handles
    client = cluster.redis.client()
    channel = executor.keys.finished_channel
    wait_for(lambda: dict(client.pubsub_numsub(channel))[channel.encode()] >= 1, "the listener")
    driver = Driver(executor)
    driver.beat()  # the first read, and the listener's hello drained
    workload = cluster.workload("true")
    executor.queue_workload(workload)
    driver.beat()  # sends it

    assert wait_for_handles(handles, timeout=DEADLINE), "no notice within the deadline"
    driver.until_finished(workload.key)

    assert driver.state(workload.key) is TaskState.SUCCESS
