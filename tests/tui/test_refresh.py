"""How the console refreshes: what it skips, what it says about short tries, the footer's fit.

Real consoles as in test_keys.py (a real store, the real engine process where
one is named), under Textual's Pilot. No assertion is about time: waits are
bounded conditions.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pendulum
from textual.app import App, ComposeResult
from textual.widget import Widget
from textual.widgets import Static

from console.snapshot import Snapshot
from console.tui.app import MAX_REFRESH_INTERVAL
from console.tui.help_screen import HelpScreen
from console.tui.live_table import Column, LiveRow, LiveTable
from console.tui.task_detail_screen import TaskDetailScreen
from executors.state import TaskState
from store import Batch, TaskSubmission
from tests.tui.harness import Console

ConsoleFactory = Callable[..., Console]


def queued_ids(c: Console) -> set[str]:
    return {task.key.task_id for task in c.app.dashboard.queued_panel.tasks.values()}


def line_text(widget: Static) -> str:
    return str(widget.render())


# ---- short tries ---------------------------------------------------------------------------
def finish_quietly(c: Console, task_ids: list[str]) -> None:
    """Queued, running and succeeded in one commit, now: how a LocalExecutor reports a try
    shorter than a tick (its "quiet start"), so the store never shows it running."""
    now = pendulum.now("UTC").to_iso8601_string()
    batch = Batch()
    for task_id in task_ids:
        record = c.store.resolve(f"short/{task_id}/r1")
        batch.transition(record, TaskState.QUEUED, actor="engine", queued_at=now)
        queued = replace(record, state=TaskState.QUEUED)
        batch.transition(queued, TaskState.RUNNING, actor="executor:local", start_date=now)
        running = replace(queued, state=TaskState.RUNNING)
        batch.transition(running, TaskState.SUCCESS, actor="executor:local", end_date=now)
    c.store.commit(batch)


def test_tries_too_short_to_be_seen_running_show_as_finishing_not_as_zero_running(
    console: ConsoleFactory,
) -> None:
    c = console(hosted=False)  # watching: nothing but this test writes the store
    c.store.submit(
        "short",
        "r1",
        [TaskSubmission(task_id=f"t{n}", command=["true"], executor="local") for n in range(5)],
    )
    header = c.app.dashboard.header

    async def scenario(pilot: Any) -> None:
        await c.wait(pilot, lambda: len(queued_ids(c)) == 5, "five waiting")
        finish_quietly(c, [f"t{n}" for n in range(5)])
        # Five tries over the last five seconds: one a second.
        await c.wait(
            pilot,
            lambda: "0 running (finished 1.0/s over 5s)" in line_text(header.counts_line),
            "the counts line says they are finishing",
        )
        assert "5 success" in line_text(header.counts_line)
        assert "0 running · finished 1.0/s over 5s" in line_text(header.executors_line)
        # A rate of the last few seconds: once tries stop ending, it goes.
        await c.wait(
            pilot,
            lambda: (
                "finished" not in line_text(header.counts_line)
                and "finished" not in line_text(header.executors_line)
            ),
            "the rate goes when nothing finishes",
        )

    c.run(scenario)


def test_a_busy_run_of_short_tries_on_the_real_engine_shows_its_finishing_rate(
    console: ConsoleFactory,
) -> None:
    c = console()
    c.store.submit(
        "short",
        "r1",
        [TaskSubmission(task_id=f"t{n}", command=["true"], executor="local") for n in range(300)],
    )
    header = c.app.dashboard.header

    async def scenario(pilot: Any) -> None:
        await c.wait(
            pilot,
            lambda: "finished" in line_text(header.executors_line),
            "the executor line shows the tries finishing",
        )
        await c.wait(
            pilot, lambda: c.store.count_by_state()["success"] == 300, "every try succeeded"
        )

    c.run(scenario)


def test_the_consoles_own_engine_dispatches_only_once_the_first_snapshot_is_drawn(
    console: ConsoleFactory,
) -> None:
    c = console()
    c.store.submit(
        "burst",
        "r1",
        [TaskSubmission(task_id=f"t{n}", command=["true"], executor="local") for n in range(20)],
    )
    shown: list[Snapshot] = []

    def keep(snapshot: Snapshot) -> Snapshot:
        shown.append(snapshot)
        return snapshot

    c.app.snapshot_hook = keep

    async def scenario(pilot: Any) -> None:
        await c.wait(pilot, lambda: c.store.count_by_state()["success"] == 20, "the run ends")

    c.run(scenario)
    # The console's start-up (every panel filled and drawn at once) is over before
    # the run begins, and the run is shown from its first task.
    first = shown[0].header.counts
    assert first["scheduled"] == 20
    assert first["queued"] == first["running"] == first["success"] == 0


# ---- what is refreshed ----------------------------------------------------------------------
def test_a_dashboard_covered_by_another_screen_is_not_refreshed_until_it_is_back(
    console: ConsoleFactory,
) -> None:
    c = console(paused=True)
    key = c.submit("true", task_id="first")

    async def scenario(pilot: Any) -> None:
        await c.select(pilot, c.app.dashboard.queued_panel, key)
        await pilot.press("enter")
        await c.wait(pilot, lambda: isinstance(c.app.screen, TaskDetailScreen), "detail shown")
        c.submit("true", task_id="while_covered")
        polls = c.app.polls
        await c.wait(pilot, lambda: c.app.polls >= polls + 3, "polling goes on")
        assert c.app.snapshot is not None
        assert "while_covered" in {row.key.task_id for row in c.app.snapshot.queued}
        assert queued_ids(c) == {"first"}  # built, but not drawn under the detail screen
        await pilot.press("escape")
        await c.wait(pilot, lambda: c.app.screen is c.app.dashboard, "back on the dashboard")
        await c.wait(pilot, lambda: "while_covered" in queued_ids(c), "caught up")

    c.run(scenario)


def test_the_dashboard_dimmed_under_a_dialog_still_moves_on(console: ConsoleFactory) -> None:
    c = console(paused=True)
    c.submit("true", task_id="first")

    async def scenario(pilot: Any) -> None:
        await c.wait(pilot, lambda: queued_ids(c) == {"first"}, "first shown")
        await pilot.press("question_mark")
        await c.wait(pilot, lambda: isinstance(c.app.screen, HelpScreen), "help shown")
        c.submit("true", task_id="under_the_dialog")
        await c.wait(
            pilot, lambda: "under_the_dialog" in queued_ids(c), "refreshed under the dialog"
        )
        assert isinstance(c.app.screen, HelpScreen)

    c.run(scenario)


def test_refreshes_that_cost_more_than_their_budget_are_spaced_out_up_to_a_limit(
    console: ConsoleFactory,
) -> None:
    c = console(hosted=False)
    base = c.app.refresh_interval

    def costly(snapshot: Snapshot) -> Snapshot:
        # 150 ms of CPU per refresh: three times what a twice-a-second budget allows.
        spent = time.process_time() + 0.15
        while time.process_time() < spent:
            pass
        return snapshot

    c.app.snapshot_hook = costly

    async def scenario(pilot: Any) -> None:
        polls = c.app.polls
        await c.wait(pilot, lambda: c.app.polls >= polls + 5, "five costly refreshes")
        assert base < c.app.poll_interval <= MAX_REFRESH_INTERVAL

    c.run(scenario)


def test_a_live_table_draws_plain_strings_as_they_are_cut_to_their_column() -> None:
    table = LiveTable(
        [Column("key", "Key", 4), Column("text", "Text", 12), Column("cut", "Cut", 5)]
    )

    class OneTable(App[None]):
        def compose(self) -> ComposeResult:
            yield table

    async def main() -> None:
        async with OneTable().run_test(size=(40, 5)) as pilot:
            # Not Rich markup, no control codes, an ellipsis when cut; a second line is dropped.
            table.show([LiveRow("r1", ("r1", "[b]x[/b]", "ab\x07cdefgh\nnext"), (1, 2, 3))])
            await pilot.pause()
            line = table.render_line(1).text
            assert "[b]x[/b]" in line
            assert "abcd…" in line and "\x07" not in line and "next" not in line

    asyncio.run(main())


# ---- the footer ------------------------------------------------------------------------------
def footer_entries(c: Console) -> tuple[list[Widget], Widget]:
    """(the footer's key entries, its command palette key)."""
    footer = c.app.dashboard.query_one("StableFooter")
    children = list(footer.children)
    palette = next(child for child in children if child.has_class("-command-palette"))
    return [child for child in children if child is not palette], palette


def whole_entries_fit(c: Console) -> bool:
    """Every entry shown ends before the palette key (its last cell may be its own padding)."""
    entries, palette = footer_entries(c)
    shown = [entry for entry in entries if entry.display]
    edge = palette.region.x
    return bool(shown) and all(
        entry.region.right - (1 if type(entry).__name__ == "FooterKey" else 0) <= edge
        for entry in shown
    )


def test_the_footer_shows_only_whole_entries_and_its_palette_key_at_80_columns(
    console: ConsoleFactory,
) -> None:
    c = console(hosted=False)

    def shown() -> list[Widget]:
        return [entry for entry in footer_entries(c)[0] if entry.display]

    async def scenario(pilot: Any) -> None:
        await c.wait(pilot, lambda: c.app.polls >= 1 and whole_entries_fit(c), "footer drawn")
        wide = len(shown())
        await pilot.resize_terminal(80, 24)
        await c.wait(
            pilot,
            lambda: whole_entries_fit(c) and len(shown()) < wide,
            "entries that do not fit are hidden",
        )
        entries, palette = footer_entries(c)
        assert palette.display and "palette" in str(palette.render())
        # The first entries stay (keys.py lists the most useful first), the rest go.
        flags = [entry.display for entry in entries]
        assert flags == sorted(flags, reverse=True) and flags[0]
        await pilot.resize_terminal(160, 50)
        await c.wait(
            pilot, lambda: whole_entries_fit(c) and len(shown()) == wide, "all back when wide"
        )

    c.run(scenario)
