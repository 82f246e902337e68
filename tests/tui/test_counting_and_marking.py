"""What the console counts and when it asks: on a real console with its real engine process.

- Quitting and stopping count tries as the header does: handed out to the
  executor (not started) is waiting, not running.
- A retried try (up_for_retry: its next try is already in the store) reads as
  history, "retried", never as pending work.
- s and f refuse a try that console.actions.mark would refuse, before asking.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from console.tui.confirm_screen import ConfirmScreen
from console.tui.launch import stop_engine
from console.tui.palette import STATE_LABELS
from console.tui.quit_screen import QuitScreen
from tests.tui.harness import Console

ConsoleFactory = Callable[..., Console]


def notified(c: Console, text: str) -> bool:
    return any(text in notification.message for notification in c.app._notifications)


# ---- bug 1: handed out is not running ----------------------------------------------------


def test_quitting_and_stopping_count_handed_out_tries_as_waiting_not_running(
    console: ConsoleFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    c = console(parallelism=2)
    gate = tmp_path / "never"  # the tasks run until killed
    for number in range(6):
        c.submit(f"while [ ! -e {gate} ]; do sleep 0.05; done", task_id=f"held_{number}")
    seen: dict[str, int] = {}

    def settled() -> bool:
        """Two running and some handed out, as the header and the engine's status both say."""
        snapshot, status = c.app.snapshot, c.status()
        if snapshot is None or status is None:
            return False
        counts = snapshot.header.counts
        local = status.executors["local"]
        seen.update(counts)
        return (
            counts.get("running", 0) == 2
            and counts.get("queued", 0) > 0
            and local.running == 2
            and local.backlog == counts["queued"]
        )

    async def scenario(pilot: Any) -> None:
        await c.wait(pilot, settled, "2 running and some handed out")
        header = str(c.app.dashboard.header.counts_line.render())
        assert f"{seen['queued']} queued · 2 running" in header
        await pilot.press("q")
        await c.wait(pilot, lambda: isinstance(c.app.screen, QuitScreen), "asked")
        screen = c.app.screen
        assert isinstance(screen, QuitScreen)
        title = str(screen.query_one(".dialog-title").render())
        detail = str(screen.query_one(".dialog-detail").render())
        assert title == "Quit? 2 tasks are running."
        waiting = seen["queued"] + seen.get("scheduled", 0)
        assert detail.startswith(f"{waiting} more wait to start ({seen['queued']} queued at")
        await pilot.press("escape")
        await c.wait(pilot, lambda: c.app.screen is c.app.dashboard, "stayed")
        c.app.exit("finish")  # what SIGTERM or SIGHUP to the console does

    c.run(scenario)
    assert c.engine is not None
    capsys.readouterr()
    stop_engine(c.engine, "kill")  # what launch() does then (kill: the tasks never end)
    said = capsys.readouterr().err
    assert (
        f"stopping the engine: killing 2 running tasks; {seen['queued']} queued "
        "but not started go back to the store, scheduled"
    ) in said
    assert "killed 2 running tasks" in said


# ---- bug 2: up_for_retry is history --------------------------------------------------------


def test_a_retried_try_is_counted_as_retried_not_as_pending_work(console: ConsoleFactory) -> None:
    c = console()
    key = c.submit('[ "$EXECCONSOLE_TRY_NUMBER" -ge 2 ] || exit 3', task_id="flaky", retries=1)

    def counts() -> dict[str, int]:
        snapshot = c.app.snapshot
        return dict(snapshot.header.counts) if snapshot is not None else {}

    async def scenario(pilot: Any) -> None:
        await c.wait(
            pilot,
            lambda: counts().get("success") == 1 and counts().get("up_for_retry") == 1,
            "the second try succeeded",
        )
        line = c.app.dashboard.header.counts_line
        # By the state's own name, as `tasks list --state up_for_retry` lists it.
        await c.wait(pilot, lambda: "1 up_for_retry" in str(line.render()), "the header shows it")
        assert "retrying" not in str(line.render())
        # Muted, as a count of nothing (pending work is drawn in its state's colour).
        text = c.app.dashboard.header._shown["header-counts"]
        start = text.plain.index("1 up_for_retry")
        styles = {span.style for span in text.spans if span.start <= start < span.end}
        assert styles == {c.app.palette.style("foreground-muted")}
        # Wherever a state is labelled (Events, task detail, timeline legend).
        assert c.app.palette.state_text("up_for_retry").plain == "up_for_retry"
        assert STATE_LABELS["up_for_retry"] == "up_for_retry"

    c.run(scenario)
    first = c.store.tries(c.record(key))[0]
    assert str(first.state) == "up_for_retry"


# ---- bug 3: refuse before asking -----------------------------------------------------------


def test_s_and_f_on_a_running_task_refuse_at_once_without_asking(console: ConsoleFactory) -> None:
    c = console()
    key = c.submit("sleep 60", task_id="busy")

    async def scenario(pilot: Any) -> None:
        await c.wait(pilot, lambda: c.state(key) == "running", "running")
        await c.select(pilot, c.app.dashboard.running_panel, key)
        for press, state in (("s", "success"), ("f", "failed")):
            refusal = f"is running: kill it before marking it {state}"
            await pilot.press(press)
            await c.wait(pilot, lambda r=refusal: notified(c, r), f"{press} refused")
            assert c.app.screen is c.app.dashboard
            assert not any(isinstance(s, ConfirmScreen) for s in c.app.screen_stack)

    c.run(scenario)
    assert c.state(key) == "running"
    assert c.store.pending_requests() == []


def test_s_on_a_waiting_task_still_asks_first(console: ConsoleFactory) -> None:
    c = console(paused=True)
    key = c.submit("true", task_id="markable")

    async def scenario(pilot: Any) -> None:
        await c.select(pilot, c.app.dashboard.queued_panel, key)
        await pilot.press("s")
        await c.wait(pilot, lambda: isinstance(c.app.screen, ConfirmScreen), "asked")
        await pilot.press("n")
        await c.wait(pilot, lambda: c.app.screen is c.app.dashboard, "declined")

    c.run(scenario)
    assert c.state(key) == "scheduled"
