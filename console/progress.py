"""The headless progress bar, drawn on stderr."""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

BAR_WIDTH = 30


class ProgressBar:
    """Redraws one line in place on a terminal; prints a line every few seconds otherwise."""

    def __init__(self, total: int, stream: TextIO | None = None, label: str = "") -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.label = label
        self.started = time.monotonic()
        self.interactive = self.stream.isatty()
        self._last_draw = 0.0
        self._last_line = ""
        self.paused = False

    def update(self, counts: dict[str, int], *, force: bool = False) -> None:
        now = time.monotonic()
        interval = 0.1 if self.interactive else 5.0
        if not force and now - self._last_draw < interval:
            return
        self._last_draw = now
        line = self.render(counts, now - self.started)
        if self.interactive:
            line = self.fit(line, counts)
            self.stream.write("\r" + line.ljust(len(self._last_line)))
        elif line != self._last_line:
            self.stream.write(line + "\n")
        self.stream.flush()
        self._last_line = line

    def render(self, counts: dict[str, int], elapsed: float, bar_width: int = BAR_WIDTH) -> str:
        succeeded = counts.get("success", 0)
        failed = counts.get("failed", 0) + counts.get("upstream_failed", 0)
        done = succeeded + failed
        bar = ""
        if bar_width:
            filled = int(bar_width * done / self.total) if self.total else bar_width
            bar = "[" + "#" * filled + "-" * (bar_width - filled) + "] "
        paused = "PAUSED (execconsole resume) " if self.paused else ""
        return (
            f"{self.label}{bar}{paused}{done}/{self.total} done: {succeeded} ok, {failed} failed, "
            f"{counts.get('running', 0)} running, {counts.get('queued', 0) + counts.get('scheduled', 0)} waiting, "
            f"{counts.get('retried', counts.get('up_for_retry', 0))} retried  {elapsed:.1f}s"
        )

    def fit(self, line: str, counts: dict[str, int]) -> str:
        """The line shortened to the terminal's width: a line that wraps cannot be redrawn in place."""
        try:
            columns = os.get_terminal_size(self.stream.fileno()).columns
        except (OSError, ValueError, AttributeError):
            return line
        if len(line) < columns:
            return line
        elapsed = time.monotonic() - self.started
        # First a shorter bar, then none, then whatever fits.
        for bar_width in (10, 0):
            shorter = self.render(counts, elapsed, bar_width)
            if len(shorter) < columns:
                return shorter
        return shorter[: max(columns - 1, 0)]

    def close(self, counts: dict[str, int]) -> None:
        self.update(counts, force=True)
        if self.interactive:
            self.stream.write("\n")
            self.stream.flush()
