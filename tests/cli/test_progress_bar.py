"""The headless progress bar on a real (pseudo) terminal of a given width."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import termios
from collections.abc import Iterator

import pytest

from console.progress import ProgressBar

COUNTS = {"success": 1234, "failed": 5, "running": 2, "scheduled": 8000, "up_for_retry": 3}


@pytest.fixture
def terminal() -> Iterator:
    """A pseudo terminal: its writing end as a text stream, and a way to set its width."""
    leader, follower = pty.openpty()
    stream = os.fdopen(follower, "w")

    def resize(columns: int) -> None:
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))

    try:
        yield stream, resize
    finally:
        stream.close()
        os.close(leader)


def test_a_wide_terminal_gets_the_whole_line(terminal) -> None:  # type: ignore[no-untyped-def]
    stream, resize = terminal
    resize(200)
    bar = ProgressBar(10_000, stream=stream, label="nightly ")
    line = bar.fit(bar.render(COUNTS, 1.0), COUNTS)
    assert line.startswith("nightly [") and "1239/10000 done" in line and "3 retried" in line


@pytest.mark.parametrize("columns", [100, 80, 60, 40])
def test_the_line_never_wraps_so_it_can_be_redrawn_in_place(terminal, columns: int) -> None:  # type: ignore[no-untyped-def]
    stream, resize = terminal
    resize(columns)
    bar = ProgressBar(10_000, stream=stream, label="nightly ")
    line = bar.fit(bar.render(COUNTS, 1.0), COUNTS)
    assert len(line) < columns
    assert "1239/10000" in line or columns < 60  # the count goes last of all


def test_a_paused_store_shows_in_the_line(terminal) -> None:  # type: ignore[no-untyped-def]
    stream, resize = terminal
    resize(200)
    bar = ProgressBar(10, stream=stream)
    bar.paused = True
    assert "PAUSED (execconsole resume)" in bar.render({}, 0.0)
