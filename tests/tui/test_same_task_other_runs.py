"""Ad-hoc tasks with the same program: each `submit` is its own run, and the panel tells them apart."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from console.tui.formatting import distinct_task_labels
from executors.task_key import TaskKey
from tests.tui.harness import Console

ConsoleFactory = Callable[..., Console]


def test_labels_that_clash_get_their_runs_end_and_others_stay_short() -> None:
    first = TaskKey("adhoc", "sleep", "manual__20261122T154718_0f34cc")
    second = TaskKey("adhoc", "sleep", "manual__20261122T154719_9a1b2c")
    alone = TaskKey("demo", "load", "manual__20261122T154719_9a1b2c")
    labels = distinct_task_labels([first, second, alone])
    assert labels == {
        first: "adhoc/sleep#1 @0f34cc",
        second: "adhoc/sleep#1 @9a1b2c",
        alone: "demo/load#1",
    }


def test_two_running_submits_of_one_program_read_differently_in_the_running_panel(
    console: ConsoleFactory,
) -> None:
    c = console()
    keys = [c.submit("sleep 30", task_id="sleep") for _ in range(2)]
    assert keys[0].run_id != keys[1].run_id

    def task_cells() -> list[str]:
        panel = c.app.dashboard.running_panel
        rows = [c.row_of(panel, key) for key in keys]
        return [str(panel.table.get_row_at(row)[0]) for row in rows if row is not None]

    async def scenario(pilot: Any) -> None:
        await c.wait(pilot, lambda: len(task_cells()) == 2, "both running")
        first, second = task_cells()
        assert first != second
        assert first.endswith(keys[0].run_id[-6:]) and second.endswith(keys[1].run_id[-6:])

    c.run(scenario)
