"""The Workers panel the LocalExecutor vends to the console (``ConsolePanel``).

One row per worker process: pid, process title, idle or busy, the task it
runs, CPU % and RSS, tasks done. A worker that died stays visible for a few
seconds with why it ended. The panel works only from what the console hands
it on each poll (``refresh_panel(snapshot)``, whose ``workers`` rows carry
the psutil readings), so it never touches the executor from the UI thread.

Imported lazily by the console only: the headless commands never load Textual.
"""

from __future__ import annotations

from typing import Any

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.color import Color, ColorParseError
from textual.containers import Vertical
from textual.widgets import DataTable, Static
from textual.widgets.data_table import ColumnKey

# (key, header, width); the last two share what the others leave.
COLUMNS = (
    ("pid", "PID", 7),
    ("state", "State", 5),
    ("cpu", "CPU", 4),
    ("rss", "RSS", 6),
    ("done", "Done", 4),
    ("task", "Task or exit", 12),
    ("title", "Process title", 6),
)
FLEX_COLUMNS = ("task", "title")


def _cell(text: str, style: Style | str = "") -> Text:
    """One line of text, cut with an ellipsis when too long."""
    return Text(text, style=style, no_wrap=True, overflow="ellipsis", end="")


def _short_task(key: str) -> str:
    """``dag/task/run#2`` as ``task#2``: the part that tells workers apart in a narrow column."""
    body, _, try_number = key.partition("#")
    parts = body.split("/")
    if len(parts) == 3 and try_number:
        return f"{parts[1]}#{try_number}"
    return key


def _size(count: int | None) -> str:
    if count is None:
        return "-"
    value = float(count)
    for unit in ("B", "K", "M", "G"):
        if value < 1024 or unit == "G":
            return (
                f"{value:.0f}{unit}" if unit in ("B", "K") or value >= 100 else f"{value:.1f}{unit}"
            )
        value /= 1024
    return f"{value:.1f}G"


class WorkersPanel(Vertical):
    """Worker processes of one LocalExecutor, fed by the console's snapshots.

    Args:
        executor: the executor whose workers to list (only its name is read).
        console_context: the console's context (tells whether it hosts the engine).
    """

    DEFAULT_CSS = """
    WorkersPanel {
        height: 1fr;
    }
    WorkersPanel > DataTable {
        height: 1fr;
        background: $surface;
    }
    WorkersPanel > .workers-summary {
        height: 1;
        padding: 0 1;
        color: $foreground-muted;
    }
    """

    def __init__(self, executor: Any, console_context: Any = None) -> None:
        super().__init__()
        self.executor_name: str = executor.executor_name
        self.console_context = console_context
        self.table: DataTable[Any] = DataTable(cursor_type="row", show_row_labels=False)
        self.summary = Static(classes="workers-summary")
        self._cells: dict[str, tuple[Any, ...]] = {}
        self._summary = ""

    def compose(self) -> ComposeResult:
        yield self.summary
        yield self.table

    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            self.table.add_column(label, width=width, key=key)
        hosted = bool(getattr(self.console_context, "hosted", True))
        self.summary.update(
            "worker processes start on demand, up to the parallelism"
            if hosted
            else "workers are listed by the console that hosts the engine"
        )
        self.call_after_refresh(self._fit_columns)

    def _style(self, variable: str) -> Style:
        """A theme variable's colour (translucent ones blended onto the background)."""
        variables = self.app.theme_variables
        try:
            color = Color.parse(variables.get(variable, ""))
            if color.a < 1:
                color = Color.parse(variables.get("background", "")) + color
        except ColorParseError:
            return Style()
        return Style(color=color.rich_color)

    def _cells_for(self, row: Any) -> tuple[Any, ...]:
        if not row.alive:
            state = Text("dead", style=self._style("error"), end="")
            task = _cell(row.exit_reason or "exited", self._style("error"))
        elif row.busy:
            state = Text("busy", style=self._style("primary"), end="")
            task = _cell(_short_task(row.task) if row.task else "-")
        else:
            state = Text("idle", style=self._style("foreground-muted"), end="")
            task = _cell("-")
        cpu = "-" if row.cpu_percent is None else f"{row.cpu_percent:.0f}%"
        return (
            Text(str(row.pid), end=""),
            state,
            cpu,
            _size(row.rss),
            str(row.tasks_done),
            task,
            _cell(row.title, self._style("foreground-muted")),
        )

    def on_resize(self) -> None:
        self._fit_columns()

    def _fit_columns(self) -> None:
        """Share the width left by the fixed columns between task and title."""
        table = self.table
        if not table.columns or self.size.width == 0:
            return
        padding = 2 * table.cell_padding
        fixed = sum(width + padding for key, _label, width in COLUMNS if key not in FLEX_COLUMNS)
        spare = (
            self.size.width
            - table.styles.scrollbar_size_vertical
            - fixed
            - padding * len(FLEX_COLUMNS)
        )
        for key in FLEX_COLUMNS:
            minimum = next(width for k, _label, width in COLUMNS if k == key)
            table.columns[ColumnKey(key)].width = max(minimum, spare // len(FLEX_COLUMNS))
        if self._cells:
            # Re-measure the table's scrollable width through the public path.
            first = next(iter(self._cells))
            table.update_cell(first, "title", table.get_cell(first, "title"), update_width=True)
        table.refresh()

    def refresh_panel(self, snapshot: Any) -> None:
        """Show this executor's rows of ``snapshot.workers``; cells change only where values did."""
        rows = [
            row for row in getattr(snapshot, "workers", ()) if row.executor == self.executor_name
        ]
        wanted = {str(row.pid): row for row in rows}
        table = self.table
        with self.app.batch_update():
            for key in [key for key in self._cells if key not in wanted]:
                table.remove_row(key)
                del self._cells[key]
            added = False
            for key, row in wanted.items():
                cells = self._cells_for(row)
                old = self._cells.get(key)
                if old is None:
                    table.add_row(*cells, key=key)
                    self._cells[key] = cells
                    added = True
                elif old != cells:
                    merged = []
                    for (column, _label, _width), before, after in zip(
                        COLUMNS, old, cells, strict=True
                    ):
                        if before != after:
                            table.update_cell(key, column, after)
                        merged.append(after if before != after else before)
                    self._cells[key] = tuple(merged)
            if added:
                # Only when rows arrive: live ones first, by pid.
                order = {str(row.pid): (not row.alive, row.pid) for row in rows}
                table.sort("pid", key=lambda cell: order.get(cell.plain, (True, 0)))
        alive = [row for row in rows if row.alive]
        busy = sum(1 for row in alive if row.busy)
        dead = len(rows) - len(alive)
        if rows or getattr(self.console_context, "hosted", True):
            workers = "worker" if len(alive) == 1 else "workers"
            text = f"{len(alive)} {workers} · {busy} busy · {len(alive) - busy} idle"
            if dead:
                text += f" · {dead} died recently"
            if text != self._summary:
                self._summary = text
                # One line either way: no need to lay the whole screen out again.
                self.summary.update(text, layout=False)
