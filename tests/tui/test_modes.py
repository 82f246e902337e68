"""Attached to another process's engine, read-only, and paging the event history."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from console import actions
from console.tui.confirm_screen import ConfirmScreen
from console.tui.events_panel import OLDER_PAGE
from console.tui.keys import KEYS, MUTATING_ACTIONS, MUTATING_TASK_ACTIONS, action_name
from console.tui.live_table import LiveTable
from store import Store
from tests.tui.harness import Console

REPO = Path(__file__).resolve().parents[2]

ConsoleFactory = Callable[..., Console]


@pytest.fixture
def scheduler(home: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``execconsole scheduler`` on ``home``: an engine some other process owns."""
    process = subprocess.Popen(
        [sys.executable, "-m", "console", "scheduler", "--parallelism", "2"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        with Store(home / "execconsole.db") as store:
            deadline = time.monotonic() + 60
            while (store.lease_owner() or {}).get("pid") != process.pid:
                assert process.poll() is None, "the scheduler exited"
                assert time.monotonic() < deadline, "the scheduler did not take the store"
                time.sleep(0.05)
        yield process
    finally:
        process.terminate()
        process.wait(60)


def test_attached_console_sends_its_keys_as_requests_to_the_owning_engine(
    console: ConsoleFactory, scheduler: subprocess.Popen[bytes]
) -> None:
    c = console(hosted=False, attached_to=c_owner(scheduler))
    key = c.submit("sleep 30", task_id="remote")

    def done(kind: str) -> bool:
        rows = c.store.conn.execute(
            "SELECT status FROM requests WHERE kind = ? ORDER BY id DESC LIMIT 1", (kind,)
        ).fetchall()
        return bool(rows) and rows[0][0] == "done"

    async def scenario(pilot: Any) -> None:
        assert f"attached to the engine pid {scheduler.pid}" in c.app.title
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
        await c.wait(pilot, lambda: done("pause"), "the owning engine paused")
        assert c.store.get_setting("paused") is True
        await pilot.press("plus")
        await c.wait(pilot, lambda: done("parallelism"), "its parallelism changed")
        assert c.store.get_setting("parallelism.local") == 3
        await c.select(pilot, c.app.dashboard.running_panel, key)
        await pilot.press("k")  # the try is read from the store first, then asked about
        await c.wait(pilot, lambda: isinstance(c.app.screen, ConfirmScreen), "asked")
        await pilot.press("y")
        await c.wait(pilot, lambda: c.state(key) == "failed", "killed by the owning engine")
        await pilot.press("q")  # not this console's engine: quitting asks nothing

    c.run(scenario)
    assert c.app.return_value is None
    assert scheduler.poll() is None  # the owner's engine goes on
    assert c.store.lease_owner()["pid"] == scheduler.pid  # type: ignore[index]


def c_owner(scheduler: subprocess.Popen[bytes]) -> dict[str, Any]:
    with Store(Path(os.environ["EXECCONSOLE_HOME"]) / "execconsole.db") as store:
        found = store.lease_owner()
    assert found is not None and found["pid"] == scheduler.pid
    return found


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
            {
                "Kill",
                "Retry",
                "Mark success",
                "Mark failed",
                "Cancel run",
                "Pause/resume",
                "New task",
            }
        )
        await pilot.press("k", "p", "plus", "n", "o", "s", "f", "C")
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
