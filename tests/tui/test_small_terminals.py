"""The console in 80x24 and 60x20 terminals: the timeline's axis and the header's counts.

Consoles watching a store seeded at a fixed time (tests/tui/seeded.py): a
run with tasks waiting, handed out, running, succeeded, failed, retried and
upstream_failed, so that the header's counts line is too long for a small
terminal and must be cut.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from executors.state import TaskState
from tests.tui.seeded import Seeded, run_app, seeded

SIZES = [(80, 24), (60, 20)]
TICK = re.compile(r"^(-\d+[sm]|now)$")


def busy_run(home: Path) -> Seeded:
    """19 waiting, 1 handed out, 2 running, 8 succeeded (2 on a retry), 2 failed, 1 upstream_failed."""
    s = seeded(home)
    waiting = [f"wait_{n:02d}" for n in range(19)]
    ok = [f"ok_{n}" for n in range(8)]
    s.submit(
        [*waiting, "out", "run_0", "run_1", *ok, "bad_0", "bad_1", ("below", ["bad_0"])],
        retries=1,
    )
    for n, task in enumerate(ok):
        if n < 2:  # an engine retry first
            s.finish(s.start(s.current(task), "local:101", 28 - n), TaskState.UP_FOR_RETRY, 27 - n)
        s.run_through(s.current(task), "local:101", 25 - n, 24 - n)
    for task in ("bad_0", "bad_1"):
        record = s.start(s.current(task), "local:102", 15)
        s.finish(record, TaskState.FAILED, 14, reason="exit code 1")
    s.start(s.current("run_0"), "local:101", 5)
    s.start(s.current("run_1"), "local:102", 4)
    s.hand_out(s.current("out"), 3)
    return s


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "60x20"])
def test_the_timeline_axis_shows_fewer_ticks_when_narrow_each_one_apart(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    app = busy_run(tmp_path / "home").app()

    async def scenario(pilot: Any) -> None:
        view = app.dashboard.timeline_panel.view
        axis = next(strip.text for strip in view._drawing() if strip.text.startswith("time →"))
        ticks = axis.removeprefix("time →").split()
        assert len(ticks) >= 2 and all(TICK.match(tick) for tick in ticks), axis
        assert ticks[-1] == "now" and ticks[0] == f"-{view.window}s", axis

    run_app(app, size, scenario)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "60x20"])
def test_a_cut_header_keeps_the_failure_counts_before_waiting_and_history(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    app = busy_run(tmp_path / "home").app()

    async def scenario(pilot: Any) -> None:
        header = app.dashboard.header
        line = str(header.counts_line.render())
        # The states by the names `tasks list` uses; failures first, whatever is cut.
        assert line.startswith("2 failed · 1 upstream_failed"), line
        if size[0] >= 80:
            assert line.startswith("2 failed · 1 upstream_failed · 2 running"), line
        assert header.counts_line.size.height == 1
        # What is left out is said to be, never cut in the middle of a figure.
        assert line.endswith(" · …") or line.endswith("up_for_retry"), line

    run_app(app, size, scenario)


def test_the_whole_counts_line_is_kept_where_it_fits(tmp_path: Path) -> None:
    app = busy_run(tmp_path / "home").app()

    async def scenario(pilot: Any) -> None:
        line = str(app.dashboard.header.counts_line.render())
        assert line == (
            "19 scheduled · 1 queued · 2 running · 8 success · 2 failed"
            " · 2 up_for_retry (retried) · 1 upstream_failed"
        ), line

    run_app(app, (160, 40), scenario)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "60x20"])
def test_panel_titles_fit_their_frames_in_small_terminals(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    app = busy_run(tmp_path / "home").app()

    async def scenario(pilot: Any) -> None:
        for panel in (app.dashboard.queued_panel, app.dashboard.timeline_panel):
            title = panel.frame_title
            assert len(title) + 7 <= panel.outer_size.width, (panel.id, title)

    run_app(app, size, scenario)
