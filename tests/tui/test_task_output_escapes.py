"""A task's escape sequences never reach the operator's terminal, on a real console.

A task printing a clear-screen blanked the log follower and the task detail,
an OSC 0 sequence retitled the terminal, OSC 52 could write its clipboard.
Every view of task output now draws the text alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from textual.widgets import Input, Log

from console.tui.log_screen import LogScreen
from console.tui.task_detail_screen import TaskDetailScreen
from executors.task_key import TaskKey
from tests.tui.harness import Console

ConsoleFactory = Callable[..., Console]

# printf's own escapes (\033, \007), so the shell command itself stays printable.
ESCAPES = (
    r"printf 'before\n"
    r"\033[2J\033[Hcleared\033[5A up\n"  # clear screen, cursor home and up
    r"\033]0;TITLE HACK\007titled\n"  # OSC 0, ended by BEL
    r"\033]2;window\033\\named\n"  # OSC 2, ended by ST
    r"\033]52;c;aGVsbG8=\007clipboard\n"  # OSC 52: the clipboard
    r"\033[31mred\033[0m \033[1;32mgreen\033[0m\n"
    r"\033]0;TITLE HACK\007last line\n'; sleep 60"
)
SHOWN = ["before", "cleared up", "titled", "named", "clipboard", "red green", "last line"]


def controls_in(lines: Iterable[str]) -> list[str]:
    """The lines holding a character a terminal acts on (tab aside)."""
    return [
        line
        for line in lines
        if any((ord(c) < 0x20 and c != "\t") or 0x7F <= ord(c) <= 0x9F for c in line)
    ]


def shown(log: Log) -> list[str]:
    return [line for line in log.lines if line]


def log_written(c: Console, key: TaskKey) -> bool:
    path = Path(c.record(key).log_path or "/nonexistent")
    return path.is_file() and path.read_bytes().endswith(b"last line\n")


def last_line_cell(c: Console, key: TaskKey) -> str:
    panel = c.app.dashboard.running_panel
    row = c.row_of(panel, key)
    return "" if row is None else str(panel.table.get_row_at(row)[-1])


def test_the_log_follower_and_its_search_show_the_text_without_escape_sequences(
    console: ConsoleFactory,
) -> None:
    c = console()
    key = c.submit(ESCAPES, task_id="escapes")

    async def scenario(pilot: Any) -> None:
        await c.wait(pilot, lambda: log_written(c, key), "the whole log written")
        await c.select(pilot, c.app.dashboard.running_panel, key)
        await pilot.press("l")
        await c.wait(pilot, lambda: isinstance(c.app.screen, LogScreen), "log shown")
        screen = c.app.screen
        assert isinstance(screen, LogScreen)
        view = screen.log_view
        await c.wait(pilot, lambda: len(shown(view)) == len(SHOWN), "the whole log loaded")
        assert shown(view) == SHOWN
        assert controls_in(view.lines) == []
        assert view.virtual_size.width == max(map(len, SHOWN))  # measured on the text alone

        # The search matches what is shown, not what the task printed.
        box = screen.query_one("#log-search", Input)
        for pattern, found in (("HACK|52;c|31m", 0), ("red green", 1), ("^cleared up$", 1)):
            await pilot.press("slash")
            await c.wait(pilot, lambda: box.has_focus, "the search box")
            box.value = pattern
            await pilot.press("enter")
            await c.wait(pilot, lambda: view.has_focus, f"/{pattern}/ searched")
            assert len(screen.matches) == found, pattern

    c.run(scenario)


def test_the_running_panels_last_log_line_has_no_osc_sequence_left_in_it(
    console: ConsoleFactory,
) -> None:
    c = console()
    key = c.submit(ESCAPES, task_id="escapes")

    async def scenario(pilot: Any) -> None:
        await c.wait(pilot, lambda: last_line_cell(c, key).endswith("last line"), "its last line")
        assert last_line_cell(c, key) == "last line"  # it was "]0;TITLE HACKlast line"

    c.run(scenario)


def test_the_detail_screens_log_tail_shows_the_text_without_escape_sequences(
    console: ConsoleFactory,
) -> None:
    c = console()
    key = c.submit(ESCAPES, task_id="escapes")

    async def scenario(pilot: Any) -> None:
        await c.wait(pilot, lambda: log_written(c, key), "the whole log written")
        await c.select(pilot, c.app.dashboard.running_panel, key)
        await pilot.press("enter")
        await c.wait(pilot, lambda: isinstance(c.app.screen, TaskDetailScreen), "detail shown")
        screen = c.app.screen
        assert isinstance(screen, TaskDetailScreen)
        tail = screen.query_one("#detail-log", Log)
        await c.wait(pilot, lambda: len(shown(tail)) == len(SHOWN), "the log tail")
        assert shown(tail) == SHOWN
        assert controls_in(tail.lines) == []

    c.run(scenario)
