"""What a worker's main process adds to Celery: a one-broadcast status reply and orphan cleanup.

Imported only by worker processes (``make_app(role="worker")``).

``execconsole_status`` answers everything the console's Celery panel shows
about a worker in one reply, where Celery's own inspect needs three
broadcasts (stats, active, active_queues), each waiting out its timeout.

When a pool process dies under a running try (OOM killer, SIGKILL), Celery
records the task as failed with WorkerLostError, but the try's process lives
in its own session and would run on unsupervised. The main process reads the
try's claim, which names the pid, stops that process tree, waits for the dead
pool process's guard to have stopped it too, and records the try's end in its
claim: that, not Celery's FAILURE, is the end the executor reports.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import psutil
import redis
from billiard.exceptions import WorkerLostError
from celery import Celery, signals
from celery.worker import state as worker_state
from celery.worker.control import inspect_command

from executors.celery.app import redis_client
from executors.celery.claims import CLAIMED, STARTED, RedisClaims, decode_record
from executors.celery.keys import RedisKeys
from executors.supervisor import (
    HOSTNAME,
    TERMINATE_GRACE_SECONDS,
    kill_process_tree,
    wait_until_gone,
)
from executors.workload import TaskReport

log = logging.getLogger(__name__)


@inspect_command()
def execconsole_status(state: Any, **_: Any) -> dict[str, Any]:
    """Pool size, active and processed counts and consumed queues of this worker."""
    consumer = state.consumer
    queues = (
        [queue.name for queue in consumer.task_consumer.queues] if consumer.task_consumer else []
    )
    return {
        "pool": consumer.pool.num_processes,
        "active": len(worker_state.active_requests),
        "processed": worker_state.all_total_count[0],
        "queues": queues,
        "pid": os.getpid(),
    }


def install(app: Celery, task_name: str) -> None:
    """Connect the orphan cleanup for ``task_name`` in this worker process."""

    def on_task_failure(sender: Any = None, task_id: str | None = None, **fields: Any) -> None:
        if getattr(sender, "name", None) != task_name or task_id is None:
            return
        if not isinstance(fields.get("exception"), WorkerLostError):
            return
        threading.Thread(
            target=_stop_orphan, args=(app, task_id), name="execconsole-orphan", daemon=True
        ).start()

    signals.task_failure.connect(on_task_failure, weak=False)


WORKER_PROCESS_LOST = (
    "worker process lost: its pool process died under the try; the try's tree is gone"
)
"""The end a worker's main process records for a try whose pool process died."""


def _stop_orphan(app: Celery, token: str) -> None:
    """Stop the try a dead pool process left behind, then record its end once its tree is gone.

    Celery stored FAILURE (WorkerLostError) the moment it reaped the pool
    process, while the try's tree may run on: the guard (guard.py) is still
    in its SIGTERM-to-SIGKILL grace, and a try ignoring SIGTERM lives through
    all of it. So the executor does not take that FAILURE as the end: it
    waits for the claim's FINISHED record, written here once the guard has
    exited (which it does once the tree is gone), or for the lease to expire
    if this process dies too. The next try never runs beside this one.
    """
    settings = app.settings  # type: ignore[attr-defined]
    keys = RedisKeys(settings.key_prefix)
    client = redis_client(settings, settings.backend_url, "execconsole-orphan-check")
    try:
        raw = client.get(keys.claim(token))
        record = decode_record(raw)
        if (
            raw is None
            or not record
            or record.get("state") not in (CLAIMED, STARTED)
            or record.get("hostname") != HOSTNAME
        ):
            return  # ended (its outcome is stored), or not ours to look after
        _stop_tree_of(token, record)
        if not _guard_gone(record):
            log.warning(
                "the guard of lost task %s outlived its grace; its lease's expiry will end the try",
                token,
            )
            return
        report = TaskReport(
            pid=record.get("pid"),
            pid_create_time=record.get("pid_create_time"),
            hostname=HOSTNAME,
            worker=record.get("worker"),
            started_at=record.get("started_at"),
            reason=WORKER_PROCESS_LOST,
        )
        claims = RedisClaims(
            client,
            keys,
            claim_ttl=settings.claim_ttl_seconds,
            lease_seconds=settings.lease_seconds,
        )
        current = raw.decode() if isinstance(raw, bytes) else str(raw)
        if claims.finish(token, current, **report.to_json()):
            client.publish(keys.finished_channel, token)  # wakes the executors listening
    except redis.RedisError as error:
        # The lease, which nobody renews any more, tells the executor instead.
        log.warning("cannot record the end of lost task %s: %s", token, error)
    finally:
        client.close()


def _stop_tree_of(token: str, record: dict[str, Any]) -> None:
    """Stop the try's tree if its claim names its process (the guard does it too, regardless)."""
    if record.get("state") != STARTED:
        return
    pid, created = record.get("pid"), record.get("pid_create_time")
    try:
        if pid is None or abs(psutil.Process(pid).create_time() - float(created or 0)) > 0.01:
            return  # gone already, or the pid now belongs to another process
    except psutil.NoSuchProcess:
        return
    log.warning("pool process of task %s was lost; stopping its orphaned process %s", token, pid)
    kill_process_tree(pid)


def _guard_gone(record: dict[str, Any]) -> bool:
    """Wait (bounded) for the dead pool process's guard to exit: then the try's tree is gone.

    A claim from a worker that named no guard (an older version) counts as gone.
    """
    pid, created = record.get("guard_pid"), record.get("guard_create_time")
    if not isinstance(pid, int):
        return True
    try:
        guard = psutil.Process(pid)
        if created and abs(guard.create_time() - float(created)) > 0.01:
            return True  # that guard is gone and its pid reused
    except psutil.NoSuchProcess:
        return True
    # The guard's grace is at most TERMINATE_GRACE_SECONDS, once for SIGTERM, once for SIGKILL.
    return not wait_until_gone([guard], 2 * TERMINATE_GRACE_SECONDS + 5.0)
