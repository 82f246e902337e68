"""The Timeline of a fast run: every lane that worked shows it, and the title says which tries have bars.

A store seeded at a fixed time (tests/tui/seeded.py) with 500 tries of a few
milliseconds on two worker slots, one that fails and one that times out, as
``execconsole run`` of 500 x ``true`` leaves it. The bars are for the latest
120 tries; the rest must still show as cells of their state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.style import Style

from console.snapshot import SnapshotBuilder
from console.tui.timeline_panel import TimelineView
from executors.local import LocalExecutor
from executors.state import TaskState
from tests.tui.seeded import NOW, Seeded, run_app, seeded

WIDE = (140, 40)
LANES = ("local:101", "local:102")
FAST = 500


def fast_run(home: Path) -> Seeded:
    """500 tries of ``true`` from 20 s to 10 s ago, alternating lanes; then a failure on
    each lane: ``breaks`` (exit 3) and ``hangs`` (timed out), started as the last ones ended."""
    s = seeded(home)
    s.submit([f"ok_{n:03d}" for n in range(FAST)] + ["breaks", "hangs"])
    for n in range(FAST):
        moment = 20 - n * 0.02
        s.run_through(s.current(f"ok_{n:03d}"), LANES[n % 2], moment, moment)
    s.run_through(s.current("breaks"), LANES[0], 9.9, 8.9, TaskState.FAILED, "exit code 3")
    s.run_through(s.current("hangs"), LANES[1], 9.9, 7.9, TaskState.FAILED, "timed out after 2s")
    return s


def cells(view: TimelineView, lane: str) -> list[tuple[str, Style]]:
    """The cells of a lane's first line, as (character, style), after the lane's label."""
    for strip in view._drawing():
        if strip.text.startswith(lane):
            found = []
            for segment in strip:
                style = segment.style or Style()
                found += [(char, style) for char in segment.text]
            return found[view.label_width : view.label_width + view._bar_width()]
    raise AssertionError(f"no line for {lane}")


def shows(cell: tuple[str, Style], colour: Any) -> bool:
    """The cell is drawn in ``colour``: its background, or half of a cell of two states."""
    char, style = cell
    return style.bgcolor == colour or (char == "▌" and style.color == colour)


def columns_of_second(view: TimelineView, second: int) -> range:
    """The cells of the second starting ``second`` seconds from now (negative: ago)."""
    scale = view._bar_width() / view.window
    first = int((second + view.window) * scale)
    return range(first, max(first + 1, int((second + 1 + view.window) * scale)))


def test_a_lane_that_ran_hundreds_of_short_tries_shows_them_in_every_second_it_did(
    tmp_path: Path,
) -> None:
    app = fast_run(tmp_path / "home").app()

    async def scenario(pilot: Any) -> None:
        view = app.dashboard.timeline_panel.view
        assert view.window == 30
        green = app.palette.state("success").color
        for lane in LANES:
            drawn = cells(view, lane)
            for second in range(-20, -10):
                assert any(shows(drawn[x], green) for x in columns_of_second(view, second)), (
                    lane,
                    second,
                    "".join(char for char, _ in drawn),
                )

    run_app(app, WIDE, scenario)


def test_a_failure_never_hides_the_successes_that_ended_in_its_cell(tmp_path: Path) -> None:
    s = seeded(tmp_path / "home")
    s.submit(["quick", "breaks"])
    s.run_through(s.current("quick"), LANES[0], 5.0, 5.0)
    s.run_through(s.current("breaks"), LANES[0], 4.99, 4.98, TaskState.FAILED, "exit code 3")
    app = s.app()

    async def scenario(pilot: Any) -> None:
        view = app.dashboard.timeline_panel.view
        green, red = app.palette.state("success").color, app.palette.state("failed").color
        drawn = cells(view, LANES[0])
        assert any(shows(cell, green) for cell in drawn), drawn
        assert any(shows(cell, red) for cell in drawn), drawn

    run_app(app, WIDE, scenario)


def test_the_title_says_when_only_the_latest_tries_have_bars(tmp_path: Path) -> None:
    app = fast_run(tmp_path / "home").app()

    async def scenario(pilot: Any) -> None:
        title = app.dashboard.timeline_panel.frame_title
        assert "last 120 tries" in title, title

    run_app(app, WIDE, scenario)


def test_the_title_says_nothing_of_bars_when_every_try_has_one(tmp_path: Path) -> None:
    s = seeded(tmp_path / "home")
    s.submit(["quick"])
    s.run_through(s.current("quick"), LANES[0], 5.0, 4.0)
    app = s.app()

    async def scenario(pilot: Any) -> None:
        title = app.dashboard.timeline_panel.frame_title
        assert title == "4 Timeline · last 30s · 1 worker slot", title

    run_app(app, WIDE, scenario)


def test_the_snapshot_marks_every_try_the_bars_leave_out_and_keeps_long_running_ones(
    tmp_path: Path,
) -> None:
    s = fast_run(tmp_path / "home")
    s.submit(["long"], run="other")
    s.start(s.current("long", run="other"), "local:103", 25)
    builder = SnapshotBuilder(
        s.runtime.config.store_path, executors={"local": LocalExecutor(2)}, clock=lambda: NOW
    )
    try:
        snapshot = builder.build()
    finally:
        builder.close()
    assert snapshot.timeline_bars == 120
    ended = {state: 0 for state in ("success", "failed")}
    for mark in snapshot.timeline_marks:
        ended[mark.state] += mark.count
    assert ended == {"success": FAST, "failed": 2}
    # Started before the latest 120, still running: its bar is drawn all the same.
    assert "long" in {bar.key.task_id for bar in snapshot.timeline}
