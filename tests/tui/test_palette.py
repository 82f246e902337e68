"""ctrl+p lists the console's own actions, not Textual's stock Keys, Maximize or Screenshot.

The stock entries repeated the console's keys (? for Keys, z for Maximize) or
were a developer's tool; the theme stays, as the console's own entry. On a
real console (its engine in a child process, the real LocalExecutor, a real
SQLite store) under Textual's Pilot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.command import CommandList, CommandPalette

from console.tui.keys import KEYS
from tests.tui.harness import Console

ConsoleFactory = Callable[..., Console]
STOCK = {"Keys", "Maximize", "Minimize", "Screenshot"}


def listed(c: Console) -> list[str]:
    """The palette's entries as shown (the first line of each: its title)."""
    options = c.app.screen.query_one(CommandList)
    return [
        str(options.get_option_at_index(index).prompt).splitlines()[0]
        for index in range(options.option_count)
    ]


def test_the_palette_lists_the_consoles_own_actions_and_the_theme_only(
    console: ConsoleFactory,
) -> None:
    c = console()
    key = c.submit("sleep 60", task_id="busy")
    own = {spec.description for spec in KEYS if spec.palette}

    async def scenario(pilot: Any) -> None:
        dashboard = c.app.dashboard
        await c.wait(pilot, lambda: c.state(key) == "running", "running")
        await c.select(pilot, dashboard.running_panel, key)
        titles = [command.title for command in c.app.get_system_commands(dashboard)]
        assert len(titles) == len(set(titles))  # Quit once: q's, which asks first
        assert set(titles) - own == {"Theme"}
        assert {"Kill", "Quit", "Help"} <= set(titles)

        await pilot.press("ctrl+p")
        await c.wait(pilot, lambda: isinstance(c.app.screen, CommandPalette), "palette open")
        await c.wait(pilot, lambda: "Kill" in listed(c), "its entries listed")
        assert STOCK.isdisjoint(listed(c))
        assert "Theme" in listed(c)
        await pilot.press("escape")
        await c.wait(pilot, lambda: c.app.screen is dashboard, "closed")

        # Elsewhere (the task detail) no stock entry either.
        await pilot.press("enter")
        await c.wait(pilot, lambda: c.app.screen is not dashboard, "detail shown")
        titles = [command.title for command in c.app.get_system_commands(c.app.screen)]
        assert STOCK.isdisjoint(titles) and "Quit" not in titles

    c.run(scenario)
