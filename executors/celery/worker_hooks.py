"""What a worker's main process adds to Celery: a one-broadcast status reply and orphan cleanup.

Imported only by worker processes (``make_app(role="worker")``).

``execconsole_status`` answers everything the console's Celery panel shows
about a worker in one reply, where Celery's own inspect needs three
broadcasts (stats, active, active_queues), each waiting out its timeout.

When a pool process dies under a running try (OOM killer, SIGKILL), Celery
records the task as failed with WorkerLostError, but the try's process lives
in its own session and would run on unsupervised. The main process reads the
try's claim, which names the pid, and stops that process tree.
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
from executors.celery.claims import STARTED, decode_record
from executors.celery.keys import RedisKeys
from executors.supervisor import HOSTNAME, kill_process_tree

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


def _stop_orphan(app: Celery, token: str) -> None:
    settings = app.settings  # type: ignore[attr-defined]
    client = redis_client(settings, settings.backend_url, "execconsole-orphan-check")
    try:
        record = decode_record(client.get(RedisKeys(settings.key_prefix).claim(token)))
    except redis.RedisError as error:
        log.warning("cannot read the claim of lost task %s to stop its process: %s", token, error)
        return
    finally:
        client.close()
    if not record or record.get("state") != STARTED or record.get("hostname") != HOSTNAME:
        return
    pid, created = record.get("pid"), record.get("pid_create_time")
    try:
        if pid is None or abs(psutil.Process(pid).create_time() - float(created or 0)) > 0.01:
            return  # gone already, or the pid now belongs to another process
    except psutil.NoSuchProcess:
        return
    log.warning("pool process of task %s was lost; stopping its orphaned process %s", token, pid)
    kill_process_tree(pid)
