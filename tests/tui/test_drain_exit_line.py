"""Quitting with Drain: the console closes by itself once the running tasks end, then
says on stderr what was left for the next engine (or that nothing was).

The keys as an operator presses them (q, then d), then what ``launch`` does once the
app has closed (``stop_engine``), its stderr captured.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from console.tui.launch import stop_engine
from console.tui.quit_screen import QuitScreen
from tests.tui.harness import Console

ConsoleFactory = Callable[..., Console]


def quit_with_drain(c: Console) -> None:
    async def scenario(pilot: Any) -> None:
        def seen_running() -> bool:
            status, snapshot = c.status(), c.app.snapshot
            return bool(
                status is not None
                and status.in_flight
                and snapshot is not None
                and snapshot.header.counts.get("running")
            )

        await c.wait(pilot, seen_running, "the console and its engine see the long task run")
        await pilot.press("q")
        await c.wait(pilot, lambda: isinstance(c.app.screen, QuitScreen), "asked how to quit")
        await pilot.press("d")
        await c.wait_closed(pilot)

    c.run(scenario)
    engine = c.app.context.engine
    assert engine is not None
    stop_engine(engine, c.app.return_value or "finish", c.store)


def test_after_a_drain_stderr_says_how_many_tasks_wait_for_the_next_engine(
    console: ConsoleFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    c = console(parallelism=1)
    long = c.submit("sleep 1", task_id="long", priority=9)
    later = [c.submit("true", task_id=f"later_{n}") for n in range(3)]
    quit_with_drain(c)
    assert c.state(long) == "success"
    assert [c.state(key) for key in later] == ["scheduled"] * 3
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1] == (
        "drained: nothing runs; 3 tasks left scheduled for the next engine "
        "(`execconsole scheduler`, or open the console again)"
    )


def test_after_a_drain_with_nothing_waiting_stderr_says_nothing_is_left(
    console: ConsoleFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    c = console(parallelism=1)
    long = c.submit("sleep 1", task_id="long")
    quit_with_drain(c)
    assert c.state(long) == "success"
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1] == "drained: every task has ended; nothing is left to run"
