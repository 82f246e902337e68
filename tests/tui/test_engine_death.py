"""The offer to restart the console's engine after it dies: real engine processes, SIGKILLed.

The offer must reach the operator however the death meets the rest of the UI:
a form whose outcome arrives while the offer is up (Textual's Screen.dismiss
pops the top screen, whichever it is), an engine that dies before the console
starts watching it (a restarted one, between its start and watch_engine), and
toasts, which Textual draws over dialogs.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input
from textual.widgets._toast import Toast

from console.tui.confirm_screen import ConfirmScreen
from console.tui.engine_process import ChildEngine
from console.tui.open_workflow_screen import OpenWorkflowScreen
from tests.tui.harness import Console

ConsoleFactory = Callable[..., Console]


def offered(c: Console) -> bool:
    """The restart offer is the screen on top."""
    screen = c.app.screen
    return isinstance(screen, ConfirmScreen) and "Start a new one?" in (
        f"{screen.question} {screen.detail}"
    )


def restarted(c: Console, first: object) -> bool:
    engine = c.app.context.engine
    return engine is not first and engine is not None and engine.running


def test_the_restart_offer_stays_when_a_forms_outcome_arrives_after_the_engine_died(
    console: ConsoleFactory, tmp_path: Path
) -> None:
    workflow = tmp_path / "late.toml"
    workflow.write_text('id = "late"\n[[task]]\nid = "only"\ncommand = ["true"]\n')
    c = console(paused=True)
    first = c.engine
    assert first is not None

    async def scenario(pilot: Any) -> None:
        await pilot.press("o")
        await c.wait(pilot, lambda: isinstance(c.app.screen, OpenWorkflowScreen), "the prompt")
        form = c.app.screen
        form.query_one("#path", Input).value = str(workflow)
        # The submission waits behind another writer, as it would behind a busy engine.
        writer = sqlite3.connect(c.runtime.config.store_path, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        try:
            await pilot.press("enter")
            os.kill(first.pid, signal.SIGKILL)
            await c.wait(pilot, lambda: offered(c), "the restart offered")
        finally:
            writer.execute("COMMIT")
            writer.close()
        # The submission goes through; its outcome reaches the form under the offer.
        await c.wait(pilot, lambda: c.store.unfinished_count(dag_id="late") == 1, "submitted")
        await c.wait(
            pilot,
            lambda: any("submitted late/" in n.message for n in c.app._notifications),
            "the outcome arrived",
        )
        await pilot.pause()
        assert offered(c), c.app.screen_stack
        assert form in c.app.screen_stack
        await pilot.press("y")
        await c.wait(pilot, lambda: restarted(c, first), "a new engine")
        # The form then closes, with its outcome.
        await c.wait(pilot, lambda: c.app.screen is c.app.dashboard, "back on the dashboard")

    c.run(scenario)


def test_an_engine_that_dies_before_the_console_watches_it_is_offered_a_restart(
    console: ConsoleFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = console()
    first = c.engine
    assert first is not None
    ready = ChildEngine.wait_ready
    died: list[int] = []

    def ready_then_killed(engine: ChildEngine, timeout: float = 60.0) -> None:
        """The restarted engine dies right after it is ready, before the console watches it."""
        ready(engine, timeout)
        os.kill(engine.pid, signal.SIGKILL)
        engine._exited.wait(10)
        died.append(engine.pid)

    async def scenario(pilot: Any) -> None:
        await c.wait(pilot, lambda: c.app.snapshot is not None, "first snapshot")
        monkeypatch.setattr(ChildEngine, "wait_ready", ready_then_killed)
        os.kill(first.pid, signal.SIGKILL)
        await c.wait(pilot, lambda: offered(c), "the first restart offered")
        await pilot.press("y")
        await c.wait(pilot, lambda: bool(died), "the second engine started and died")
        second = died[0]
        await c.wait(
            pilot,
            lambda: offered(c) and f"pid {second}" in (c.app.engine_error or ""),
            "the second death shown and a restart offered",
        )
        assert "killed by SIGKILL" in (c.app.engine_error or "")
        monkeypatch.setattr(ChildEngine, "wait_ready", ready)
        await pilot.press("y")
        await c.wait(pilot, lambda: restarted(c, first), "a third engine, alive")

    c.run(scenario)


def test_the_restart_offer_is_asked_in_its_first_line_and_no_toast_covers_it(
    console: ConsoleFactory,
) -> None:
    c = console(parallelism=1)
    first = c.engine
    assert first is not None

    async def scenario(pilot: Any) -> None:
        await c.wait(pilot, lambda: c.app.snapshot is not None, "first snapshot")
        for _ in range(3):  # parallelism 1 cannot go lower: a warning toast each time
            await pilot.press("minus")
        await c.wait(pilot, lambda: len(c.app._notifications) >= 3, "three toasts on screen")
        os.kill(first.pid, signal.SIGKILL)
        await c.wait(pilot, lambda: offered(c), "the restart offered")
        await pilot.pause()
        screen = c.app.screen
        question = screen.query_one(".dialog-title")
        assert str(question.render()) == "The engine stopped. Start a new one?"
        dialog = screen.query_one(".dialog")
        covering = [t for t in screen.query(Toast) if t.region.overlaps(dialog.region)]
        assert covering == []
        # The header still says what happened.
        assert "ENGINE STOPPED" in str(c.app.dashboard.query_one("#header-mode").render())

    async def main() -> None:
        async with c.app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            await scenario(pilot)

    asyncio.run(main())
