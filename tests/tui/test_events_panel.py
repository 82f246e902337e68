"""The Events panel as events arrive: it follows the newest, keeps the operator's place, filters history.

Real consoles as in test_keys.py, watching a real store this test writes (no
engine), with polling off: each refresh is ``poll_now()`` after a write, so
what the panel is fed is decided here. No assertion is about time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from textual.app import App, ComposeResult

from console import actions
from console.tui.events_panel import OLDER_PAGE, EventsPanel
from console.tui.live_table import Column, LiveRow, LiveTable
from tests.tui.harness import Console

ConsoleFactory = Callable[..., Console]


def watching(console: ConsoleFactory) -> Console:
    """A console on a store only this test writes, refreshed only when the test says."""
    c = console(hosted=False)
    c.app.polling = False  # one snapshot at start; then poll_now() after each write
    return c


def submit(c: Console, task_ids: Iterable[str]) -> None:
    """One "scheduled" event per task, in this order (the last is the newest)."""
    for task_id in task_ids:
        actions.submit_command(
            c.store, ["true"], executor="local", configured_executors=["local"], task_id=task_id
        )


async def refresh(c: Console, pilot: Any) -> None:
    """A snapshot of the store now, shown; then whatever the tables do after a refresh."""
    c.app.poll_now()
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


def task_of(panel: EventsPanel, row: int) -> str:
    return panel.tasks[panel.table.row_keys[row]].key.task_id


def top_shown(panel: EventsPanel) -> str:
    """The task of the first row in view, as drawn (the line below the header)."""
    table = panel.table
    line = table.render_line(1).text
    task = task_of(panel, table.scroll_offset.y)
    assert task in line, (task, line)
    return task


def shown_tasks(panel: EventsPanel) -> list[str]:
    return [task_of(panel, row) for row in range(len(panel.table.row_keys))]


# ---- following the newest ------------------------------------------------------------------
def test_the_unfocused_events_list_keeps_the_newest_event_on_its_first_visible_row(
    console: ConsoleFactory,
) -> None:
    c = watching(console)
    submit(c, (f"e{n:03d}" for n in range(5)))

    async def scenario(pilot: Any) -> None:
        panel = c.app.dashboard.events_panel
        table = panel.table
        live = c.app.builder.events_limit
        await refresh(c, pilot)
        assert not table.has_focus  # Running has the focus: no key was pressed
        count = 5
        # A few at a time (rows added in place), then a burst (the table is rebuilt),
        # well past the live window and the height of the panel.
        for batch in [3] * 20 + [30, 3, 3]:
            submit(c, (f"e{n:03d}" for n in range(count, count + batch)))
            count += batch
            await refresh(c, pilot)
            newest = f"e{count - 1:03d}"
            assert top_shown(panel) == newest
            assert table.scroll_offset.y == 0
            assert table.cursor_row == 0 and task_of(panel, 0) == newest
            assert len(table.row_keys) == min(count, live)
        assert count > live > table.size.height

    c.run(scenario)


def test_an_event_the_operator_moved_the_cursor_to_keeps_its_line_as_newer_ones_arrive(
    console: ConsoleFactory,
) -> None:
    c = watching(console)
    submit(c, (f"e{n:03d}" for n in range(60)))  # more than the panel shows: it scrolls

    async def scenario(pilot: Any) -> None:
        panel = c.app.dashboard.events_panel
        table = panel.table
        await refresh(c, pilot)
        assert len(table.row_keys) > table.size.height
        await pilot.press("3")
        await c.wait(pilot, lambda: table.has_focus, "Events focused")
        await pilot.press("down", "down", "down", "down")
        assert table.cursor_row == 4 and task_of(panel, 4) == "e055"
        count = 60
        for batch in (3, 3, 3, 20):  # in place, then rebuilt
            submit(c, (f"e{n:03d}" for n in range(count, count + batch)))
            count += batch
            await refresh(c, pilot)
            # The cursor stays on its event, on the same line of the screen.
            assert panel.selected is not None and panel.selected.key.task_id == "e055"
            assert table.cursor_row - table.scroll_offset.y == 4
            assert table.cursor_row == count - 1 - 55
            assert top_shown(panel) == "e059"
            assert task_of(panel, 0) == f"e{count - 1:03d}"  # newer ones above, out of view
        # Back on the first row, the list follows the newest again.
        await pilot.press("ctrl+home")
        await c.wait(pilot, lambda: table.scroll_offset.y == 0, "back at the top")
        submit(c, ["e100", "e101"])
        await refresh(c, pilot)
        assert top_shown(panel) == "e101"
        assert table.cursor_row == 0 and table.scroll_offset.y == 0

    c.run(scenario)


def test_events_scrolled_out_of_view_by_the_operator_stay_out_as_newer_ones_arrive(
    console: ConsoleFactory,
) -> None:
    c = watching(console)
    submit(c, (f"e{n:03d}" for n in range(60)))

    async def scenario(pilot: Any) -> None:
        panel = c.app.dashboard.events_panel
        table = panel.table
        await refresh(c, pilot)
        assert table.cursor_row == 0
        table.scroll_to(y=5, animate=False, immediate=True)  # as the mouse wheel does
        await pilot.pause()
        assert top_shown(panel) == "e054"
        submit(c, ["e060", "e061", "e062"])
        await refresh(c, pilot)
        assert top_shown(panel) == "e054"
        assert table.scroll_offset.y == 8
        assert panel.tasks[table.selected_key or ""].key.task_id == "e059"  # out of view

    c.run(scenario)


def test_other_tables_keep_the_cursor_on_its_row_and_scroll_only_to_keep_it_in_view() -> None:
    """Running and Queued (not newest first) are as they were: the view does not follow rows."""
    table = LiveTable([Column("key", "Key", 6)])

    def rows(keys: Iterable[str]) -> list[LiveRow]:
        return [LiveRow(key, (key,), (key,)) for key in keys]

    class OneTable(App[None]):
        def compose(self) -> ComposeResult:
            yield table

    async def main() -> None:
        async with OneTable().run_test(size=(20, 8)) as pilot:  # a header and 7 rows
            table.show(rows(f"r{n}" for n in range(5)))
            await pilot.pause()
            table.move_cursor(row=2)
            await pilot.pause()
            table.show(rows(["new1", "new2", *(f"r{n}" for n in range(5))]))
            await pilot.pause()
            assert table.selected_key == "r2" and table.cursor_row == 4
            assert table.scroll_offset.y == 0
            table.move_cursor(row=0)
            await pilot.pause()
            table.show(rows(["new0", "new1", "new2", *(f"r{n}" for n in range(5))]))
            await pilot.pause()
            assert table.selected_key == "new1" and table.cursor_row == 1

    asyncio.run(main())


# ---- the filter on history ------------------------------------------------------------------
def clicks(number: int) -> bool:
    return number % 40 == 7


def task_ids(numbers: Iterable[int]) -> list[str]:
    return [f"click_{n:03d}" if clicks(n) else f"t{n:03d}" for n in numbers]


def test_the_filter_applies_to_history_rows_too_and_the_title_counts_only_rows_shown(
    console: ConsoleFactory,
) -> None:
    c = watching(console)
    submit(c, task_ids(range(300)))

    async def scenario(pilot: Any) -> None:
        panel = c.app.dashboard.events_panel
        table = panel.table
        live = c.app.builder.events_limit
        await refresh(c, pilot)
        assert len(table.row_keys) == live
        await pilot.press("3")
        await pilot.press("ctrl+end")
        await c.wait(
            pilot, lambda: len(table.row_keys) == live + OLDER_PAGE, "a page of history below"
        )
        assert panel.frame_title.endswith(f"{live + OLDER_PAGE} shown · {OLDER_PAGE} from history")
        await pilot.press("slash", *"click", "enter")
        await c.wait(pilot, lambda: c.app.builder.filter == "click", "filtered")
        await refresh(c, pilot)
        newest_first = range(299, 299 - live - OLDER_PAGE, -1)
        expected = [task for task in task_ids(newest_first) if task.startswith("click")]
        from_history = [task for task in task_ids(newest_first[live:]) if task.startswith("click")]
        assert from_history and len(from_history) < len(expected)
        assert shown_tasks(panel) == expected
        # The filter ran over what is loaded, and the title says so (older ones exist).
        assert f"{len(expected)} shown · {len(from_history)} from history" in panel.frame_title
        assert "filter: loaded events only, the last row loads older" in panel.frame_title
        await pilot.press("escape")  # the filter off: every row again
        await refresh(c, pilot)
        assert shown_tasks(panel) == task_ids(newest_first)

    c.run(scenario)


def test_a_page_of_history_the_filter_leaves_nothing_of_fetches_the_page_before_it(
    console: ConsoleFactory,
) -> None:
    c = watching(console)
    # Matching: two in the live window, none in the page below it, one in the page after.
    matching = {290, 280, 100}
    submit(c, (f"click_{n:03d}" if n in matching else f"t{n:03d}" for n in range(300)))

    async def scenario(pilot: Any) -> None:
        panel = c.app.dashboard.events_panel
        table = panel.table
        await refresh(c, pilot)
        await pilot.press("slash", *"click", "enter")
        await c.wait(pilot, lambda: c.app.builder.filter == "click", "filtered")
        await refresh(c, pilot)
        assert shown_tasks(panel) == ["click_290", "click_280"]
        await pilot.press("3", "ctrl+end")
        await c.wait(pilot, lambda: len(table.row_keys) == 3, "the match two pages back")
        assert shown_tasks(panel) == ["click_290", "click_280", "click_100"]
        assert len(panel.older) == 2 * OLDER_PAGE
        assert "3 shown · 1 from history" in panel.frame_title

    c.run(scenario)
