"""LeaseKeeper: a pool process's thread that keeps its running try's lease alive.

One keeper per worker pool process (a pool process runs one try at a time).
Every ``lease_seconds / 3`` it renews the try's lease and re-asserts its
claim, and copies the end of the log to Redis when the log has grown. The
task's own thread is blocked waiting for the process meanwhile, so the
renewals come from here; if the pool process dies, they stop, the lease
expires and the executor reports the try as lost.

If renewing finds the claim belongs to someone else (an engine that came
back after Redis lost its data declared the try never started and handed it
out again), the keeper calls ``on_claim_lost`` so the worker stops the try
instead of letting two copies run.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

import redis

from executors.celery.claims import RedisClaims
from executors.celery.log_tail import LogTails
from executors.task_key import TaskKey

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Watched:
    token: str
    key: TaskKey
    record: str
    log_path: str
    host: str
    on_claim_lost: Callable[[], None]
    log_size: int = -1


class LeaseKeeper:
    """Renews the lease of the try this process runs, from a daemon thread."""

    def __init__(
        self, claims: RedisClaims, tails: LogTails, *, lease_seconds: float, log_push_seconds: float
    ) -> None:
        self.claims = claims
        self.tails = tails
        self.interval = min(lease_seconds / 3, log_push_seconds)
        self._lock = threading.Lock()
        self._watched: _Watched | None = None
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(
        self,
        token: str,
        key: TaskKey,
        record: str,
        log_path: str,
        host: str,
        on_claim_lost: Callable[[], None],
    ) -> None:
        """Start renewing ``token``'s lease; ``record`` is the claim as this worker wrote it."""
        with self._lock:
            self._watched = _Watched(token, key, record, log_path, host, on_claim_lost)
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._run, name="execconsole-lease", daemon=True
            )
            self._thread.start()

    def replace_record(self, record: str) -> bool:
        """Swap the claim record (claimed -> started); False if Redis could not be reached."""
        with self._lock:
            watched = self._watched
            if watched is None:
                return False
            try:
                if self.claims.renew(watched.token, watched.record, record):
                    watched.record = record
                    return True
            except redis.RedisError as error:
                log.warning("could not record the start of %s in Redis: %s", watched.key, error)
            return False

    def release(self) -> str | None:
        """Stop renewing; returns the claim record last written, for the finishing write."""
        with self._lock:
            watched, self._watched = self._watched, None
        return watched.record if watched else None

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            with self._lock:
                watched = self._watched
                if watched is None:
                    continue
                try:
                    still_ours = self.claims.renew(watched.token, watched.record)
                    if still_ours:
                        watched.log_size = self._push_log_if_grown(watched)
                    else:
                        self._watched = None
                except (redis.RedisError, OSError) as error:
                    # Redis may be restarting; the executor does not count an
                    # outage against a lease, so trying again next round is enough.
                    log.debug("lease renewal of %s failed: %s", watched.key, error)
                    continue
            if not still_ours:
                log.error("the claim of %s was taken over; stopping this copy", watched.key)
                watched.on_claim_lost()

    def _push_log_if_grown(self, watched: _Watched) -> int:
        try:
            size = os.stat(watched.log_path).st_size
        except FileNotFoundError:
            return watched.log_size
        if size == watched.log_size:
            return size
        return self.tails.push(watched.key, watched.log_path, watched.host, final=False)
