"""A task key whose action cannot apply to the try's state says so in one line, before any dialog.

The line is the one ``console.actions`` refuses the action with. Where the
console knows the try's state (Running, Queued, the task detail) the key is
greyed out in the footer and the help says why; an Events row shows the state
of its event, so there the try is read from the store when the key is pressed.
On a real console: its engine in a child process, the real LocalExecutor, a
real SQLite store, the app under Textual's Pilot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.widgets._footer import FooterKey

from console.tui.confirm_screen import ConfirmScreen
from console.tui.task_detail_screen import TaskDetailScreen
from executors.task_key import TaskKey
from store import TaskSubmission
from tests.tui.harness import Console

ConsoleFactory = Callable[..., Console]
RUN = "manual__20261122T120000_a1b2c3"


def notified(c: Console, text: str) -> bool:
    return any(text in notification.message for notification in c.app._notifications)


def times(c: Console, text: str) -> int:
    return sum(text in notification.message for notification in c.app._notifications)


def requests(c: Console) -> list[str]:
    return [kind for (kind,) in c.store.conn.execute("SELECT kind FROM requests").fetchall()]


def asked(c: Console) -> bool:
    return any(isinstance(screen, ConfirmScreen) for screen in c.app.screen_stack)


def footer_key(screen: Any, key: str) -> FooterKey:
    (found,) = [entry for entry in screen.query(FooterKey) if entry.key == key]
    return found


def palette_titles(c: Console) -> set[str]:
    return {command.title for command in c.app.get_system_commands(c.app.dashboard)}


def submit_chain(c: Console) -> dict[str, TaskKey]:
    """``long`` runs a minute; ``after`` waits for it (scheduled, not handed out)."""
    keys = c.store.submit(
        "demo",
        RUN,
        [
            TaskSubmission(task_id="long", command=["sleep", "60"], executor="local"),
            TaskSubmission(task_id="after", command=["true"], executor="local", upstream=["long"]),
        ],
    )
    return {key.task_id: key for key in keys}


def test_k_on_the_detail_of_a_finished_task_refuses_in_one_line_without_asking(
    console: ConsoleFactory,
) -> None:
    c = console()
    key = c.submit("true", task_id="notify_done")

    async def scenario(pilot: Any) -> None:
        await c.wait(pilot, lambda: c.state(key) == "success", "finished")
        await c.select(pilot, c.app.dashboard.events_panel, key)
        await pilot.press("enter")
        await c.wait(pilot, lambda: isinstance(c.app.screen, TaskDetailScreen), "detail shown")
        detail = c.app.screen
        await c.wait(pilot, lambda: getattr(detail, "detail", None) is not None, "detail loaded")
        assert detail.check_action("task", ("kill",)) is None  # greyed out, not offered
        await c.wait(pilot, lambda: footer_key(detail, "k").has_class("-disabled"), "k greyed")
        assert detail.check_action("task", ("retry",)) is True
        await pilot.press("k")
        await c.wait(
            pilot,
            lambda: notified(
                c, f"{key} is success: only scheduled, queued or running tasks can be killed"
            ),
            "refused",
        )
        # Marking it with the state it has changes nothing: greyed out too, no question.
        assert detail.check_action("task", ("mark_success",)) is None
        assert detail.check_action("task", ("mark_failed",)) is True
        await pilot.press("s")
        await c.wait(
            pilot, lambda: notified(c, "is already success: nothing to change"), "s refused"
        )
        await pilot.pause(0.2)
        assert not asked(c)
        assert c.app.screen is detail

    c.run(scenario)
    assert requests(c) == []


def test_keys_a_running_try_refuses_are_greyed_out_and_say_why_when_pressed(
    console: ConsoleFactory,
) -> None:
    c = console()
    key = c.submit("sleep 60", task_id="busy")

    async def scenario(pilot: Any) -> None:
        dashboard = c.app.dashboard
        await c.wait(pilot, lambda: c.state(key) == "running", "running")
        await c.select(pilot, dashboard.running_panel, key)
        for name in ("retry", "retry_downstream", "mark_success", "mark_failed", "priority_up"):
            assert dashboard.check_action("task", (name,)) is None, name
        assert dashboard.check_action("task", ("kill",)) is True
        await c.wait(pilot, lambda: footer_key(dashboard, "f").has_class("-disabled"), "greyed")
        assert not footer_key(dashboard, "k").has_class("-disabled")
        why = {line.description: line.status for line in dashboard.help_lines()}
        assert why["Mark failed"] == "it is running: kill it before marking it failed"
        assert why["Kill"] == ""
        assert {"Retry", "Mark success", "Mark failed"}.isdisjoint(palette_titles(c))
        assert "Kill" in palette_titles(c)

        await pilot.press("f")
        await c.wait(
            pilot,
            lambda: notified(c, f"{key} is running: kill it before marking it failed"),
            "f refused",
        )
        await pilot.press("r")
        await c.wait(
            pilot,
            lambda: notified(
                c,
                f"{key} is running: only failed, upstream_failed or success tasks can be "
                "retried (kill it first)",
            ),
            "r refused",
        )
        await pilot.press("R")
        await c.wait(pilot, lambda: times(c, "is running: only failed") == 2, "R refused")
        await pilot.pause(0.2)
        assert not asked(c)

    c.run(scenario)
    assert requests(c) == []
    assert c.state(key) in ("running", "failed")  # failed only when the fixture kills it


def test_k_on_an_events_row_reads_the_trys_state_from_the_store_before_asking(
    console: ConsoleFactory,
) -> None:
    c = console()
    key = c.submit("true", task_id="quick")

    async def scenario(pilot: Any) -> None:
        await c.wait(pilot, lambda: c.state(key) == "success", "finished")
        panel = c.app.dashboard.events_panel
        await c.select(pilot, panel, key)
        # An Events row carries its event's state, perhaps long past: the key stays
        # offered, and the try is read when it is pressed.
        await pilot.press("k")
        await c.wait(
            pilot,
            lambda: notified(
                c, f"{key} is success: only scheduled, queued or running tasks can be killed"
            ),
            "refused",
        )
        await pilot.press("s")
        await c.wait(
            pilot, lambda: notified(c, f"{key} is already success: nothing to change"), "s refused"
        )
        assert not asked(c)
        await pilot.press("f")
        await c.wait(pilot, lambda: asked(c), "f asks: a succeeded try can be marked failed")
        await pilot.press("n")
        await c.wait(pilot, lambda: c.app.screen is c.app.dashboard, "declined")

    c.run(scenario)
    assert requests(c) == []


def test_the_footer_greys_keys_in_place_as_the_selection_moves(console: ConsoleFactory) -> None:
    c = console(parallelism=1)
    keys = submit_chain(c)

    async def scenario(pilot: Any) -> None:
        dashboard = c.app.dashboard
        await c.wait(pilot, lambda: c.state(keys["long"]) == "running", "long running")
        await c.select(pilot, dashboard.running_panel, keys["long"])
        await c.wait(pilot, lambda: footer_key(dashboard, "s").has_class("-disabled"), "greyed")
        entries = [id(entry) for entry in dashboard.query(FooterKey)]
        # A waiting try may be marked: s and f light up, and the footer keeps its widgets.
        await c.select(pilot, dashboard.queued_panel, keys["after"])
        await c.wait(
            pilot, lambda: not footer_key(dashboard, "s").has_class("-disabled"), "s offered"
        )
        assert not footer_key(dashboard, "f").has_class("-disabled")
        assert [id(entry) for entry in dashboard.query(FooterKey)] == entries
        assert dashboard.check_action("task", ("mark_success",)) is True

    c.run(scenario)


def test_task_keys_do_not_act_on_a_row_that_has_left_the_screen(console: ConsoleFactory) -> None:
    # Running panel focused on a try; the try ends and its row goes: the keys must not
    # act on it unseen (a retry, or "mark failed" turning a succeeded run failed).
    c = console()
    gate = c.home / "gate"
    key = c.submit(f"sh -c 'while [ ! -e {gate} ]; do sleep 0.05; done'", task_id="leaves")

    async def scenario(pilot: Any) -> None:
        dashboard = c.app.dashboard
        await c.wait(pilot, lambda: c.state(key) == "running", "running")
        await c.select(pilot, dashboard.running_panel, key)
        assert dashboard.selected_task is not None
        assert dashboard.check_action("task", ("kill",)) is True
        gate.touch()
        await c.wait(pilot, lambda: c.state(key) == "success", "finished")
        await c.wait(pilot, lambda: not dashboard.running_panel.tasks, "its row gone")
        assert dashboard.selected_task is None
        offered = lambda: [  # noqa: E731
            entry.key
            for entry in dashboard.query(FooterKey)
            if entry.key in ("k", "r", "f") and not entry.has_class("-disabled")
        ]
        await c.wait(pilot, lambda: offered() == [], "k, r and f no longer offered")
        await pilot.press("r", "f", "k")
        await c.wait(pilot, lambda: times(c, "select a task first") == 3, "each key answered")
        assert not asked(c)

    c.run(scenario)
    assert requests(c) == []
    assert c.state(key) == "success"
