"""The Timeline after an engine restart: the current engine's worker slots come first,
and an earlier engine's, whose tries all ended before it took the store, come after
them, faded, the most recent first.

A console attached to an engine that took the store 60 s ago (its lease), on a store
seeded at a fixed time: the earlier engine's slots are named so that they sort first.
The operator zooms the Timeline (4, then z).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from console.tui.factory import make_app
from tests.tui.seeded import NOW, run_app, seeded
from tests.tui.test_timeline_busy_runs import cells

OLD = ("local:1101", "local:1102")  # the engine before: stopped 70 s ago
NEW = ("local:2201", "local:2202")  # this engine: took the store 60 s ago


def test_the_current_engines_slots_come_first_and_an_earlier_engines_are_faded(
    tmp_path: Path,
) -> None:
    s = seeded(tmp_path / "home")
    s.submit([f"old_{n}" for n in range(4)] + [f"new_{n}" for n in range(3)], seconds_ago=200)
    s.run_through(s.current("old_0"), OLD[0], 150, 120)
    s.run_through(s.current("old_1"), OLD[1], 150, 80)
    s.run_through(s.current("old_2"), OLD[0], 110, 70)  # OLD[0] ended last of the two
    s.run_through(s.current("new_0"), NEW[1], 50, 20)
    s.start(s.current("new_1"), NEW[0], 30)
    owner = {"pid": 4242, "hostname": "host", "acquired_at": s.at(60).to_iso8601_string()}
    app = make_app(s.runtime, attached_to=owner, clock=lambda: NOW, polling=False)

    async def scenario(pilot: Any) -> None:
        await pilot.press("4", "z")
        await pilot.pause()
        view = app.dashboard.timeline_panel.view
        labels = [
            strip.text.split()[0] for strip in view._drawing() if strip.text.startswith("local:")
        ]
        assert labels == [*NEW, OLD[0], OLD[1]], labels
        assert view.old_lanes == frozenset(OLD)
        palette = app.palette
        success = palette.state("success").color
        ground = view.rich_style.bgcolor  # the blank cells
        new_colours = {style.bgcolor for _, style in cells(view, NEW[1])} - {ground}
        old_colours = {style.bgcolor for _, style in cells(view, OLD[1])} - {ground}
        assert success in new_colours
        assert old_colours == {palette.faded("success")} and success not in old_colours
        legend = view._drawing()[-1].text
        assert "faded: an earlier engine's slots" in legend, legend

    run_app(app, (140, 40), scenario)


def test_without_an_engine_start_to_go_by_every_lane_is_current_and_in_name_order(
    tmp_path: Path,
) -> None:
    s = seeded(tmp_path / "home")
    s.submit(["a", "b"], seconds_ago=200)
    s.run_through(s.current("a"), "local:2", 150, 120)
    s.run_through(s.current("b"), "local:1", 50, 20)
    app = s.app()  # watching: no engine, no lease

    async def scenario(pilot: Any) -> None:
        view = app.dashboard.timeline_panel.view
        assert view.lanes == ["local:1", "local:2"] and not view.old_lanes

    run_app(app, (140, 40), scenario)
