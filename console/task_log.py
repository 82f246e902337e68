"""Reading a try's log for display: its last line, or its tail, made safe to draw."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from store.records import TaskRecord

if TYPE_CHECKING:
    from executors.base import BaseExecutor

LAST_LINE_BYTES = 2048
LAST_LINE_CHARS = 200
_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b-\x1f\x7f]")


def clean_line(text: str, limit: int = LAST_LINE_CHARS) -> str:
    """One log line made safe to draw: no escape sequences or control characters."""
    return _CONTROL.sub("", text).strip()[:limit]


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
    for line in reversed(data.decode("utf-8", errors="replace").splitlines()):
        if line.strip():
            return clean_line(line)
    return ""


def read_task_log(
    executors: Mapping[str, BaseExecutor], record: TaskRecord, max_bytes: int = 64_000
) -> tuple[str, str, int]:
    """(text, source, size) of a try's log, from its executor when configured here."""
    executor = executors.get(record.executor)
    if executor is not None:
        log = executor.get_task_log(record.key, record.log_path, max_bytes=max_bytes)
        return log.text, log.source, log.size
    # Not configured here: the log can only be the local file, if any.
    if not record.log_path:
        return "", "no log recorded", 0
    try:
        size = os.path.getsize(record.log_path)
        with open(record.log_path, "rb") as handle:
            handle.seek(max(0, size - max_bytes))
            return handle.read(max_bytes).decode("utf-8", errors="replace"), record.log_path, size
    except OSError:
        return "", f"{record.log_path} (no output)", 0
