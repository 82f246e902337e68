"""Following a try's log: new bytes of a local file, or the executor's own log tail.

Plain Python (no Textual): the log screen calls ``poll()`` on a worker thread.
Text leaves here made safe to draw: no terminal control sequence of the task's
output reaches the operator's terminal (``console.terminal_text``).
"""

from __future__ import annotations

import codecs
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from console.task_log import from_first_whole_line
from console.terminal_text import StreamCleaner, strip_controls
from executors.base import BaseExecutor
from store.records import TaskRecord

FIRST_READ_BYTES = 256_000
SEARCH_BLOCK_BYTES = 256_000


@dataclass(frozen=True, slots=True)
class LogUpdate:
    """What changed since the last poll: ``replace`` the text shown, or append ``text``."""

    text: str
    replace: bool
    source: str
    size: int
    truncated: bool = False
    # Where the text shown starts in the local file (``replace`` updates); None when
    # the log is not a local file (an executor's own tail) or nothing was read.
    start: int | None = None


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
        # A read can end inside an escape sequence as well as inside a character.
        self._cleaner = StreamCleaner()

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
        text = from_first_whole_line(log.text) if log.truncated else log.text
        return LogUpdate(strip_controls(text), True, log.source, log.size, log.truncated)

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
        start: int | None = None
        with open(path, "rb") as handle:
            if replace:
                self._decoder.reset()
                self._cleaner.reset()
                start = max(0, size - FIRST_READ_BYTES)
                truncated = start > 0
                handle.seek(start)
                data = handle.read(size - start)
                if truncated:
                    # Start at a line boundary: half a line reads as garbage.
                    newline = data.find(b"\n")
                    if newline >= 0:
                        data = data[newline + 1 :]
                        start += newline + 1
            else:
                handle.seek(self.offset)
                data = handle.read(size - self.offset)
        self.offset = size
        self.size = size
        text = self._cleaner.feed(self._decoder.decode(data))
        return LogUpdate(text, replace, path, size, truncated, start)


@dataclass(frozen=True, slots=True)
class EarlierMatches:
    """What a search found in the part of a log file before the text shown."""

    count: int
    first: tuple[tuple[int, str], ...]  # (line number from 1, the line), the first few
    lines: int  # lines in that part
    complete: bool = True  # False: stopped before the end (cancelled)


def search_before(
    path: str,
    end: int,
    pattern: re.Pattern[str],
    *,
    keep: int = 3,
    cancelled: Callable[[], bool] = lambda: False,
) -> EarlierMatches:
    """Lines matching ``pattern`` in the first ``end`` bytes of a file (whole lines).

    Each line is matched as the log view shows it: without control sequences,
    and broken at carriage returns; line numbers count the file's lines.
    Plain Python, meant for a worker thread: a 5 MB log takes a fraction of a
    second, and ``cancelled`` is asked after every block of SEARCH_BLOCK_BYTES.
    """
    count = 0
    first: list[tuple[int, str]] = []
    number = 0
    for lines in _blocks_of_lines(path, end):
        for line in lines:
            number += 1
            # A carriage return starts a new line in the view (Textual's Log).
            for shown in line.rstrip("\r").split("\r") if "\r" in line else (line,):
                if pattern.search(shown):
                    count += 1
                    if len(first) < keep:
                        first.append((number, shown))
        if cancelled():
            return EarlierMatches(count, tuple(first), number, complete=False)
    return EarlierMatches(count, tuple(first), number)


def _blocks_of_lines(path: str, end: int) -> Iterator[list[str]]:
    """The lines in the first ``end`` bytes of a file (and the rest of the last), a block at a time.

    Decoded and cleaned a block at a time, which costs less than a line at a
    time. No control sequence spans a line end, so cleaning a block of whole
    lines cleans each of them.
    """
    with open(path, "rb") as handle:
        left = end
        rest = b""  # the start of a line the last block cut
        while left > 0:
            data = handle.read(min(SEARCH_BLOCK_BYTES, left))
            if not data:
                break
            left -= len(data)
            data = rest + data
            if left <= 0 and not data.endswith(b"\n"):
                data += handle.readline()  # the line ``end`` falls in, whole
            cut = data.rfind(b"\n") + 1 if left > 0 else len(data)
            rest = data[cut:]
            whole = data[:cut]
            lines = strip_controls(whole.decode("utf-8", errors="replace")).split("\n")
            if whole.endswith(b"\n") or not whole:
                lines.pop()  # the nothing after the last line end
            yield lines
        if rest:
            yield [strip_controls(rest.decode("utf-8", errors="replace"))]
