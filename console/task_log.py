"""Reading a try's log for display: its last line, or its tail, made safe to draw."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from console.terminal_text import strip_controls
from store.records import TaskRecord

if TYPE_CHECKING:
    from executors.base import BaseExecutor

LAST_LINE_BYTES = 2048
LAST_LINE_CHARS = 200


def clean_line(text: str, limit: int = LAST_LINE_CHARS) -> str:
    """The last line of ``text`` with something to show, made safe to draw in a cell.

    No control sequence and no line break; of a line redrawn with carriage
    returns (a progress bar), the last part. A line of escape sequences alone
    (a clear-screen) has nothing to show: the line before it is taken.
    """
    for line in reversed(strip_controls(text).splitlines()):
        if line.strip():
            return line.strip()[:limit]
    return ""


def from_first_whole_line(text: str) -> str:
    """The tail of a log less its first line, which a tail read by bytes starts inside of.

    Half a line reads as garbage, the more so when the cut falls inside an
    escape sequence (``32mbold`` is what is left of ``\\x1b[1;32mbold``).
    """
    newline = text.find("\n")
    return text[newline + 1 :] if newline >= 0 else text


def last_line_of(path: str | None, max_bytes: int = LAST_LINE_BYTES) -> str:
    """The last non-empty line of a local log file ("" when there is none)."""
    if not path:
        return ""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - max_bytes))
            data = handle.read(max_bytes)
    except OSError:
        return ""
    return clean_line(data.decode("utf-8", errors="replace"))


def read_task_log(
    executors: Mapping[str, BaseExecutor], record: TaskRecord, max_bytes: int = 64_000
) -> tuple[str, str, int]:
    """(text, source, size) of the end of a try's log, from its executor when configured here.

    The text is made safe to draw (``strip_controls``) and starts at a whole line.
    """
    text, source, size, truncated = _read_tail(executors, record, max_bytes)
    if truncated:
        text = from_first_whole_line(text)
    return strip_controls(text), source, size


def _read_tail(
    executors: Mapping[str, BaseExecutor], record: TaskRecord, max_bytes: int
) -> tuple[str, str, int, bool]:
    executor = executors.get(record.executor)
    if executor is not None:
        log = executor.get_task_log(record.key, record.log_path, max_bytes=max_bytes)
        return log.text, log.source, log.size, log.truncated
    # Not configured here: the log can only be the local file, if any.
    if not record.log_path:
        return "", "no log recorded", 0, False
    try:
        size = os.path.getsize(record.log_path)
        with open(record.log_path, "rb") as handle:
            handle.seek(max(0, size - max_bytes))
            data = handle.read(max_bytes)
    except OSError:
        return "", f"{record.log_path} (no output)", 0, False
    return data.decode("utf-8", errors="replace"), record.log_path, size, size > max_bytes
