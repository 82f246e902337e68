"""R's notification is a line or two: what was retried and how many tasks below it run
again, not the engine's list of every key (dozens of them in a real workflow).

Each task's own step stays in the audit log: the Events panel and the detail screen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from console.tui.confirm_screen import ConfirmScreen
from store import TaskSubmission
from tests.tui.harness import Console

ConsoleFactory = Callable[..., Console]
RUN = "manual__20261122T100000_f4n0ut"
BELOW = 12


def test_shift_r_says_in_one_short_line_what_it_retried_and_how_many_tasks_below(
    console: ConsoleFactory,
) -> None:
    c = console()
    keys = c.store.submit(
        "fan",
        RUN,
        [TaskSubmission(task_id="root", command=["true"], executor="local")]
        + [
            TaskSubmission(
                task_id=f"leaf_{n:02d}", command=["true"], executor="local", upstream=["root"]
            )
            for n in range(BELOW)
        ],
    )
    root = keys[0]

    def toasts() -> list[Any]:
        return [n for n in c.app._notifications if "with downstream" in (n.title or "")]

    async def scenario(pilot: Any) -> None:
        await c.wait(pilot, lambda: all(c.state(k) == "success" for k in keys), "the run succeeded")
        await c.select(pilot, c.app.dashboard.events_panel, root)
        await pilot.press("R")
        await c.wait(pilot, lambda: isinstance(c.app.screen, ConfirmScreen), "asked")
        await pilot.press("y")
        (toast,) = await c.wait(pilot, toasts, "R's outcome shown")
        message = toast.message
        assert message == (
            f"retrying fan/root#1 and {BELOW} tasks downstream; each one is in Events"
        ), message
        assert "\n" not in message and len(message) <= 80
        assert RUN not in message  # no key is listed in full

    c.run(scenario)
