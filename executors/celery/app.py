"""make_app: the Celery app shared by the executor (client) and its workers.

Choices, and why:

- JSON only, both ways (``accept_content``/``result_accept_content``): a pickle
  message from anyone who can reach Redis would run code on every worker.
- ``task_acks_late``: a message is acknowledged when its try has ended, so a
  worker that dies with messages it had reserved but not started gives them
  back (after the visibility timeout) instead of losing them.
- ``task_reject_on_worker_lost`` stays False: when a pool process dies under a
  running try, Celery records FAILURE (WorkerLostError) and acknowledges, and
  the engine's retry policy makes a new try. Rejecting would requeue the
  message, and since the try's token is claimed already the redelivery would
  only be dropped (see claims.py): the same outcome, slower.
- Every delivery claims its token in Redis before starting (task.py), which
  is what makes redelivery harmless: a try never runs twice.
- ``worker_lost_wait`` is short: when a pool process dies, Celery waits this
  long for a result before declaring the try lost and stopping its orphaned
  process (worker_hooks.py). The try stores its own result in Redis, and
  Celery checks there before failing it, so waiting 10 s (the default) only
  leaves the orphan running longer.
- ``worker_prefetch_multiplier = 1``: a busy worker holds no more than it can
  run, so a second worker gets the rest.
- Tasks go to the queue the workload names; the default queue catches the rest.
- ``worker_cancel_long_running_tasks_on_connection_loss`` stays False (Celery
  warns about it at each reconnect): a short Redis outage must not kill
  running tries. Their messages may be delivered again afterwards, which the
  claim check makes harmless.
- ``broker_transport`` (for ``redis://`` brokers) is kombu's Redis transport with
  one Redis client kept per channel (transport.py): kombu builds a new client
  object for each message taken and each acknowledgement otherwise, the
  largest cost in a worker's main process.
- Result writes retry while Redis is away (``result_backend_always_retry``), so a
  try that ends during an outage still reports when Redis is back. A try's
  own outcome is written by the task itself (outcome.py), which waits for
  Redis the same way.
"""

from __future__ import annotations

from typing import Any, Literal

import redis
from celery import Celery

from executors.celery.settings import CelerySettings

TASK_NAME = "execconsole.run_try"

Role = Literal["client", "worker"]


class CeleryApp(Celery):
    """A Celery app that carries the execconsole settings it was built from."""

    settings: CelerySettings


def socket_timeout(settings: CelerySettings) -> float:
    """How long a call waits for Redis's reply: what a hung Redis costs the caller, once."""
    return max(settings.connect_timeout, 5.0)


def redis_client(settings: CelerySettings, url: str, name: str) -> redis.Redis:
    """A Redis client with bounded timeouts, named so ``CLIENT LIST`` tells who is who."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=settings.connect_timeout,
        socket_timeout=socket_timeout(settings),
        client_name=name,
    )


def make_app(settings: CelerySettings, *, role: Role) -> CeleryApp:
    """Build the app for the executor (``client``) or a worker process (``worker``)."""
    app = CeleryApp("execconsole", set_as_current=False)
    app.settings = settings
    backend = settings.backend_url
    if role == "client" and backend.startswith(("redis://", "rediss://")):
        backend = f"executors.celery.result_backend:QuietRedisBackend+{backend}"
    redis_options: dict[str, Any] = {
        "socket_connect_timeout": settings.connect_timeout,
        # Bounded so a publish to a Redis that vanished without closing the
        # connection fails instead of hanging the engine's heartbeat.
        "socket_timeout": socket_timeout(settings),
    }
    transport: dict[str, str] = {}
    if settings.broker_url.startswith("redis://"):
        # rediss:// and unix:// keep kombu's own parsing of their URLs.
        transport["broker_transport"] = "executors.celery.transport:Transport"
    app.conf.update(
        broker_url=settings.broker_url,
        **transport,
        result_backend=backend,
        task_serializer="json",
        result_serializer="json",
        event_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=False,
        worker_prefetch_multiplier=settings.prefetch_multiplier,
        worker_lost_wait=2.0,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        task_track_started=False,
        task_default_queue=settings.default_queue,
        task_create_missing_queues=True,
        task_routes={TASK_NAME: {"queue": settings.default_queue}},
        result_expires=settings.result_expires_seconds,
        result_extended=False,
        result_backend_always_retry=True,
        result_backend_max_retries=float("inf"),
        result_backend_max_sleep_between_retries_ms=2000,
        result_backend_transport_options=dict(redis_options),
        broker_transport_options={
            **redis_options,
            "visibility_timeout": settings.visibility_timeout,
            # Look for messages abandoned by dead workers every few seconds
            # when the visibility timeout is short (tests, impatient setups).
            "unacked_restore_interval": max(1, min(10, int(settings.visibility_timeout / 2))),
            "unacked_restore_throttle": 1,
        },
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        worker_hijack_root_logger=role == "worker",
        worker_redirect_stdouts=False,
        enable_utc=True,
    )
    if role == "worker":
        # Only workers run the task: a client sends it by name, and skipping
        # the import (psutil, the supervisor, pendulum...) shortens the
        # engine's start before its first try is sent.
        from executors.celery import worker_hooks
        from executors.celery.task import KeyPrefixMismatch, run_try

        # The task stores its own result together with its claim and log tail, in
        # one round trip (outcome.py); Celery stores only failures.
        app.task(
            name=TASK_NAME,
            bind=True,
            acks_late=True,
            typing=False,
            ignore_result=True,
            store_errors_even_if_ignored=True,
            # Expected: logged in one line (task.py logs why), no traceback.
            throws=(KeyPrefixMismatch,),
        )(run_try)
        worker_hooks.install(app, TASK_NAME)
    return app
