"""Following a try's log: new bytes of a local file, or the executor's own log tail.

Plain Python (no Textual): the log screen calls ``poll()`` on a worker thread.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Mapping
from dataclasses import dataclass

from executors.base import BaseExecutor
from store.records import TaskRecord

FIRST_READ_BYTES = 256_000


@dataclass(frozen=True, slots=True)
class LogUpdate:
    """What changed since the last poll: ``replace`` the text shown, or append ``text``."""

    text: str
    replace: bool
    source: str
    size: int
    truncated: bool = False


class LogFollower:
    """Follows one try's log.

    Local files (the executor serves logs from this machine, or the try's
    executor is not configured here) are read incrementally from the last
    offset; otherwise the executor's ``get_task_log`` tail is fetched and
    shown anew whenever its size changes.
    """

    def __init__(self, executors: Mapping[str, BaseExecutor], record: TaskRecord) -> None:
        self.executors = executors
        self.record = record
        self.offset = 0
        self.size = -1
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    @property
    def executor(self) -> BaseExecutor | None:
        return self.executors.get(self.record.executor)

    @property
    def local(self) -> bool:
        executor = self.executor
        return executor is None or executor.serve_logs

    def poll(self) -> LogUpdate | None:
        """The change since the last poll, or None when nothing changed."""
        if self.local:
            return self._poll_file()
        executor = self.executor
        assert executor is not None
        log = executor.get_task_log(
            self.record.key, self.record.log_path, max_bytes=FIRST_READ_BYTES
        )
        if log.size == self.size:
            return None
        self.size = log.size
        return LogUpdate(log.text, True, log.source, log.size, log.truncated)

    def _poll_file(self) -> LogUpdate | None:
        path = self.record.log_path
        if not path:
            if self.size == -1:
                self.size = 0
                return LogUpdate(
                    "", True, "no log yet: the task has not been handed to an executor", 0
                )
            return None
        try:
            size = os.path.getsize(path)
        except OSError:
            if self.size == -1:
                self.size = 0
                return LogUpdate("", True, f"{path} (no output)", 0)
            return None
        if size == self.size:
            return None
        replace = self.size <= 0 or size < self.offset  # first read, or the file was truncated
        truncated = False
        with open(path, "rb") as handle:
            if replace:
                self._decoder.reset()
                start = max(0, size - FIRST_READ_BYTES)
                truncated = start > 0
                handle.seek(start)
                data = handle.read(size - start)
                if truncated:
                    # Start at a line boundary: half a line reads as garbage.
                    newline = data.find(b"\n")
                    data = data[newline + 1 :] if newline >= 0 else data
            else:
                handle.seek(self.offset)
                data = handle.read(size - self.offset)
        self.offset = size
        self.size = size
        return LogUpdate(self._decoder.decode(data), replace, path, size, truncated)
