"""R (shift+r): retry the selected task and every task downstream of it (Airflow's clear
with downstream), as `execconsole tasks retry KEY --downstream` does.

On a real console: its engine in a child process with the real LocalExecutor,
a real SQLite store, the app under Textual's Pilot.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from console.tui.confirm_screen import ConfirmScreen
from console.tui.task_detail_screen import TaskDetailScreen
from executors.task_key import TaskKey
from store import TaskSubmission
from tests.tui.harness import Console

ConsoleFactory = Callable[..., Console]
RUN = "manual__20261122T100000_r3d0wn"


def submit_chain(c: Console, tally: Path) -> dict[str, TaskKey]:
    """first -> second -> third, each adding its id to ``tally`` when it runs."""

    def task(task_id: str, upstream: list[str]) -> TaskSubmission:
        return TaskSubmission(
            task_id=task_id,
            command=["sh", "-c", f"echo {task_id} >> {tally}"],
            executor="local",
            upstream=upstream,
        )

    keys = c.store.submit(
        "chain",
        RUN,
        [task("first", []), task("second", ["first"]), task("third", ["second"])],
    )
    return {key.task_id: key for key in keys}


def retry_requests(c: Console) -> int:
    (count,) = c.store.conn.execute("SELECT count(*) FROM requests WHERE kind = 'retry'").fetchone()
    return int(count)


def tries(c: Console, key: TaskKey) -> list[str]:
    return [str(t.state) for t in c.store.tries(c.record(key))]


def test_shift_r_asks_then_runs_the_task_and_everything_below_it_once_more(
    console: ConsoleFactory, tmp_path: Path
) -> None:
    c = console()
    tally = tmp_path / "tally"
    keys = submit_chain(c, tally)
    first, second, third = keys["first"], keys["second"], keys["third"]

    async def scenario(pilot: Any) -> None:
        await c.wait(pilot, lambda: c.state(third) == "success", "the chain ran")
        await c.select(pilot, c.app.dashboard.events_panel, first)
        await pilot.press("R")
        await c.wait(pilot, lambda: isinstance(c.app.screen, ConfirmScreen), "asked")
        dialog = c.app.screen
        assert isinstance(dialog, ConfirmScreen)
        assert dialog.question.startswith("Retry chain/first")
        assert dialog.question.endswith("and every task downstream of it?")
        assert "in dependency order" in dialog.detail
        assert retry_requests(c) == 0  # asking writes nothing
        await pilot.press("y")
        await c.wait(
            pilot,
            lambda: [tries(c, k) for k in (first, second, third)] == [["success", "success"]] * 3,
            "each task ran once more",
        )

    c.run(scenario)
    # In dependency order, each task twice: once in the run, once after the retry.
    assert tally.read_text().split() == ["first", "second", "third"] * 2
    assert retry_requests(c) == 1


def test_shift_r_declined_changes_nothing_and_the_detail_screen_offers_it(
    console: ConsoleFactory, tmp_path: Path
) -> None:
    c = console()
    keys = submit_chain(c, tmp_path / "tally")

    async def scenario(pilot: Any) -> None:
        await c.wait(pilot, lambda: c.state(keys["third"]) == "success", "the chain ran")
        await c.select(pilot, c.app.dashboard.events_panel, keys["second"])
        await pilot.press("R")
        await c.wait(pilot, lambda: isinstance(c.app.screen, ConfirmScreen), "asked")
        await pilot.press("n")
        await c.wait(pilot, lambda: c.app.screen is c.app.dashboard, "declined")
        await pilot.press("enter")
        await c.wait(pilot, lambda: isinstance(c.app.screen, TaskDetailScreen), "detail shown")
        detail = c.app.screen
        await c.wait(pilot, lambda: getattr(detail, "detail", None) is not None, "detail loaded")
        assert detail.check_action("task", ("retry_downstream",)) is True
        await pilot.press("R")
        await c.wait(pilot, lambda: isinstance(c.app.screen, ConfirmScreen), "asked there too")
        await pilot.press("escape")
        await c.wait(pilot, lambda: c.app.screen is detail, "declined with esc")

    c.run(scenario)
    assert retry_requests(c) == 0
    assert [len(tries(c, key)) for key in keys.values()] == [1, 1, 1]


def test_shift_r_is_hidden_in_a_read_only_console(console: ConsoleFactory, tmp_path: Path) -> None:
    c = console(hosted=False, read_only=True)
    keys = submit_chain(c, tmp_path / "tally")

    async def scenario(pilot: Any) -> None:
        dashboard = c.app.dashboard
        await c.select(pilot, dashboard.queued_panel, keys["first"])
        assert dashboard.check_action("task", ("retry_downstream",)) is False
        await pilot.press("R")
        await pilot.pause(0.3)
        assert c.app.screen is dashboard

    c.run(scenario)
    assert retry_requests(c) == 0
