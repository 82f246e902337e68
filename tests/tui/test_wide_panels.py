"""Queued and Events give their width to task names first, and a zoomed panel fills the screen.

Consoles watching a store seeded here at a fixed time (tests/tui/seeded.py):
what they show is decided by the test, and the assertions read the screen
as the terminal shows it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from executors.state import TaskState
from tests.tui.seeded import DAG, Seeded, region_text, run_app, seeded, show

WIDE = (140, 40)

# Names that differ only in the middle, and long ones, as in the demo workflow.
TASKS: list[str | tuple[str, list[str]]] = [
    "start",
    ("extract_products", ["start"]),
    ("extract_payments", ["start"]),
    ("extract_inventory", ["start"]),
    ("refresh_exchange_rates", ["start"]),
    ("compute_recommendations", ["extract_products"]),
    ("publish_recommendations", ["compute_recommendations"]),
]


def demo_run(home: Path) -> Seeded:
    """start done, three extracts handed out, refresh_exchange_rates waiting to retry at 15:40:12."""
    s = seeded(home)
    s.submit(TASKS, retries=2)
    s.finish(s.start(s.current("start"), "local:101", 50), TaskState.SUCCESS, 49)
    for task in ("extract_products", "extract_payments", "extract_inventory"):
        s.hand_out(s.current(task), 48)
    rates = s.start(s.current("refresh_exchange_rates"), "local:102", 48)
    s.finish(rates, TaskState.UP_FOR_RETRY, 3, retry_in=15)  # next try at 15:40:12
    return s


def test_at_140_columns_queued_shows_task_names_that_tell_the_extracts_apart(
    tmp_path: Path,
) -> None:
    app = demo_run(tmp_path / "home").app()

    async def scenario(pilot: Any) -> None:
        panel = app.dashboard.queued_panel
        text = "\n".join(region_text(app, panel))
        for task in ("extract_products#1", "extract_payments#1", "extract_inventory#1"):
            assert task in text, text
        assert "refresh_exchange_rates#2" in text, text
        # Priority still shown beside them: the task took the width before it, not instead.
        assert "Prio" in text, text

    run_app(app, WIDE, scenario)


def test_a_retry_time_in_queued_is_shown_whole(tmp_path: Path) -> None:
    app = demo_run(tmp_path / "home").app()

    async def scenario(pilot: Any) -> None:
        text = "\n".join(region_text(app, app.dashboard.queued_panel))
        assert "at 15:40:12" in text, text

    run_app(app, WIDE, scenario)


def test_a_zoomed_queued_panel_takes_the_whole_width_and_shows_every_column(
    tmp_path: Path,
) -> None:
    app = demo_run(tmp_path / "home").app()

    async def scenario(pilot: Any) -> None:
        panel = app.dashboard.queued_panel
        await pilot.press("2", "z")
        await show(app, pilot)
        assert "ZOOMED" in str(app.dashboard.header.mode_line.render())
        assert panel.outer_size.width == WIDE[0]
        assert panel.outer_size.height > 30  # everything below the header
        text = "\n".join(region_text(app, panel))
        assert f"{DAG}/extract_inventory#1" in text, text
        assert "Queue@executor" in text and "default@local" in text, text
        await pilot.press("z")
        await show(app, pilot)
        assert panel.outer_size.width < WIDE[0] // 2 + 10  # its share of the row again

    run_app(app, WIDE, scenario)


def test_a_zoomed_running_panel_takes_the_whole_height(tmp_path: Path) -> None:
    app = demo_run(tmp_path / "home").app()

    async def scenario(pilot: Any) -> None:
        panel = app.dashboard.running_panel
        before = panel.outer_size.height
        await pilot.press("1", "z")
        await show(app, pilot)
        assert panel.outer_size.height > 30
        await pilot.press("z")
        await show(app, pilot)
        assert panel.outer_size.height == before

    run_app(app, WIDE, scenario)


def test_a_zoomed_events_panel_shows_whole_task_keys(tmp_path: Path) -> None:
    app = demo_run(tmp_path / "home").app()

    async def scenario(pilot: Any) -> None:
        panel = app.dashboard.events_panel
        await pilot.press("3", "z")
        await show(app, pilot)
        text = "\n".join(region_text(app, panel))
        assert f"{DAG}/publish_recommendations#1" in text, text
        assert f"{DAG}/compute_recommendations#1" in text, text

    run_app(app, WIDE, scenario)


def test_keys_of_one_dag_lose_their_shared_prefix_all_at_once_when_room_is_short(
    tmp_path: Path,
) -> None:
    app = demo_run(tmp_path / "home").app()

    async def scenario(pilot: Any) -> None:
        table = app.dashboard.queued_panel.table
        lines = [table.render_line(y).text for y in range(1, len(table.row_keys) + 1)]
        with_prefix = [line for line in lines if f"{DAG}/" in line or "…/" in line]
        # Either every key shows the dag or none does: never a mix.
        assert not with_prefix or len(with_prefix) == len(lines), lines

    run_app(app, WIDE, scenario)


def test_spare_width_goes_to_the_task_column_before_priority_and_queue() -> None:
    from console.tui.live_table import Column, _share_width

    columns = [
        Column("order", "#", 3),
        Column("task", "Task", 14, fit=True),
        Column("status", "Status", 11),
        Column("priority", "Prio", 4, min_width=0),
        Column("where", "Queue@executor", 14, min_width=0),
    ]
    widest = {1: (24, 29)}  # 24 without the dag every row shares, 29 with it
    # Room for the task without its dag, and for Prio: the queue stays hidden.
    assert _share_width(columns, 3 + 24 + 11 + 4 + 4 * 2, 2, widest) == [3, 24, 11, 4, 0]
    # Short of room: the task first, Prio and the queue hidden.
    assert _share_width(columns, 3 + 24 + 11 + 3 * 2 + 3, 2, widest) == [3, 24, 11, 0, 0]
    # Plenty: every column whole, the task with its dag.
    assert _share_width(columns, 140, 2, widest) == [3, 29, 11, 4, 14]
