"""In a read-only console a key that changes something stays hidden, and says so when pressed.

``execconsole console --read-only`` shows neither these keys in the footer nor
their commands in the palette; pressed anyway, each says in one short line,
once per press, that it is not available, and nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.widgets._footer import FooterKey

from console.tui.task_detail_screen import TaskDetailScreen
from tests.tui.harness import Console

ConsoleFactory = Callable[..., Console]


def said(c: Console) -> list[str]:
    return [
        notification.message
        for notification in c.app._notifications
        if notification.message.startswith("read-only console")
    ]


def test_each_hidden_key_says_read_only_once_per_press(console: ConsoleFactory) -> None:
    c = console(hosted=False, read_only=True)
    key = c.submit("sleep 1", task_id="look_only")

    async def scenario(pilot: Any) -> None:
        dashboard = c.app.dashboard
        await c.select(pilot, dashboard.queued_panel, key)
        await pilot.press("k", "p", "plus", "n", "o", "r", "C")
        await c.wait(pilot, lambda: len(said(c)) >= 7, "each key answered")
        await pilot.pause(0.2)
        assert said(c) == [
            "read-only console: kill (k) not available",
            "read-only console: pause/resume (p) not available",
            "read-only console: parallelism +1 (+) not available",
            "read-only console: new task (n) not available",
            "read-only console: load workflow (o) not available",
            "read-only console: retry (r) not available",
            "read-only console: cancel run (C) not available",
        ]
        assert c.app.screen is dashboard
        # Still hidden: not in the footer, not greyed out.
        shown = {entry.key for entry in dashboard.query(FooterKey)}
        assert shown.isdisjoint({"k", "r", "p", "n", "o"})
        assert "l" in shown

        # The task detail's keys too.
        await pilot.press("enter")
        await c.wait(pilot, lambda: isinstance(c.app.screen, TaskDetailScreen), "detail shown")
        detail = c.app.screen
        await c.wait(pilot, lambda: getattr(detail, "detail", None) is not None, "detail loaded")
        await pilot.press("f")
        await c.wait(pilot, lambda: len(said(c)) == 8, "f answered")
        assert said(c)[-1] == "read-only console: mark failed (f) not available"
        assert c.app.screen is detail

    c.run(scenario)
    assert c.store.pending_requests() == []
    assert len(c.store.list_tasks(dag_id="adhoc")) == 1
