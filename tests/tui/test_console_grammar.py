"""The console's own sentences agree with their numbers: one task is running, it stays.

The quit dialog on a real console (its engine in a child process, the real
LocalExecutor, a real SQLite store) under Textual's Pilot, then each of its
and the cancel-run question's wordings from their counts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from textual.widgets import Button

from console.tui.app import cancel_run_question
from console.tui.quit_screen import QuitScreen
from tests.tui.harness import Console

ConsoleFactory = Callable[..., Console]


def test_quitting_with_one_task_running_asks_about_it_not_them(console: ConsoleFactory) -> None:
    c = console()
    key = c.submit("sleep 60", task_id="alone")

    async def scenario(pilot: Any) -> None:
        await c.wait(pilot, lambda: c.state(key) == "running", "running")
        await c.wait(
            pilot,
            lambda: c.app.snapshot is not None and c.app.snapshot.header.counts.get("running") == 1,
            "shown running",
        )
        await pilot.press("q")
        await c.wait(pilot, lambda: isinstance(c.app.screen, QuitScreen), "asked")
        screen = c.app.screen
        assert str(screen.query_one(".dialog-title").render()) == "Quit? 1 task is running."
        assert str(screen.query_one(".dialog-detail").render()) == "Nothing else waits to start."
        labels = [str(button.label) for button in screen.query(Button)]
        assert labels == [
            "(l) Leave it running: the next engine adopts it",
            "(d) Drain: start nothing new, wait for it, then quit",
            "(k) Kill it now, then quit",
            "(esc) Stay",
        ]
        await pilot.press("escape")
        await c.wait(pilot, lambda: c.app.screen is c.app.dashboard, "stayed")
        c.app.exit(None)

    c.run(scenario)


@pytest.mark.parametrize(
    ("running", "handed_out", "waiting", "question", "detail"),
    [
        (1, 0, 1, "Quit? 1 task is running.", "1 more waits to start; it stays in the store"),
        (2, 0, 3, "Quit? 2 tasks are running.", "3 more wait to start; they stay in the store"),
        (
            1,
            1,
            0,
            "Quit? 1 task is running.",
            "1 more waits to start (1 queued at the executor); it stays in the store",
        ),
        (
            2,
            2,
            5,
            "Quit? 2 tasks are running.",
            "7 more wait to start (2 queued at the executor, 5 scheduled in the store); they stay",
        ),
        (0, 1, 0, "Quit? 1 task queued (handed out, not started yet).", "It stays in the store"),
        (0, 3, 0, "Quit? 3 tasks queued (handed out), none started yet.", "They stay in the store"),
        (
            0,
            2,
            4,
            "Quit? 2 tasks queued (handed out), none started yet.",
            "2 queued and 4 scheduled: none has started; they stay in the store",
        ),
    ],
)
def test_the_quit_question_agrees_with_its_counts(
    running: int, handed_out: int, waiting: int, question: str, detail: str
) -> None:
    screen = QuitScreen(running, handed_out, waiting)
    assert screen.question == question
    assert screen.detail.startswith(detail)
    them = "it" if (running or handed_out) == 1 else "them"
    assert dict(screen.choices)["kill"] == f"(k) Kill {them} now, then quit"


def test_the_cancel_run_question_agrees_with_its_counts() -> None:
    _question, one = cancel_run_question("demo/r", {"running": 1, "scheduled": 1})
    assert "1 running: killed, with its whole process tree." in one
    assert "1 not started: failed now, or upstream_failed once what it waits for has failed." in one
    _question, many = cancel_run_question("demo/r", {"running": 2, "queued": 1, "scheduled": 2})
    assert "2 running: killed, with their whole process tree." in many
    assert (
        "3 not started: failed now, or upstream_failed once what they wait for has failed." in many
    )
