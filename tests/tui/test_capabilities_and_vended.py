"""Keys follow the executors' capability flags; executors' own panels and keys appear in the console.

The variant executors differ from the real ones only by one flag, so a key
going grey with them proves the console asked the flag, not the name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psutil
import pytest

from console.tui.confirm_screen import ConfirmScreen
from console.tui.vended_panel import VendedPanel
from tests.plugin_support import install_threads_plugin
from tests.tui.harness import Console

ConsoleFactory = Callable[..., Console]
NO_KILL = "tests.tui.variant_executors:LocalWithoutKill"
NO_SCALING = "tests.tui.variant_executors:LocalWithoutScaling"


@pytest.fixture(scope="module")
def threads_plugin() -> None:
    """The example executor plug-in, installed the way a third party's would be."""
    install_threads_plugin()


def test_the_local_executors_workers_panel_lists_its_live_worker_processes(
    console: ConsoleFactory,
) -> None:
    c = console()
    key = c.submit("sleep 30", task_id="busy_worker")

    async def scenario(pilot: Any) -> None:
        dashboard = c.app.dashboard
        (panel,) = dashboard.vended_panels
        assert panel.spec.title == "Workers"
        assert panel.frame_title == "5 Workers · local"
        widget: Any = panel.widget
        await c.wait(pilot, lambda: c.state(key) == "running", "running")

        def busy_row() -> Any:
            snapshot = c.app.snapshot
            rows = [
                row
                for row in (snapshot.workers if snapshot else ())
                if row.busy and row.task == str(key)
            ]
            return rows[0] if rows and str(rows[0].pid) in widget._cells else None

        row = await c.wait(pilot, busy_row, "a busy worker row for the task")
        assert psutil.Process(row.pid).is_running()
        assert "worker:busy" in " ".join(psutil.Process(row.pid).cmdline())

    c.run(scenario)


def test_a_capability_turned_off_greys_out_its_key(console: ConsoleFactory) -> None:
    c = console(executor=NO_KILL)
    key = c.submit("sleep 30", task_id="unkillable")

    async def scenario(pilot: Any) -> None:
        dashboard = c.app.dashboard
        await c.select(pilot, dashboard.running_panel, key)
        await c.wait(pilot, lambda: c.state(key) == "running", "running")
        assert dashboard.check_action("task", ("kill",)) is None  # shown, greyed out
        await pilot.press("k")
        await pilot.pause(0.3)
        assert not isinstance(c.app.screen, ConfirmScreen)
        assert c.store.pending_requests() == []
        why = {line.description: line.status for line in dashboard.help_lines()}
        assert why["Kill"] == "nokill cannot kill running tasks (supports_kill is off)"
        # The other keys still work.
        assert dashboard.check_action("parallelism", (1,)) is True

    c.run(scenario)
    assert c.state(key) == "running"


def test_without_live_scaling_plus_and_minus_are_greyed_out(console: ConsoleFactory) -> None:
    c = console(executor=NO_SCALING, parallelism=2)

    async def scenario(pilot: Any) -> None:
        dashboard = c.app.dashboard
        assert dashboard.check_action("parallelism", (1,)) is None
        await pilot.press("plus")
        await pilot.pause(0.3)
        assert c.store.pending_requests() == []

    c.run(scenario)
    assert c.parallelism("fixed") == 2


def test_a_plug_in_executors_panel_and_key_appear_and_work(
    threads_plugin: None, console: ConsoleFactory
) -> None:
    c = console(executor="threads", parallelism=2)

    async def scenario(pilot: Any) -> None:
        dashboard = c.app.dashboard
        (panel,) = dashboard.vended_panels
        assert isinstance(panel, VendedPanel)
        assert panel.frame_title == "5 Thread pool · threads"
        assert panel.widget is not None and panel.failed is None
        assert "G" in c.app.active_bindings
        await pilot.press("5")
        assert dashboard.check_action("vended", (0,)) is True
        await pilot.press("G")
        await c.wait(
            pilot, lambda: c.parallelism("threads") == 3, "the pool grew in the engine process"
        )
        commands = {command.title for command in c.app.get_system_commands(dashboard)}
        assert "Grow thread pool" in commands

    c.run(scenario)


def test_a_plug_in_key_needing_a_capability_that_is_off_is_greyed_out(
    threads_plugin: None, console: ConsoleFactory
) -> None:
    c = console(executor="tests.tui.variant_plugin_executors:ThreadsWithoutScaling", parallelism=2)

    async def scenario(pilot: Any) -> None:
        dashboard = c.app.dashboard
        assert dashboard.vended_panels[0].spec.title == "Thread pool"
        assert dashboard.check_action("vended", (0,)) is None
        await pilot.press("G")
        await pilot.pause(0.3)
        commands = {command.title for command in c.app.get_system_commands(dashboard)}
        assert "Grow thread pool" not in commands

    c.run(scenario)
    assert c.parallelism("stiffthreads") == 2


def _notes(c: Console) -> list[str]:
    return [notification.message for notification in c.app._notifications]


def test_a_greyed_out_plug_in_key_says_why_when_pressed(
    threads_plugin: None, console: ConsoleFactory
) -> None:
    c = console(executor="tests.tui.variant_plugin_executors:ThreadsWithoutScaling", parallelism=2)

    async def scenario(pilot: Any) -> None:
        await pilot.press("G")
        await c.wait(pilot, lambda: bool(_notes(c)), "the key answered")
        assert _notes(c) == ["Grow thread pool (G): stiffthreads lacks supports_live_scaling"]

    c.run(scenario)
    assert c.parallelism("stiffthreads") == 2


def test_a_plug_in_key_that_changes_something_says_read_only_when_pressed(
    threads_plugin: None, console: ConsoleFactory
) -> None:
    c = console(executor="threads", parallelism=2, hosted=False, read_only=True)

    async def scenario(pilot: Any) -> None:
        dashboard = c.app.dashboard
        assert dashboard.check_action("vended", (0,)) is False
        await pilot.press("G", "G")
        await c.wait(pilot, lambda: len(_notes(c)) >= 2, "each press answered")
        assert _notes(c) == ["read-only console: Grow thread pool (G) not available"] * 2
        assert c.store.pending_requests() == []

    c.run(scenario)
