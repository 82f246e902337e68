"""LogTails: the end of each try's log, copied to Redis so a console on any machine can show it.

Task logs are files on the worker that ran the try. The worker copies the
last ``log_tail_bytes`` of the file (and the file's whole size) into a Redis
hash keyed by the task key while the try runs and once more when it ends;
the executor's ``get_task_log`` reads that hash.
"""

from __future__ import annotations

import os
from typing import Any, cast

import redis

from executors.base import TaskLog
from executors.celery.keys import RedisKeys
from executors.task_key import TaskKey


def read_tail(path: str, max_bytes: int) -> tuple[int, bytes]:
    """The file's size and its last ``max_bytes`` bytes; (0, b"") when it does not exist.

    Read with plain descriptors: a buffered ``open`` adds an ioctl, two seeks
    and a buffer per call, and this runs at the end of every try.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return 0, b""
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            return 0, b""
        start = max(size - max_bytes, 0)
        chunks = []
        wanted = size - start
        while wanted > 0:
            chunk = os.pread(fd, wanted, start)
            if not chunk:
                break  # the file shrank meanwhile
            chunks.append(chunk)
            start += len(chunk)
            wanted -= len(chunk)
        return size, b"".join(chunks)
    finally:
        os.close(fd)


class LogTails:
    """Write and read log tails in one Redis."""

    def __init__(self, client: redis.Redis, keys: RedisKeys, *, max_bytes: int, ttl: int) -> None:
        self.client = client
        self.keys = keys
        self.max_bytes = max_bytes
        self.ttl = ttl

    def push(self, key: TaskKey, path: str, host: str, *, final: bool) -> int:
        """Copy the end of ``path`` to Redis; returns the size. (A try's final tail is
        written with its outcome, in outcome.py.)"""
        size, data = read_tail(path, self.max_bytes)
        fields: dict[Any, Any] = {
            "size": size,
            "data": data,
            "path": path,
            "host": host,
            "final": int(final),
        }
        name = self.keys.log(key)
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(name, mapping=fields)
        pipe.expire(name, self.ttl)
        pipe.execute()
        return size

    def fetch(self, key: TaskKey, max_bytes: int) -> TaskLog | None:
        """The stored tail, cut to ``max_bytes``; None if no worker stored one."""
        fields = cast(dict[bytes, bytes], self.client.hgetall(self.keys.log(key)))
        if not fields:
            return None
        data = fields.get(b"data", b"")
        size = int(fields.get(b"size", len(data)))
        if len(data) > max_bytes:
            data = data[-max_bytes:]
        where = f"{fields.get(b'host', b'?').decode()}:{fields.get(b'path', b'?').decode()}"
        state = "" if fields.get(b"final") == b"1" else ", still running"
        return TaskLog(
            text=data.decode("utf-8", errors="replace"),
            size=size,
            source=f"{where} (end of log kept in Redis{state})",
            truncated=size > len(data),
        )
