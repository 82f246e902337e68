"""Transport: kombu's Redis transport, keeping one Redis client per channel instead of one per call.

kombu's Redis channel builds a new ``redis.Redis`` object for each call that
does not bring its own client (``conn_or_acquire``): on a worker, once when a
message is taken (the pipeline that records it as unacknowledged) and once
when it is acknowledged. With redis-py 8 each construction costs about
0.2 ms of CPU here, mostly filling the client's table of response callbacks,
so a worker spent about 0.45 ms a try on it: the largest item in its main
process's profile. The objects only wrap the channel's connection pool and
are never closed by kombu, so this channel makes one and keeps it, making a
new one only when kombu replaced the pool (after a disconnection).

``make_app`` names this class as the ``broker_transport``; URLs stay
``redis://`` (or ``rediss://``, ``unix://``) and are parsed as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    """A Redis channel that reuses its synchronous client."""

    _kept_client: Any = None

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        kept = self._kept_client
        if self._pool is None and self._connection_closed():
            # Redis went away and Celery closed this channel's connection, but
            # something still holds the channel: a try that ends after the
            # reconnect acknowledges its message here, and the restore of
            # unacknowledged messages may run once more. kombu would build a
            # pool from the closed connection's URL, which is gone (None), and
            # the AttributeError killed the worker. The kept client still knows
            # where Redis is and reconnects on its own; with none, say what any
            # lost connection says, which Celery handles.
            if kept is None:
                raise redis.ConnectionError("this broker channel's connection was closed")
            yield kept
            return
        # redis.Redis is safe to share between threads: each command takes a
        # connection from the pool. Compare pools, since kombu makes a new
        # pool after it dropped the old one.
        if kept is None or kept.connection_pool is not self.pool:
            kept = self._kept_client = self._create_client()
        yield kept

    def _connection_closed(self) -> bool:
        transport = self.connection
        return transport is None or getattr(transport, "client", None) is None


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with ``Channel`` above."""

    Channel = Channel
