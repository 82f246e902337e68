"""AnswerProbe: finds out, off the engine's thread, when a Redis that stopped answering answers again.

A Redis that refuses connections fails each call at once, so the executor
simply tries again about once a second. A Redis that *hangs* (stopped, swapped
out, behind a link that drops packets) accepts the connection, or leaves it
pending, and never replies: every call waits out redis-py's socket timeout,
and the engine, which hosts other executors in the same thread, waits with it.

So after a call timed out, the executor makes no more calls from the engine's
thread. This probe PINGs each Redis in use from a daemon thread, with
redis-py's own bounded timeouts and a fresh connection each time, every
``interval`` seconds, and says ``answering`` once every one replied; the
executor then goes back to its usual calls. The thread never holds up the
process: it is a daemon, and ``close`` does not wait for a ping in progress.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import redis

log = logging.getLogger(__name__)

Connect = Callable[[], list[redis.Redis]]
"""Fresh clients for every Redis in use (the broker's and the result backend's)."""


def timed_out(error: BaseException) -> bool:
    """Whether ``error`` (or what it wraps: kombu and Celery wrap redis-py's) is a timeout.

    A timeout means Redis may hang; anything else (a refused connection, an
    error reply) comes back at once.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, redis.TimeoutError | TimeoutError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


class AnswerProbe:
    """PINGs Redis from a daemon thread, from ``start`` until every Redis in use answers."""

    def __init__(self, connect: Connect, *, interval: float) -> None:
        self._connect = connect
        self._interval = interval
        self._answered = threading.Event()
        self._answered.set()  # nothing found wrong yet
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        """The probing thread while it runs; None once Redis answered."""

    @property
    def answering(self) -> bool:
        """False from ``start`` until a round of PINGs got every reply."""
        return self._answered.is_set()

    def start(self) -> None:
        """Redis did not answer in time: stop counting on it until a PING says otherwise."""
        with self._lock:
            if self._stop.is_set():
                return
            self._answered.clear()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="execconsole-celery-probe", daemon=True
                )
                self._thread.start()

    def close(self) -> None:
        """Stop probing; returns at once (a PING in progress ends within its timeout)."""
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._ping_all():
                # Under the lock, so that a ``start`` after this makes a new thread.
                with self._lock:
                    self._answered.set()
                    self._thread = None
                return
            self._stop.wait(self._interval)

    def _ping_all(self) -> bool:
        clients: list[redis.Redis] = []
        try:
            clients = self._connect()
            for client in clients:
                client.ping()
            return True
        except (redis.RedisError, OSError) as error:
            log.debug("Redis still not answering: %s", error)
            return False
        finally:
            for client in clients:
                try:
                    client.close()
                except Exception:  # noqa: BLE001 - closing a connection that broke
                    pass
