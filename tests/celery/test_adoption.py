"""A new engine adopts what the old one left in flight, by token, and nothing runs twice."""

from __future__ import annotations

import uuid

import pytest

from executors.base import AdoptionOutcome, AdoptionRecord
from executors.celery.app import TASK_NAME, make_app
from executors.celery.executor import LOST_WITH_REDIS_DATA
from executors.celery.keys import RedisKeys
from executors.celery.settings import CelerySettings
from executors.state import TaskState
from tests.celery.conftest import Cluster, Driver, lines, wait_for

pytestmark = pytest.mark.celery


def beta_log(cluster: Cluster) -> str:
    return next(w for w in cluster.workers if w.nodename == "beta@test").log()


def test_a_new_executor_adopts_running_finished_and_queued_tries(cluster: Cluster) -> None:
    runs = cluster.root / f"adoption-{uuid.uuid4().hex[:6]}.txt"
    old = cluster.executor()
    old_driver = Driver(old)
    # beta has two pool processes: two run, the third waits in its queue.
    running = cluster.workload(f"echo running >> {runs}; sleep 3", queue="beta")
    finished = cluster.workload(f"echo finished >> {runs}; exit 4", queue="beta")
    queued = cluster.workload(f"echo queued >> {runs}", queue="beta")
    blocker = cluster.workload("sleep 3", queue="beta")
    for workload in (running, finished):
        old.queue_workload(workload)
    old_driver.until_finished(finished.key)
    for workload in (blocker, queued):
        old.queue_workload(workload)
    old_driver.until_started(running.key, blocker.key)
    # The old engine dies here: it never hears of any of these again.
    del old_driver

    new = cluster.executor()
    records = [
        AdoptionRecord(key=w.key, state=state, token=w.token)
        for w, state in (
            (running, TaskState.RUNNING),
            (finished, TaskState.RUNNING),
            (queued, TaskState.QUEUED),
        )
    ]
    outcomes = new.adopt(records)

    assert outcomes[running.key].outcome is AdoptionOutcome.ADOPTED
    assert outcomes[finished.key].outcome is AdoptionOutcome.FINISHED
    report = outcomes[finished.key].report
    assert report is not None and report.exit_code == 4
    # Proven never to start: its claim is now revoked, so the engine may hand
    # the try out again and the old message will be dropped.
    assert outcomes[queued.key].outcome is AdoptionOutcome.NEVER_STARTED
    assert running.key in new.running and queued.key not in new.running

    driver = Driver(new)
    driver.until_finished(running.key)
    assert driver.state(running.key) is TaskState.SUCCESS
    wait_for(
        lambda: f"{queued.key} was revoked before it started" in beta_log(cluster),
        "the worker to take the queued try's message and drop it",
    )
    assert sorted(lines(runs)) == ["finished", "running"]


def test_a_token_nobody_sent_is_revoked_so_a_late_message_never_runs(cluster: Cluster) -> None:
    runs = cluster.root / f"late-{uuid.uuid4().hex[:6]}.txt"
    executor = cluster.executor()
    workload = cluster.workload(f"echo late >> {runs}", queue="beta")

    outcome = executor.adopt(
        [AdoptionRecord(key=workload.key, state=TaskState.QUEUED, token=workload.token)]
    )
    assert outcome[workload.key].outcome is AdoptionOutcome.NEVER_STARTED

    # A message for that token turning up afterwards (say, from a publish the
    # dead engine made at the last moment) finds the claim revoked.
    app = make_app(CelerySettings.load(cluster.options), role="client")
    app.send_task(TASK_NAME, args=[workload.to_json()], task_id=workload.token, queue="beta")
    app.close()
    wait_for(
        lambda: f"{workload.key} was revoked before it started" in beta_log(cluster),
        "the worker to take the late message and drop it",
    )
    assert lines(runs) == []


def test_tries_without_a_token_cannot_be_adopted(cluster: Cluster) -> None:
    executor = cluster.executor()
    workload = cluster.workload("true")
    outcome = executor.adopt([AdoptionRecord(key=workload.key, state=TaskState.QUEUED, token=None)])
    assert outcome[workload.key].outcome is AdoptionOutcome.LOST


def test_a_try_the_store_saw_start_is_lost_not_handed_out_again_when_redis_forgot_it(
    cluster: Cluster,
) -> None:
    """Redis lost its data while no engine ran: a started try must not run again as the same try."""
    runs = cluster.root / f"forgotten-{uuid.uuid4().hex[:6]}.txt"
    old = cluster.executor()
    old_driver = Driver(old)
    workload = cluster.workload(f"echo ran >> {runs}", queue="beta")
    old.queue_workload(workload)
    old_driver.until_finished(workload.key)
    ran = old_driver.report(workload.key)
    assert ran.pid is not None
    # The old engine died before it recorded the end (the store still says
    # running, with the pid); then Redis lost everything it knew of the try.
    keys = RedisKeys(CelerySettings.load(cluster.options).key_prefix)
    cluster.redis.client().delete(
        keys.meta(workload.token), keys.claim(workload.token), keys.lease(workload.token)
    )

    new = cluster.executor()
    record = AdoptionRecord(
        key=workload.key,
        state=TaskState.RUNNING,
        token=workload.token,
        pid=ran.pid,
        hostname=ran.hostname,
    )
    outcome = new.adopt([record])[workload.key]

    # It ran (for all anyone knows, to its end): lost, into the retry policy,
    # never "never started" and handed out again under the same try.
    assert outcome.outcome is AdoptionOutcome.LOST
    assert outcome.report is not None and outcome.report.reason == LOST_WITH_REDIS_DATA
    assert workload.key not in new.running
    # Its token is revoked all the same: a surviving copy of its message is dropped.
    app = make_app(CelerySettings.load(cluster.options), role="client")
    app.send_task(TASK_NAME, args=[workload.to_json()], task_id=workload.token, queue="beta")
    app.close()
    wait_for(
        lambda: f"{workload.key} was revoked before it started" in beta_log(cluster),
        "the worker to take the surviving message and drop it",
    )
    assert lines(runs) == ["ran"]
