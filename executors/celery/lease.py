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
import time
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
    started_record: str | None = None  # to write once the announcement is due
    announce: Callable[[], None] | None = None
    announce_at: float = 0.0


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
            self._thread = threading.Thread(target=self._run, name="execconsole-lease", daemon=True)
            self._thread.start()

    def announce_after(
        self, delay: float, started_record: str, announce: Callable[[], None]
    ) -> None:
        """In ``delay`` seconds, unless the try has ended: record it as started and call ``announce``.

        A try that ends sooner never announces: its final report says all
        the RUNNING state would have, and it saves three Redis round trips.
        """
        with self._lock:
            watched = self._watched
            if watched is not None:
                watched.started_record = started_record
                watched.announce = announce
                watched.announce_at = time.monotonic() + delay
        self._wake.set()

    def release(self) -> str | None:
        """Stop renewing and cancel a pending announcement; returns the claim record last written.

        Taking the lock waits out an announcement in progress, so a RUNNING
        state can never land after (and hide) the final result stored next.
        """
        with self._lock:
            watched, self._watched = self._watched, None
        return watched.record if watched else None

    def _run(self) -> None:
        next_renewal = time.monotonic() + self.interval
        while True:
            with self._lock:
                watched = self._watched
                due = watched.announce_at if watched and watched.announce else None
            wake_at = next_renewal if due is None else min(due, next_renewal)
            if self._wake.wait(max(wake_at - time.monotonic(), 0)):
                self._wake.clear()
                continue  # something changed: look again
            now = time.monotonic()
            if due is not None and now >= due:
                self._announce()
            if now >= next_renewal:
                next_renewal = now + self.interval
                self._renew()

    def _announce(self) -> None:
        with self._lock:
            watched = self._watched
            if watched is None or watched.announce is None or watched.started_record is None:
                return
            announce, watched.announce = watched.announce, None
            try:
                if self.claims.renew(watched.token, watched.record, watched.started_record):
                    watched.record = watched.started_record
            except redis.RedisError as error:
                log.warning("could not record the start of %s in Redis: %s", watched.key, error)
            try:
                announce()
            except Exception as error:  # noqa: BLE001 - the try runs on; its result will tell
                log.warning("could not publish RUNNING for %s: %s", watched.key, error)

    def _renew(self) -> None:
        with self._lock:
            watched = self._watched
            if watched is None:
                return
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
                return
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
