"""Searching a log the console shows only the end of (l, then /), on a real console."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.widgets import Input

from console.tui.log_screen import LogScreen
from console.tui.log_source import FIRST_READ_BYTES
from tests.tui.harness import Console

ConsoleFactory = Callable[..., Console]

LINES = 6000  # of 70 bytes: 420 KB, more than the log screen loads (FIRST_READ_BYTES)
FILLER = "filler %06g " + "." * 50


def title_of(screen: LogScreen) -> str:
    return str(screen.query_one("#log-title").render())


async def search(c: Console, pilot: Any, screen: LogScreen, pattern: str) -> None:
    await pilot.press("slash")
    search_box = screen.query_one("#log-search", Input)
    await c.wait(pilot, lambda: search_box.has_focus, "the search box")
    search_box.value = pattern  # typing is slow
    await pilot.press("enter")


def test_slash_in_a_long_log_says_what_it_searched_and_finds_lines_before_it(
    console: ConsoleFactory,
) -> None:
    c = console()
    key = c.submit(
        f"echo needle-at-the-start; seq -f '{FILLER}' 1 {LINES}; echo last-line; sleep 60",
        task_id="chatty",
    )

    def log_written() -> bool:
        path = Path(c.record(key).log_path or "/nonexistent")
        return path.is_file() and path.read_bytes().endswith(b"last-line\n")

    async def scenario(pilot: Any) -> None:
        await c.wait(pilot, log_written, "the whole log written")
        assert Path(c.record(key).log_path or "").stat().st_size > FIRST_READ_BYTES
        await c.select(pilot, c.app.dashboard.running_panel, key)
        await pilot.press("l")
        await c.wait(pilot, lambda: isinstance(c.app.screen, LogScreen), "log shown")
        screen = c.app.screen
        assert isinstance(screen, LogScreen)
        await c.wait(pilot, lambda: "last-line" in screen.log_view.lines, "its end loaded")
        assert screen.truncated and "needle-at-the-start" not in screen.log_view.lines
        shown = len(screen.log_view.lines)

        # A line only in the part of the file not loaded.
        await search(c, pilot, screen, "needle-at")
        await c.wait(pilot, lambda: screen.earlier is not None, "the start of the file searched")
        assert screen.matches == []
        assert screen.earlier is not None and screen.earlier.count == 1
        assert screen.earlier.first == ((1, "needle-at-the-start"),)
        title = title_of(screen)
        assert f"/needle-at/ no match in the last {shown:,} lines" in title
        assert "1 earlier, not shown (first at line 1)" in title
        assert any("line 1: needle-at-the-start" in n.message for n in c.app._notifications), (
            "the earlier line itself is shown"
        )

        # A line in the loaded part: found there, and none before it.
        await search(c, pilot, screen, "last-line")
        await c.wait(pilot, lambda: screen.earlier is not None, "the start searched again")
        assert len(screen.matches) == 1
        title = title_of(screen)
        assert f"/last-line/ match 1 of 1 in the last {shown:,} lines" in title
        assert "none in the" in title and "before them" in title

    c.run(scenario)


def test_slash_in_a_short_log_searches_all_of_it_and_says_no_more(console: ConsoleFactory) -> None:
    c = console()
    key = c.submit("echo alpha; echo beta; sleep 60", task_id="short")

    async def scenario(pilot: Any) -> None:
        await c.wait(pilot, lambda: c.state(key) == "running", "running")
        await c.select(pilot, c.app.dashboard.running_panel, key)
        await pilot.press("l")
        await c.wait(pilot, lambda: isinstance(c.app.screen, LogScreen), "log shown")
        screen = c.app.screen
        assert isinstance(screen, LogScreen)
        await c.wait(pilot, lambda: "beta" in screen.log_view.lines, "loaded")
        await search(c, pilot, screen, "gamma")
        await c.wait(pilot, lambda: "/gamma/ no match" in title_of(screen), "searched")
        assert not screen.truncated and not screen.searching_earlier
        assert "in the last" not in title_of(screen)  # the whole log was searched

    c.run(scenario)
