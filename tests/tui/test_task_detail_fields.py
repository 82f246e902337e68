"""The task detail (enter) shows what the store holds: real state names, commands as
a shell would read them, and why a try that never ran has no log. On a real console.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from rich.console import Console as RichConsole
from textual.containers import Vertical
from textual.widgets import Log, Static

from console.tui.task_detail_screen import TaskDetailScreen
from executors.task_key import TaskKey
from store import TaskSubmission
from tests.tui.harness import Console

ConsoleFactory = Callable[..., Console]
RUN = "manual__20261122T120000_d3ta11"


def text_of(screen: TaskDetailScreen, selector: str) -> str:
    """What a Static of the screen draws, as plain text."""
    console = RichConsole(width=200, file=io.StringIO(), record=True, color_system=None)
    console.print(screen.query_one(selector, Static).content)
    return console.export_text()


def field(screen: TaskDetailScreen, name: str) -> str:
    """The value the Fields table shows for ``name``."""
    for line in text_of(screen, "#detail-fields-table").splitlines():
        if line.startswith(f"{name} "):
            return line[len(name) :].strip()
    raise AssertionError(f"no field {name}")


async def open_detail(c: Console, pilot: Any, key: TaskKey) -> TaskDetailScreen:
    """The detail of ``key``, as enter opens it, once it shows that try."""
    await c.app.push_screen(TaskDetailScreen(c.record(key).id))
    screen = c.app.screen
    assert isinstance(screen, TaskDetailScreen)
    await c.wait(pilot, lambda: screen.detail is not None, f"the detail of {key}")
    return screen


def submit(c: Console, *tasks: TaskSubmission) -> dict[str, TaskKey]:
    return {key.task_id: key for key in c.store.submit("detail", RUN, list(tasks))}


def test_an_upstream_failed_try_shows_its_state_by_name_and_why_it_has_no_log(
    console: ConsoleFactory,
) -> None:
    c = console()
    keys = submit(
        c,
        TaskSubmission(task_id="fails", command=["sh", "-c", "exit 1"], executor="local"),
        TaskSubmission(task_id="after", command=["true"], executor="local", upstream=["fails"]),
    )

    async def scenario(pilot: Any) -> None:
        after = keys["after"]
        await c.wait(pilot, lambda: c.state(after) == "upstream_failed", "upstream failed")
        screen = await open_detail(c, pilot, after)

        title = text_of(screen, "#detail-title")
        assert title.split()[1] == "upstream_failed"
        assert field(screen, "state") == "upstream_failed"
        history = text_of(screen, "#detail-history-table")
        assert [line.split()[2:5] for line in history.splitlines()[1:]] == [
            ["-", "→", "scheduled"],
            ["scheduled", "→", "upstream_failed"],
        ]
        assert "upstream✗" not in title + text_of(screen, "#detail-tries-table")

        assert screen.query_one("#detail-log", Log).lines == ["never started: upstream failed"]
        assert not screen.query_one("#detail-log-frame", Vertical).border_subtitle

    c.run(scenario)


def test_a_waiting_try_shows_its_command_as_a_shell_reads_it_and_that_it_has_not_started(
    console: ConsoleFactory,
) -> None:
    c = console(paused=True)  # nothing starts
    keys = submit(
        c,
        TaskSubmission(
            task_id="quoted",
            command=["sh", "-c", 'echo "run $X done"; sleep 0.2'],
            executor="local",
        ),
        TaskSubmission(
            task_id="shell", command=['echo "a b" | wc -c'], executor="local", shell=True
        ),
    )

    async def scenario(pilot: Any) -> None:
        screen = await open_detail(c, pilot, keys["quoted"])
        assert field(screen, "command") == """sh -c 'echo "run $X done"; sleep 0.2'"""
        assert screen.query_one("#detail-log", Log).lines == ["not started yet"]
        await pilot.press("escape")

        screen = await open_detail(c, pilot, keys["shell"])
        assert field(screen, "command") == 'echo "a b" | wc -c'  # the shell's string as written

    c.run(scenario)
