"""The log screen says what is true of the log: following new output, paused because
the operator scrolled up (and how to follow again), or that the try has ended (and how).

A real console and engine; the keys as an operator presses them: l on a running try,
page up while it prints nothing, f, and then nothing while the try ends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from console.tui.log_screen import LogScreen
from tests.tui.harness import Console

ConsoleFactory = Callable[..., Console]


def heading(c: Console) -> str:
    screen = c.app.screen
    assert isinstance(screen, LogScreen)
    return str(screen.query_one("#log-title").render())


def test_the_log_title_says_following_paused_by_scrolling_and_ended_with_the_outcome(
    console: ConsoleFactory, tmp_path: Any
) -> None:
    c = console()
    go = tmp_path / "go"
    # 300 lines at once, then silence until the test lets it end (exit 3).
    key = c.submit(f"seq 1 300; while [ ! -e {go} ]; do sleep 0.05; done; exit 3", task_id="talks")

    async def scenario(pilot: Any) -> None:
        await c.select(pilot, c.app.dashboard.running_panel, key)
        await pilot.press("l")
        await c.wait(pilot, lambda: isinstance(c.app.screen, LogScreen), "the log screen")
        screen = c.app.screen
        assert isinstance(screen, LogScreen)
        await c.wait(pilot, lambda: len(screen.log_view.lines) >= 300, "the 300 lines shown")
        await c.wait(pilot, lambda: "FOLLOWING new output" in heading(c), "following")

        await pilot.press("pageup")  # nothing new comes: the title must say so anyway
        await c.wait(pilot, lambda: "PAUSED" in heading(c), "paused by scrolling up")
        assert "PAUSED: you scrolled up · f or end follows again" in heading(c)
        await pilot.pause(1.5)  # polls go on; still paused, not following
        assert "PAUSED: you scrolled up" in heading(c)

        await pilot.press("f")
        await c.wait(pilot, lambda: "FOLLOWING new output" in heading(c), "following again")
        assert screen.log_view.is_vertical_scroll_end

        go.touch()
        await c.wait(pilot, lambda: "ENDED" in heading(c), "the try's end shown")
        assert "ENDED: failed (exit 3" in heading(c)
        assert "nothing more will come" in heading(c)
        assert "FOLLOWING" not in heading(c)

    c.run(scenario)
