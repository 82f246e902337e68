"""The Running panel: tries whose process runs, what each costs, what it last said."""

from __future__ import annotations

from rich.text import Text

from console.snapshot import Snapshot
from console.tui import formatting as fmt
from console.tui.live_table import Column, FitText, LiveRow, cell_text
from console.tui.palette import Palette
from console.tui.task_panel import TaskPanel, TaskRef


class RunningPanel(TaskPanel):
    """Key, pid, worker, elapsed, CPU and RSS of the process tree, last log line."""

    TITLE = "Running"
    HOTKEY = "1"
    # The minimum widths fit an 80-column terminal (61, plus 2 cells of padding
    # a column and the scrollbar's gutter: 77 of its 78 inner columns), so no
    # horizontal scrollbar takes one of the panel's rows. Wider, Task and the
    # last log line take the rest.
    COLUMNS = (
        Column("task", "Task", 16, flex=True, max_width=40),
        Column("pid", "PID", 7, numeric=True),
        Column("worker", "Worker", 12),
        Column("elapsed", "Elapsed", 7, numeric=True),
        Column("cpu", "CPU", 4, numeric=True),
        Column("rss", "RSS", 6, numeric=True),
        Column("last", "Last log line", 9, flex=True),
    )

    def rows(
        self, snapshot: Snapshot, palette: Palette
    ) -> tuple[list[LiveRow], dict[str, TaskRef], str]:
        rows, tasks = [], {}
        labels = fmt.distinct_task_labels(item.key for item in snapshot.running)
        for item in snapshot.running:
            key = str(item.id)
            tasks[key] = TaskRef(item.id, item.key, "running", item.executor)
            elapsed = Text(fmt.duration(item.elapsed))
            if item.timeout and item.elapsed and item.elapsed > item.timeout * 0.8:
                elapsed.stylize(palette.style("warning"))  # close to its timeout
            cpu = Text(fmt.percent(item.cpu_percent))
            if item.cpu_percent is not None and item.cpu_percent >= 90:
                cpu.stylize(palette.style("warning", bold=True))
            rows.append(
                LiveRow(
                    key,
                    (
                        FitText(labels[item.key], palette.state("running")),
                        str(item.pid or "-"),
                        item.worker or "-",
                        elapsed,
                        cpu,
                        fmt.size(item.rss),
                        cell_text(item.last_line, palette.style("foreground-muted")),
                    ),
                    (
                        labels[item.key],
                        item.pid,
                        item.worker,
                        item.elapsed,
                        item.cpu_percent,
                        item.rss,
                        item.last_line,
                    ),
                )
            )
        return rows, tasks, f"{len(rows)}"
