"""The Queued panel: tries waiting to start, in the order they will start."""

from __future__ import annotations

from rich.text import Text

from console.snapshot import QueuedRow, Snapshot
from console.tui import formatting as fmt
from console.tui.live_table import Column, FitText, LiveRow, shares_prefix
from console.tui.palette import Palette
from console.tui.task_panel import TaskPanel, TaskRef

TITLE_MARGIN = 7  # what the frame takes around the title: corners, edges, spaces


def _status(item: QueuedRow, palette: Palette) -> Text:
    """Why it has not started: queued (handed to its executor: it starts next),
    scheduled and free to start, blocked by N upstream tasks, or waiting until its
    retry time. The states by their own names, as `execconsole tasks list` prints them."""
    if item.state == "queued":
        return Text("queued", style=palette.state("queued", bold=True))
    if item.blocked_by:
        return palette.muted(f"blocked {item.blocked_by}")
    if item.not_before:
        return Text(f"at {fmt.clock_time(item.not_before)}", style=palette.state("up_for_retry"))
    return Text("scheduled", style=palette.style("foreground"))


class QueuedPanel(TaskPanel):
    """Key, priority, queue, executor and time waiting, first to start at the top."""

    TITLE = "Queued"
    HOTKEY = "2"
    # The task's minimum keeps Status in view at 80 columns. Wider, the task
    # comes first: it grows to its longest key before Prio and Queue@executor
    # (hidden while there is no room for them) are shown; zoomed, all of it.
    COLUMNS = (
        Column("order", "#", 3, numeric=True),
        Column("task", "Task", 14, fit=True),
        Column("status", "Status", 11),  # "at 15:40:12" whole
        Column("priority", "Prio", 4, numeric=True, min_width=0),
        Column("where", "Queue@executor", 14, min_width=0),
        Column("waiting", "Wait", 5, numeric=True),  # "2h14m"
    )

    def rows(
        self, snapshot: Snapshot, palette: Palette
    ) -> tuple[list[LiveRow], dict[str, TaskRef], str]:
        rows, tasks = [], {}
        labels = [fmt.task_label(item.key) for item in snapshot.queued]
        one_dag = shares_prefix(labels)  # its name can go when room is short
        for position, (item, label) in enumerate(zip(snapshot.queued, labels, strict=True), 1):
            key = str(item.id)
            tasks[key] = TaskRef(item.id, item.key, item.state, item.executor)
            rows.append(
                LiveRow(
                    key,
                    (
                        str(position),
                        FitText(label, shared_prefix=one_dag),
                        _status(item, palette),
                        str(item.priority),
                        FitText(f"{item.queue}@{item.executor}"),
                        fmt.age(item.waiting),
                    ),
                    (
                        -position,  # numeric columns sort biggest first: first to start on top
                        label,
                        item.state,
                        item.priority,
                        f"{item.queue}@{item.executor}",
                        item.waiting,
                    ),
                )
            )
        return rows, tasks, self.detail(snapshot.queue_depth, len(rows), bool(snapshot.filter))

    def detail(self, depth: int, shown: int, filtered: bool) -> str:
        """The title's detail, as long as the panel's width allows.

        "To start" counts what the header calls scheduled and queued.
        """
        suffix = " · filtered" if filtered else ""
        if depth <= shown:
            candidates = [f"{depth:,} to start{suffix}", f"{depth:,}{suffix}"]
        else:
            candidates = [
                f"{depth:,} to start · first {shown} shown{suffix}",
                f"{shown} of {depth:,} to start{suffix}",
                f"{shown} of {depth:,}{suffix}",
            ]
        # The frame's corners and the spaces around the title take TITLE_MARGIN cells.
        width = self.outer_size.width
        if not width:
            return candidates[0]
        room = width - TITLE_MARGIN - len(self.title_text(""))
        return next((c for c in candidates if len(c) + 3 <= room), candidates[-1])
