"""C (shift+c): cancel the selected task's whole run, as `execconsole runs cancel dag/run` does.

On a real console: its engine in a child process with the real LocalExecutor,
a real SQLite store, the app under Textual's Pilot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psutil

from console.tui.confirm_screen import ConfirmScreen
from console.tui.task_detail_screen import TaskDetailScreen
from executors.task_key import TaskKey
from store import TaskSubmission
from tests.tui.harness import Console

ConsoleFactory = Callable[..., Console]
RUN = "manual__20261121T093000_c4ac31"


def submit_run(c: Console, dag_id: str = "demo") -> dict[str, TaskKey]:
    """A run of three: one that runs long, one waiting for a slot, one after the first."""
    keys = c.store.submit(
        dag_id,
        RUN,
        [
            TaskSubmission(
                task_id="long",
                command=["sh", "-c", "sleep 60 & sleep 60; wait"],
                executor="local",
                priority=9,
                retries=2,  # a cancelled run retries nothing, whatever the task allows
            ),
            TaskSubmission(task_id="waiting", command=["sleep", "60"], executor="local"),
            TaskSubmission(task_id="after", command=["true"], executor="local", upstream=["long"]),
        ],
    )
    return {key.task_id: key for key in keys}


def cancel_requests(c: Console) -> int:
    (count,) = c.store.conn.execute(
        "SELECT count(*) FROM requests WHERE kind = 'cancel'"
    ).fetchone()
    return int(count)


def notified(c: Console, text: str) -> bool:
    return any(text in notification.message for notification in c.app._notifications)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def help_line(c: Console) -> Any:
    (line,) = [line for line in c.app.dashboard.help_lines() if line.keys == "C"]
    return line


def palette_titles(c: Console) -> set[str]:
    return {command.title for command in c.app.get_system_commands(c.app.dashboard)}


def test_shift_c_asks_naming_the_run_then_kills_and_fails_all_it_has_left(
    console: ConsoleFactory,
) -> None:
    c = console(parallelism=1)
    keys = submit_run(c)
    long, waiting, after = keys["long"], keys["waiting"], keys["after"]
    elsewhere = c.submit("true", task_id="another_run")  # its own run: left alone
    processes: list[int] = []

    async def scenario(pilot: Any) -> None:
        await c.wait(
            pilot, lambda: c.state(long) == "running" and c.record(long).pid, "long running"
        )
        pid = c.record(long).pid
        assert pid is not None
        processes.extend([pid, *(p.pid for p in psutil.Process(pid).children(recursive=True))])
        await c.select(pilot, c.app.dashboard.running_panel, long)
        await pilot.press("C")
        await c.wait(pilot, lambda: isinstance(c.app.screen, ConfirmScreen), "asked")
        dialog = c.app.screen
        assert isinstance(dialog, ConfirmScreen)
        assert dialog.question == f"Cancel run demo/{RUN}: 3 tasks of 3 still to run?"
        assert "1 running: killed, with its whole process tree." in dialog.detail
        assert "2 not started: failed now, or upstream_failed" in dialog.detail
        assert "None is retried" in dialog.detail
        assert (dialog.confirm_label, dialog.decline_label) == ("Cancel run", "Keep it running")
        assert cancel_requests(c) == 0  # asking writes nothing
        await pilot.press("y")
        await c.wait(
            pilot,
            lambda: (
                [c.state(k) for k in (long, waiting, after)]
                == ["failed", "failed", "upstream_failed"]
            ),
            "every task of the run ended",
        )
        await c.wait(pilot, lambda: all(gone(p) for p in processes), "its processes gone")
        await c.wait(pilot, lambda: notified(c, f"cancelling demo/{RUN}"), "the outcome shown")
        await c.wait(pilot, lambda: c.state(elsewhere) == "success", "the other run went on")

    c.run(scenario)
    record = c.record(long)
    assert record.no_retry and f"cancelled by operator with its run demo/{RUN}" in (
        record.reason or ""
    )
    assert len(c.store.tries(record)) == 1  # retries=2, and no second try
    assert len(c.store.tries(c.record(waiting))) == 1
    assert cancel_requests(c) == 1
    assert c.store.run("demo", RUN).finished  # type: ignore[union-attr]


def test_shift_c_declined_changes_nothing_on_the_dashboard_or_the_task_detail(
    console: ConsoleFactory,
) -> None:
    c = console(paused=True)  # nothing starts: every task of the run waits
    keys = submit_run(c)

    async def scenario(pilot: Any) -> None:
        dashboard = c.app.dashboard
        await c.select(pilot, dashboard.queued_panel, keys["waiting"])
        assert help_line(c).group == "Task" and help_line(c).status == ""
        assert "Cancel run" in palette_titles(c)
        await pilot.press("C")
        await c.wait(pilot, lambda: isinstance(c.app.screen, ConfirmScreen), "asked")
        dialog = c.app.screen
        assert isinstance(dialog, ConfirmScreen)
        assert dialog.question == f"Cancel run demo/{RUN}: 3 tasks of 3 still to run?"
        assert "running" not in dialog.detail.splitlines()[0]  # none runs: no line for them
        await pilot.press("n")
        await c.wait(pilot, lambda: c.app.screen is dashboard, "declined")

        # The task detail offers the same key, and asks the same question.
        await pilot.press("enter")
        await c.wait(pilot, lambda: isinstance(c.app.screen, TaskDetailScreen), "detail shown")
        detail = c.app.screen
        await c.wait(pilot, lambda: detail.check_action("task", ("cancel_run",)) is True, "C on")
        await pilot.press("C")
        await c.wait(pilot, lambda: isinstance(c.app.screen, ConfirmScreen), "asked there too")
        assert c.app.screen.question.startswith(f"Cancel run demo/{RUN}:")  # type: ignore[attr-defined]
        await pilot.press("escape")
        await c.wait(pilot, lambda: c.app.screen is detail, "declined with esc")
        await pilot.press("escape")
        await c.wait(pilot, lambda: c.app.screen is dashboard, "back on the dashboard")

    c.run(scenario)
    assert cancel_requests(c) == 0
    assert c.store.pending_requests() == []
    assert {k: c.state(key) for k, key in keys.items()} == dict.fromkeys(keys, "scheduled")


def test_shift_c_on_a_finished_run_says_so_without_asking(console: ConsoleFactory) -> None:
    c = console()
    key = c.submit("true", task_id="quick")

    async def scenario(pilot: Any) -> None:
        await c.wait(pilot, lambda: c.state(key) == "success", "finished")
        await c.select(pilot, c.app.dashboard.events_panel, key)
        await pilot.press("C")
        await c.wait(
            pilot,
            lambda: notified(
                c, f"run adhoc/{key.run_id} has finished (success): nothing to cancel"
            ),
            "refused",
        )
        assert not any(isinstance(s, ConfirmScreen) for s in c.app.screen_stack)

    c.run(scenario)
    assert cancel_requests(c) == 0


def test_shift_c_is_hidden_and_does_nothing_in_a_read_only_console(console: ConsoleFactory) -> None:
    c = console(hosted=False, read_only=True)
    keys = submit_run(c)

    async def scenario(pilot: Any) -> None:
        dashboard = c.app.dashboard
        await c.select(pilot, dashboard.queued_panel, keys["waiting"])
        assert dashboard.check_action("task", ("cancel_run",)) is False
        assert help_line(c).status == "hidden: read-only console"
        assert "Cancel run" not in palette_titles(c)
        await pilot.press("C")
        await pilot.pause(0.3)
        assert c.app.screen is dashboard
        await pilot.press("enter")
        await c.wait(pilot, lambda: isinstance(c.app.screen, TaskDetailScreen), "detail shown")
        detail = c.app.screen
        await c.wait(pilot, lambda: getattr(detail, "detail", None) is not None, "detail loaded")
        assert detail.check_action("task", ("cancel_run",)) is False
        shown = {active.binding.description for active in c.app.active_bindings.values()}
        assert "Cancel run" not in shown and "Logs" in shown
        await pilot.press("C")
        await pilot.pause(0.3)
        assert c.app.screen is detail

    c.run(scenario)
    assert cancel_requests(c) == 0
    assert {k: c.state(key) for k, key in keys.items()} == dict.fromkeys(keys, "scheduled")
