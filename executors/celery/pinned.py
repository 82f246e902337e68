"""PinnedConnection: Lua scripts run on one Redis connection that a pool process's task thread keeps.

A try costs its pool process two script calls (the claim, then the outcome).
Through redis-py's client, each call also pays for a connection-pool checkout
and release, the retry wrapper and the client's event hooks: about 80 µs of
client CPU a command here against about 40 µs for packing, sending and
parsing it, which is the rest. The task thread therefore keeps one
connection of its own, outside the pool, and sends the scripts on it
directly. Other threads (the lease keeper) keep using the client.

No retry happens here: a connection error closes the connection (the next
call opens a new one) and is raised, and the callers wait for Redis with
their own back-off, as they did before.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from typing import Any

import redis
from redis.exceptions import NoScriptError


class LuaScript:
    """A script's text and its SHA1, which is all EVALSHA needs."""

    __slots__ = ("sha", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


class PinnedConnection:
    """One connection, made from ``client``'s settings, for the thread that created it."""

    def __init__(self, client: redis.Redis) -> None:
        self._pool = client.connection_pool
        self._connection: Any = None
        self._owner = threading.get_ident()

    def run(self, script: LuaScript, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """EVALSHA ``script``; on NOSCRIPT (a Redis restarted since) SCRIPT LOAD it and call again.

        Raises:
            redis.RedisError: Redis could not be reached, or the script failed.
        """
        # A connection shared by two threads would interleave their replies.
        assert threading.get_ident() == self._owner, "a pinned connection has one thread"
        connection = self._connection
        if connection is None:
            connection = self._connection = self._pool.make_connection()
        try:
            try:
                return self._call(connection, "EVALSHA", script.sha, keys, args)
            except NoScriptError:
                connection.send_command("SCRIPT", "LOAD", script.text)
                connection.read_response()
                return self._call(connection, "EVALSHA", script.sha, keys, args)
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            # The connection may be half-used (a reply never read): never reuse it.
            self.close()
            raise

    @staticmethod
    def _call(
        connection: Any, command: str, sha: str, keys: Sequence[str], args: Sequence[Any]
    ) -> Any:
        connection.send_command(command, sha, len(keys), *keys, *args)
        return connection.read_response()

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.disconnect()
