"""The console in an 80x24 terminal, and the words it uses: on a real console under Pilot."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rich.cells import cell_len
from textual.geometry import Region
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Label
from textual.widgets._footer import FooterKey

from console.tui.new_task_screen import NewTaskScreen
from store import Store
from tests.tui.harness import Console

ConsoleFactory = Callable[..., Console]
SMALL = (80, 24)
EMPTY_STORE_HINT = "nothing here yet: press n for a task or o to load a workflow"


def run_at(c: Console, size: tuple[int, int], scenario: Callable[[Any], Awaitable[None]]) -> None:
    async def main() -> None:
        async with c.app.run_test(size=size) as pilot:
            await pilot.pause()
            await scenario(pilot)

    asyncio.run(main())


def shown(widget: Any) -> str:
    return str(widget.render())


# ---- bug 6: 80x24 ------------------------------------------------------------------------


def test_at_80x24_running_shows_every_running_task_without_a_horizontal_scrollbar(
    console: ConsoleFactory,
) -> None:
    c = console(parallelism=2)
    for number in range(6):
        c.submit("sleep 60", task_id=f"sleeper_{number}")

    async def scenario(pilot: Pilot[Any]) -> None:
        panel = c.app.dashboard.running_panel
        table = panel.table
        await c.wait(pilot, lambda: len(table.row_keys) == 2, "two running")
        await pilot.pause()
        assert not table.show_horizontal_scrollbar
        padding = 2 * table.cell_padding * len(table.live_columns)
        assert sum(table.content_widths()) + padding <= table.size.width
        # Both rows are on screen, below the column headers.
        assert table.scrollable_content_region.height >= 1 + 2
        drawn = [table.render_line(y).text for y in range(1, 3)]
        for key in table.row_keys:
            label = panel.tasks[key].key.task_id
            assert any(label in line for line in drawn), (label, drawn)

    run_at(c, SMALL, scenario)


def test_at_80x24_the_header_keeps_its_title_and_counts_on_one_line_each(
    console: ConsoleFactory,
) -> None:
    c = console(parallelism=2)
    for number in range(6):
        c.submit("sleep 60", task_id=f"sleeper_{number}")

    async def scenario(pilot: Pilot[Any]) -> None:
        header = c.app.dashboard.header
        await c.wait(
            pilot,
            lambda: (
                (c.app.snapshot is not None and c.app.snapshot.header.counts.get("running")) == 2
            ),
            "two running",
        )
        await c.wait(pilot, lambda: "2 running" in shown(header.counts_line), "counted")
        for line in (header.mode_line, header.executors_line, header.counts_line):
            assert line.size.height == 1, (line.id, shown(line))
            assert header.region.contains_region(line.region), line.id
        mode = shown(header.mode_line)
        assert mode.startswith("execconsole · engine pid ") and "…" not in mode
        counts = shown(header.counts_line)
        assert "4 queued · 2 running" in counts and "…" not in counts

    run_at(c, SMALL, scenario)


def test_at_80x24_queued_shows_its_title_and_each_tasks_status_whole(
    console: ConsoleFactory,
) -> None:
    c = console(parallelism=2)
    for number in range(40):  # more than the 24 rows a 24-line screen lists
        c.submit("sleep 60", task_id=f"task_{number:02d}")

    async def scenario(pilot: Pilot[Any]) -> None:
        panel = c.app.dashboard.queued_panel
        table = panel.table
        await c.wait(
            pilot,
            lambda: any(task.state == "queued" for task in panel.tasks.values()),
            "some handed out",
        )
        await c.wait(pilot, lambda: "of 38" in panel.frame_title, "the title")
        await pilot.pause()
        title = panel.frame_title
        assert len(title) + 7 <= panel.outer_size.width, title  # the frame draws it whole
        assert title == "2 Queued · 24 of 38 to start"
        top = panel.render_lines(Region(0, 0, panel.outer_size.width, 1))[0].text
        assert title in top, top
        widths = table.content_widths()
        status_end = sum(width + 2 * table.cell_padding for width in widths[:3])
        assert status_end <= table.size.width
        first = table.render_line(1).text
        assert "queued" in first, first

    run_at(c, SMALL, scenario)


# ---- bug 7: words ------------------------------------------------------------------------


def test_a_read_only_attached_header_says_keys_are_off_not_that_they_send_requests(
    console: ConsoleFactory,
) -> None:
    for size in ((160, 50), SMALL):
        # A live owner on record (this process): the console checks the lease as it
        # refreshes, and shows an owner that is gone as WATCHING instead.
        with Store(Path(os.environ["EXECCONSOLE_HOME"]) / "execconsole.db") as store:
            store.conn.execute("DELETE FROM lease")
            store.conn.execute(
                "INSERT INTO lease (name, pid, hostname, acquired_at, heartbeat) "
                "VALUES ('engine', ?, ?, ?, ?)",
                (os.getpid(), store.hostname, store.now(), store.clock().timestamp()),
            )
            owner = store.lease_owner()
        assert owner is not None
        c = console(hosted=False, read_only=True, attached_to=owner)

        async def scenario(pilot: Pilot[Any], c: Console = c, size: tuple[int, int] = size) -> None:
            mode = c.app.dashboard.header.mode_line
            await c.wait(pilot, lambda: "ATTACHED" in shown(mode), "the header")
            await pilot.pause()
            text = shown(mode)
            assert "keys send requests" not in text
            assert "READ-ONLY" in text and "…" not in text, (size, text)
            if size != SMALL:  # room for the words, not only the badge
                assert "keys that change something are off" in text

        run_at(c, size, scenario)
        c.close()


def test_the_new_task_form_shows_every_label_whole(console: ConsoleFactory) -> None:
    for size in (SMALL, (160, 50)):
        c = console()

        async def scenario(pilot: Pilot[Any], c: Console = c, size: tuple[int, int] = size) -> None:
            await pilot.press("n")
            await c.wait(pilot, lambda: isinstance(c.app.screen, NewTaskScreen), "the form")
            await pilot.pause()
            labels = list(c.app.screen.query(Label))
            assert len(labels) >= 6
            for label in labels:
                text = shown(label)
                # Drawn whole: as wide as its text, and inside what holds it (which clips).
                assert label.size.width >= cell_len(text), (size, text, label.size.width)
                parent = label.parent
                assert isinstance(parent, Widget)
                assert parent.content_region.contains_region(label.region), (size, text)

        run_at(c, size, scenario)
        c.close()


def test_an_empty_store_says_how_to_begin_and_the_footer_offers_n_and_o(
    console: ConsoleFactory, home: Path
) -> None:
    c = console()

    async def scenario(pilot: Pilot[Any]) -> None:
        message = c.app.dashboard.header.message_line
        await c.wait(pilot, lambda: EMPTY_STORE_HINT in shown(message), "the hint")

        def footer_keys() -> set[str]:
            return {key.key for key in c.app.dashboard.query(FooterKey) if key.display}

        await c.wait(pilot, lambda: {"n", "o"} <= footer_keys(), "n and o in the footer")
        # Without a task selected, the task keys give their place up (the help lists them).
        assert "k" not in footer_keys()
        why = {line.description: line.status for line in c.app.dashboard.help_lines()}
        assert why["Kill"] == "select a task first"
        # A task: the hint gives way.
        c.submit("sleep 30", task_id="first")
        await c.wait(pilot, lambda: EMPTY_STORE_HINT not in shown(message), "the hint gone")

    c.run(scenario)
