"""A run the console showed at work says so when it ends: one notification naming the
run and its outcome, once, however long the console stays open afterwards.

On a real console (its engine in a child process, the LocalExecutor, a real store).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from store import TaskSubmission
from tests.tui.harness import Console

ConsoleFactory = Callable[..., Console]
RUN = "manual__20261122T100000_f1n1sh"


def notices(c: Console) -> list[Any]:
    return [n for n in c.app._notifications if (n.title or "").startswith("run")]


def test_a_run_that_ends_is_announced_once_with_its_outcome(console: ConsoleFactory) -> None:
    c = console()

    def task(task_id: str, command: str, upstream: list[str] | None = None) -> TaskSubmission:
        return TaskSubmission(
            task_id=task_id,
            command=["sh", "-c", command],
            executor="local",
            upstream=upstream or [],
        )

    keys = c.store.submit(
        "nightly",
        RUN,
        [
            task("extract", "sleep 0.5"),
            task("load", "true", ["extract"]),
            task("report", "exit 1", ["extract"]),
            task("email", "true", ["report"]),
        ],
    )
    adhoc = c.submit("true", task_id="quick")  # a run of its own, not a workflow's

    async def scenario(pilot: Any) -> None:
        await c.wait(pilot, lambda: c.state(keys[0]) == "running", "the run at work")
        assert notices(c) == []
        (notice,) = await c.wait(pilot, lambda: notices(c), "the run's end announced")
        assert notice.title == "run finished"
        assert notice.message == (
            f"nightly/{RUN} finished: 2 succeeded, 1 failed, 1 upstream_failed"
        )
        assert notice.severity == "warning"
        await pilot.pause(2.5)  # several more refreshes
        assert len(notices(c)) == 1
        assert c.state(adhoc) == "success"  # its end was not announced

    c.run(scenario)


def test_a_run_that_had_ended_before_the_console_opened_is_not_announced(
    console: ConsoleFactory,
) -> None:
    first = console()
    keys = first.store.submit(
        "old", RUN, [TaskSubmission(task_id="done", command=["true"], executor="local")]
    )

    async def run_it(pilot: Any) -> None:
        await first.wait(pilot, lambda: first.state(keys[0]) == "success", "the old run ended")

    first.run(run_it)
    first.close()
    c = console()

    async def scenario(pilot: Any) -> None:
        await c.wait(pilot, lambda: c.app.polls >= 5, "a few refreshes")
        assert notices(c) == []

    c.run(scenario)
