"""The Queued panel: tries waiting to start, in the order they will start."""

from __future__ import annotations

from rich.text import Text

from console.snapshot import QueuedRow, Snapshot
from console.tui import formatting as fmt
from console.tui.live_table import Column, FitText, LiveRow
from console.tui.palette import Palette
from console.tui.task_panel import TaskPanel, TaskRef


def _status(item: QueuedRow, palette: Palette) -> Text:
    """Why it has not started: handed out (to its executor: it starts next), ready,
    blocked by N upstream tasks, or waiting until its retry time."""
    if item.state == "queued":
        return Text("handed out", style=palette.state("queued", bold=True))
    if item.blocked_by:
        return palette.muted(f"blocked {item.blocked_by}")
    if item.not_before:
        return Text(f"at {fmt.clock_time(item.not_before)}", style=palette.state("up_for_retry"))
    return Text("ready", style=palette.style("foreground"))


class QueuedPanel(TaskPanel):
    """Key, priority, queue, executor and time waiting, first to start at the top."""

    TITLE = "Queued"
    HOTKEY = "2"
    COLUMNS = (
        Column("order", "#", 3, numeric=True),
        Column("task", "Task", 19, flex=True),
        Column("status", "Status", 10),
        Column("priority", "Prio", 4, numeric=True),
        Column("where", "Queue@executor", 14),
        Column("waiting", "Wait", 4, numeric=True),
    )

    def rows(
        self, snapshot: Snapshot, palette: Palette
    ) -> tuple[list[LiveRow], dict[str, TaskRef], str]:
        rows, tasks = [], {}
        for position, item in enumerate(snapshot.queued, start=1):
            key = str(item.id)
            tasks[key] = TaskRef(item.id, item.key, item.state, item.executor)
            rows.append(
                LiveRow(
                    key,
                    (
                        str(position),
                        FitText(fmt.task_label(item.key)),
                        _status(item, palette),
                        str(item.priority),
                        FitText(f"{item.queue}@{item.executor}"),
                        fmt.age(item.waiting),
                    ),
                    (
                        -position,  # numeric columns sort biggest first: first to start on top
                        fmt.task_label(item.key),
                        item.state,
                        item.priority,
                        f"{item.queue}@{item.executor}",
                        item.waiting,
                    ),
                )
            )
        # "To start" counts what the header calls waiting and handed out.
        depth = snapshot.queue_depth
        detail = f"{depth:,} to start"
        if depth > len(rows):
            detail += f" · first {len(rows)} shown"
        if snapshot.filter:
            detail += " · filtered"
        return rows, tasks, detail
