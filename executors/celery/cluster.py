"""ClusterInspector: what the Celery workers and queues look like, polled off the engine's thread.

Asking workers is a broadcast that waits out a timeout for replies, far too
slow for every heartbeat. The inspector polls from its own thread at most
every ``interval`` seconds (one ``execconsole_status`` broadcast and one
pipeline: the engines' record of the queues they sent to, and LLEN of every
queue) and keeps the latest answer; the console reads
the cached snapshot, which never blocks. The first call to ``snapshot()``
starts the thread, so a headless scheduler that never shows the panel never
pays for it.

It also sends the panel's control requests (grow or shrink a pool, stop or
resume consuming a queue, shut workers down) as fire-and-forget broadcasts,
and asks for a fresh poll so their effect shows up soon.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import redis
from celery import Celery
from kombu.transport.redis import PRIORITY_STEPS, Channel

log = logging.getLogger(__name__)

STATUS_COMMAND = "execconsole_status"


@dataclass(frozen=True, slots=True)
class WorkerRow:
    """One Celery worker as last seen; counts are None until it has answered."""

    hostname: str
    pool: int | None
    active: int | None
    processed: int | None
    queues: tuple[str, ...]
    seen_ago: float
    """Seconds since the worker last answered a status broadcast."""


NO_CONSUMER = "no worker consumes this queue"
"""Said of a queue with messages waiting that no worker (of those that answered) consumes."""


@dataclass(frozen=True, slots=True)
class QueueRow:
    name: str
    waiting: int | None
    paused_on: tuple[str, ...] = ()
    """Workers told to stop consuming this queue from the console."""
    consumers: tuple[str, ...] = ()
    """Workers that answered and said they consume this queue."""

    @property
    def unconsumed(self) -> bool:
        """Messages wait here and no worker that answered will take them: work piles up."""
        return bool(self.waiting) and not self.consumers


@dataclass(frozen=True, slots=True)
class ClusterSnapshot:
    workers: tuple[WorkerRow, ...] = ()
    queues: tuple[QueueRow, ...] = ()
    reachable: bool = True
    message: str = ""
    polled_at: float | None = None
    """Wall-clock time of the poll; None before the first one finished."""


@dataclass(slots=True)
class _Seen:
    at: float
    reply: dict[str, Any] = field(default_factory=dict)


class ClusterInspector:
    """Polls Celery workers and queue lengths in a background thread; sends control requests."""

    def __init__(
        self,
        app: Celery,
        broker: redis.Redis,
        *,
        interval: float,
        timeout: float,
        known_queues: Callable[[], Iterable[str]],
        forget_after: float = 60.0,
        discover_queues: bool = False,
        recorded_queues: str | None = None,
    ) -> None:
        self.app = app
        self.broker = broker
        self.interval = interval
        self.timeout = timeout
        self.known_queues = known_queues
        self.forget_after = forget_after
        # Off by default: finding queues means a SCAN of the whole key space,
        # too costly for a poll every few seconds on a Redis holding a claim
        # per try; ``execconsole celery inspect`` asks once.
        self.discover_queues = discover_queues
        # The Redis set where engines name the queues they sent tries to
        # (RedisKeys.queues). The console's executor never sends (its engine
        # is another process), so without it a queue only the engine used,
        # with nobody consuming it, would not be shown at all.
        self.recorded_queues = recorded_queues
        self._recorded: set[str] = set()
        """The record as last read; only the polling thread touches it."""
        self.selected_worker: str | None = None
        self.selected_queue: str | None = None
        self._seen: dict[str, _Seen] = {}
        self._paused: dict[str, set[str]] = {}
        self._snapshot = ClusterSnapshot(message="asking the workers…")
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- reading -----------------------------------------------------------
    def snapshot(self) -> ClusterSnapshot:
        """The latest poll's result, without waiting; starts background polling on first use."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="execconsole-celery-inspect", daemon=True
            )
            self._thread.start()
        return self._snapshot

    def latest(self) -> ClusterSnapshot:
        """The latest poll's result, without starting the background polling."""
        return self._snapshot

    def poll(self) -> ClusterSnapshot:
        """Ask the workers and Redis now (blocks for the broadcast timeout) and cache the answer."""
        now = time.monotonic()
        try:
            # One PING first: it fails within the connect timeout, where a
            # broadcast to a Redis that is down retries its connection for seconds.
            self.broker.ping()
            replies = self.app.control.broadcast(STATUS_COMMAND, reply=True, timeout=self.timeout)
        except Exception as error:  # noqa: BLE001 - kombu raises several kinds for one outage
            snapshot = ClusterSnapshot(
                workers=self._worker_rows(now),
                queues=self._snapshot.queues,
                reachable=False,
                message=f"broker unreachable: {error}",
                polled_at=time.time(),
            )
            self._snapshot = snapshot
            return snapshot
        with self._lock:
            for reply in replies or []:
                for hostname, body in reply.items():
                    if isinstance(body, dict):
                        self._seen[hostname] = _Seen(now, body)
            for hostname in [h for h, s in self._seen.items() if now - s.at > self.forget_after]:
                del self._seen[hostname]
        workers = self._worker_rows(now)
        try:
            queues = self._queue_rows(workers)
            message = ""
        except redis.RedisError as error:
            queues, message = self._snapshot.queues, f"cannot read queue lengths: {error}"
        snapshot = ClusterSnapshot(workers, queues, not message, message, time.time())
        self._snapshot = snapshot
        return snapshot

    def _worker_rows(self, now: float) -> tuple[WorkerRow, ...]:
        with self._lock:
            seen = sorted(self._seen.items())
        return tuple(
            WorkerRow(
                hostname=hostname,
                pool=entry.reply.get("pool"),
                active=entry.reply.get("active"),
                processed=entry.reply.get("processed"),
                queues=tuple(entry.reply.get("queues") or ()),
                seen_ago=now - entry.at,
            )
            for hostname, entry in seen
        )

    def _queue_rows(self, workers: tuple[WorkerRow, ...]) -> tuple[QueueRow, ...]:
        names = set(self.known_queues()) | set(self._paused)
        for worker in workers:
            names.update(worker.queues)
        # Queues known only from Redis (the engines' record, or found by a SCAN)
        # are shown only if messages wait in them: those are the ones nobody
        # may be taking (see QueueRow.unconsumed); an empty one is history.
        found = self._declared_queues() - names if self.discover_queues else set()
        asked = sorted(names | found | self._recorded)
        pipe = self.broker.pipeline(transaction=False)
        if self.recorded_queues:
            pipe.smembers(self.recorded_queues)
        _ask_lengths(pipe, asked)
        replies = pipe.execute()
        if self.recorded_queues:
            self._recorded = {_text(member) for member in replies.pop(0)}
        waiting = dict(zip(asked, _lengths(replies), strict=True))
        if new := sorted(self._recorded - waiting.keys()):
            # Named in the record since the last poll: one more round trip,
            # this poll only; from the next one on they are asked for above.
            pipe = self.broker.pipeline(transaction=False)
            _ask_lengths(pipe, new)
            waiting.update(zip(new, _lengths(pipe.execute()), strict=True))
        rows = (
            QueueRow(
                name=name,
                waiting=waiting[name],
                paused_on=tuple(sorted(self._paused.get(name, ()))),
                consumers=tuple(w.hostname for w in workers if name in w.queues),
            )
            for name in sorted(waiting)
        )
        return tuple(row for row in rows if row.name in names or row.waiting)

    def _declared_queues(self) -> set[str]:
        """Every queue kombu declared on this Redis, whether or not a worker consumes it.

        kombu keeps a set per exchange (``_kombu.binding.<exchange>``) whose
        members end in the bound queue's name; a task sent to a queue declares
        it there. Celery's own control exchanges (``*.pidbox``, ``celeryev``) are left out.
        """
        prefix = Channel.keyprefix_queue % ""
        names: set[str] = set()
        for raw in self.broker.scan_iter(match=f"{prefix}*", count=1000, _type="set"):
            exchange = _text(raw)[len(prefix) :]
            if exchange.endswith(".pidbox") or exchange == "celeryev":
                continue
            for member in self.broker.smembers(raw):
                names.add(_text(member).split(Channel.sep)[-1])
        names.discard("")
        return names

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception:  # noqa: BLE001 - the panel shows stale data rather than none
                log.exception("polling the Celery workers failed")
            self._wake.wait(self.interval)
            self._wake.clear()

    def refresh_soon(self) -> None:
        """Poll again now instead of waiting for the interval."""
        self._wake.set()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout + 2)

    # ---- control -----------------------------------------------------------
    def grow_pool(self, hostname: str, n: int = 1) -> str:
        self.app.control.pool_grow(n, destination=[hostname])
        self.refresh_soon()
        return f"asked {hostname} to add {n} pool process{'es' if n > 1 else ''}"

    def shrink_pool(self, hostname: str, n: int = 1) -> str:
        self.app.control.pool_shrink(n, destination=[hostname])
        self.refresh_soon()
        return f"asked {hostname} to remove {n} pool process{'es' if n > 1 else ''}"

    def stop_consuming(self, queue: str) -> str:
        """Tell every worker that consumes ``queue`` to stop; remembered so resume can undo it."""
        consumers = {w.hostname for w in self._snapshot.workers if queue in w.queues}
        if not consumers:
            return f"no worker consumes queue {queue!r}"
        self.app.control.cancel_consumer(queue, destination=sorted(consumers))
        self._paused.setdefault(queue, set()).update(consumers)
        self.refresh_soon()
        return f"queue {queue!r}: {len(consumers)} worker(s) told to stop consuming"

    def resume_consuming(self, queue: str) -> str:
        """Undo ``stop_consuming`` for ``queue``; if it was not paused here, ask every worker."""
        consumers = self._paused.pop(queue, None)
        destination = sorted(consumers) if consumers else None
        self.app.control.add_consumer(queue, destination=destination)
        self.refresh_soon()
        whom = f"{len(consumers)} worker(s)" if consumers else "all workers"
        return f"queue {queue!r}: {whom} told to consume again"

    def shutdown(self, hostnames: list[str] | None = None) -> None:
        """Ask workers (all, or the named ones) for a warm shutdown: running tries finish first."""
        self.app.control.shutdown(destination=hostnames)


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _ask_lengths(pipe: Any, names: Iterable[str]) -> None:
    """Queue an LLEN per priority step of each queue: kombu keeps one Redis list per step."""
    for name in names:
        for step in PRIORITY_STEPS:
            pipe.llen(name if step == 0 else f"{name}{Channel.sep}{step}")


def _lengths(replies: list[Any]) -> list[int]:
    """Messages waiting per queue, from the replies to ``_ask_lengths``, in its order."""
    width = len(PRIORITY_STEPS)
    return [sum(replies[start : start + width]) for start in range(0, len(replies), width)]
