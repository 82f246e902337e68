"""The console names each state as `execconsole tasks list` does (scheduled, queued,
running, success, failed, up_for_retry, upstream_failed): the header's counts, the
Queued panel's status, the Events panel and the Timeline's legend, never another word.

A console watching a store seeded at a fixed time with a run in every state; the
operator looks at each panel in turn, zoomed (3 then z, 2 then z, 4 then z).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from executors.state import TaskState
from tests.tui.seeded import region_text, run_app
from tests.tui.test_small_terminals import busy_run

CLI_STATES = {str(state) for state in TaskState}
# The words the console used to say instead (and the short forms of them).
OTHER_WORDS = ("waiting", "handed out", "succeeded", "retried ·", "upstream failed", "upstream✗")


def test_every_panel_names_states_as_tasks_list_does(tmp_path: Path) -> None:
    app = busy_run(tmp_path / "home").app()

    async def look_at(pilot: Any, number: str) -> str:
        await pilot.press(number, "z")
        await pilot.pause()
        dashboard = app.dashboard
        assert dashboard.zoomed is not None
        text = "\n".join(region_text(app, dashboard.zoomed))
        await pilot.press("z")
        await pilot.pause()
        return text

    async def scenario(pilot: Any) -> None:
        counts = str(app.dashboard.header.counts_line.render())
        named = re.findall(r"\d[\d,]* ([a-z_]+)", counts)
        assert set(named) == CLI_STATES, counts
        events = await look_at(pilot, "3")
        queued = await look_at(pilot, "2")
        timeline = await look_at(pilot, "4")
        for text in (counts, events, queued, timeline):
            assert not [word for word in OTHER_WORDS if word in text], text
        assert {"upstream_failed", "failed", "success", "running", "queued"} <= set(
            re.findall(r"[a-z_]+", events)
        ), events
        assert "queued" in queued and "scheduled" in queued, queued
        assert "up_for_retry" in timeline, timeline

    run_app(app, (160, 50), scenario)
