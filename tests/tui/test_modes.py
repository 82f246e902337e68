"""Attached to another process's engine, read-only, and paging the event history."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from console import actions
from console.tui.events_panel import OLDER_PAGE
from console.tui.keys import KEYS, MUTATING_ACTIONS, MUTATING_TASK_ACTIONS, action_name
from console.tui.live_table import LiveTable
from tests.tui.harness import Console

ConsoleFactory = Callable[..., Console]


def test_attached_console_sends_its_keys_as_requests_to_the_owning_engine(
    console: ConsoleFactory,
) -> None:
    owner_side = console(parallelism=2)  # the engine some other console (or `scheduler`) hosts
    owner = owner_side.store.lease_owner()
    assert owner is not None
    engine = owner_side.engine
    assert engine is not None
    c = console(hosted=False, attached_to=owner)
    key = owner_side.submit("sleep 30", task_id="remote")

    async def scenario(pilot: Any) -> None:
        assert "attached" in c.app.title
        await c.wait(
            pilot,
            lambda: c.app.snapshot is not None and c.app.snapshot.header.mode == "attached",
            "attached",
        )
        await c.wait(
            pilot,
            lambda: c.app.dashboard.running_panel.tasks,
            "its running task shown from the store",
        )
        await pilot.press("p")
        await c.wait(pilot, lambda: engine.paused, "the owning engine paused")
        await pilot.press("plus")
        await c.wait(
            pilot, lambda: engine.executors["local"].parallelism == 3, "its parallelism changed"
        )
        await c.select(pilot, c.app.dashboard.running_panel, key)
        await pilot.press("k", "y")
        await c.wait(pilot, lambda: c.state(key) == "failed", "killed by the owning engine")
        await pilot.press("q")  # no engine here: quitting asks nothing

    c.run(scenario)
    assert c.app.return_value is None
    assert engine._started  # the owner's engine goes on


def test_read_only_hides_every_key_that_changes_something(console: ConsoleFactory) -> None:
    c = console(hosted=False, read_only=True)
    key = c.submit("true", task_id="look_only")
    mutating = [spec for spec in KEYS if spec.mutating]
    assert {
        action_name(spec.action)[1][0] for spec in mutating if spec.action.startswith("task(")
    } == MUTATING_TASK_ACTIONS
    assert {
        action_name(spec.action)[0] for spec in mutating if not spec.action.startswith("task(")
    } == MUTATING_ACTIONS

    async def scenario(pilot: Any) -> None:
        dashboard = c.app.dashboard
        await c.select(pilot, dashboard.queued_panel, key)
        for spec in mutating:
            name, params = action_name(spec.action)
            assert dashboard.check_action(name, params) is False, spec.keys
        shown = {
            active.binding.description for active in c.app.active_bindings.values()
        }  # hidden, not greyed
        assert shown.isdisjoint(
            {"Kill", "Retry", "Mark success", "Mark failed", "Pause/resume", "New task"}
        )
        await pilot.press("k", "p", "plus", "n", "o", "s", "f")
        await pilot.pause(0.3)
        assert c.app.screen is dashboard
        assert c.store.pending_requests() == []
        assert "READ-ONLY" in str(dashboard.query_one("#header-mode").render())

    c.run(scenario)
    assert c.state(key) == "scheduled"


def test_moving_to_the_last_event_pages_older_history_from_the_store(
    console: ConsoleFactory,
) -> None:
    c = console(hosted=False)
    for number in range(300):  # 300 "scheduled" events, more than the live window (what fits)
        actions.submit_command(
            c.store,
            ["true"],
            executor="local",
            configured_executors=["local"],
            task_id=f"t{number:03d}",
        )

    async def scenario(pilot: Any) -> None:
        panel = c.app.dashboard.events_panel
        live = c.app.builder.events_limit  # the console's height (50 rows here)
        assert live < 300 - OLDER_PAGE
        await c.wait(pilot, lambda: len(panel.table.row_keys) == live, "the live window")
        await pilot.press("3")
        assert isinstance(c.app.focused, LiveTable)
        await pilot.press("ctrl+end")
        await c.wait(
            pilot, lambda: len(panel.table.row_keys) == live + OLDER_PAGE, "a page of history below"
        )
        oldest = panel.tasks[panel.table.row_keys[-1]]
        assert oldest.key.task_id == f"t{300 - live - OLDER_PAGE:03d}"
        assert len(panel.older) == OLDER_PAGE

    c.run(scenario)
