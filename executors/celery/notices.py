"""FinishNotices: a pipe that becomes readable when a worker says a try has ended.

Workers publish each finished try's token on the ``finished`` channel
(outcome.py). A daemon thread here listens on its own Redis connection and
writes a byte to a pipe, whose read end is the executor's ``wait_handles()``:
the engine sleeping between ticks wakes at once, and the next ``sync`` reads
the states (still one MGET of every try in flight). A notice is only a hint:
messages published while the listener was disconnected are lost, and failures
stored by Celery itself are not announced, so ``sync`` keeps polling too.

The executor says when it would read again at the earliest (``hold_until``);
notices that arrive before then are held and signalled once, at that time, so
a stream of finishes wakes the engine once per read, not once per try.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

import redis

log = logging.getLogger(__name__)

RECONNECT_SECONDS = 1.0


class FinishNotices:
    """Subscribe to ``channel`` from a thread; ``fileno()`` is readable after a notice."""

    def __init__(self, connect: Callable[[], redis.Redis], channel: str) -> None:
        self._connect = connect
        self._channel = channel
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        self._stop = threading.Event()
        self._lock = threading.Lock()  # no write to the pipe once close() has closed it
        self._closed = False
        self._hold_until = 0.0  # time.monotonic(); written by the executor's thread
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="execconsole-celery-notices", daemon=True
            )
            self._thread.start()

    def fileno(self) -> int:
        return self._read_fd

    def hold_until(self, when: float) -> None:
        """Signal nothing before ``when`` (``time.monotonic()``): notices until then wait for it."""
        self._hold_until = when

    def drain(self) -> bool:
        """Empty the pipe; True if any notice (or a reconnection) arrived since the last call."""
        if self._closed:
            return False
        got = False
        try:
            while os.read(self._read_fd, 65536):
                got = True
        except BlockingIOError:
            pass
        except OSError:  # closed
            return False
        return got

    def close(self) -> None:
        """Stop listening. Returns at once: the thread notices within RECONNECT_SECONDS and ends."""
        self._stop.set()
        self._thread = None
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for fd in (self._read_fd, self._write_fd):
                try:
                    os.close(fd)
                except OSError:
                    pass

    def _notify(self) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                os.write(self._write_fd, b"!")
            except (BlockingIOError, OSError):
                pass  # full: the reader has plenty to wake up for already

    def _run(self) -> None:
        while not self._stop.is_set():
            client: redis.Redis | None = None
            pubsub: redis.client.PubSub | None = None
            try:
                client = self._connect()
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self._channel)
                # Anything may have ended while we were not listening.
                self._notify()
                held = False
                while not self._stop.is_set():
                    timeout = RECONNECT_SECONDS
                    if held:
                        timeout = min(timeout, max(self._hold_until - time.monotonic(), 0.0))
                    if pubsub.get_message(timeout=timeout) is not None:
                        held = True
                    if held and time.monotonic() >= self._hold_until:
                        held = False
                        self._notify()
            except (redis.RedisError, OSError, ValueError) as error:
                log.debug("finish notices: %s; listening again shortly", error)
                self._stop.wait(RECONNECT_SECONDS)
            finally:
                for closable in (pubsub, client):
                    if closable is not None:
                        try:
                            closable.close()
                        except Exception:  # noqa: BLE001 - closing a broken connection
                            pass
