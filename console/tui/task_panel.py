"""What the task panels share: a titled frame around a LiveTable whose rows are tries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable

from console.tui.live_table import Column, LiveRow, LiveTable
from console.tui.messages import TaskOpened, TaskSelected
from console.tui.panel_frame import PanelFrame
from executors.task_key import TaskKey

if TYPE_CHECKING:
    from console.snapshot import Snapshot
    from console.tui.palette import Palette


@dataclass(frozen=True, slots=True)
class TaskRef:
    """The try a row stands for: what k, r, s, f, enter and l act on."""

    ti_id: int
    key: TaskKey
    state: str
    executor: str


class TaskPanel(Vertical, PanelFrame):
    """A panel listing tries; subclasses turn a snapshot into rows."""

    ALLOW_MAXIMIZE = True  # z zooms the whole panel, frame and title included

    COLUMNS: Sequence[Column] = ()
    TITLE = ""
    HOTKEY = ""
    # New rows arrive at the top: the table follows them (see LiveTable).
    NEWEST_FIRST = False

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="panel")
        self.table = LiveTable(
            self.COLUMNS, id=f"{id}-table" if id else None, newest_first=self.NEWEST_FIRST
        )
        self.tasks: dict[str, TaskRef] = {}
        self._announced: TaskRef | None = None
        self.set_title(self.title_text(""))

    def compose(self) -> ComposeResult:
        yield self.table

    def title_text(self, detail: str) -> str:
        hotkey = f"{self.HOTKEY} " if self.HOTKEY else ""
        return f"{hotkey}{self.TITLE}" + (f" · {detail}" if detail else "")

    # ---- subclasses -------------------------------------------------------------
    def rows(
        self, snapshot: Snapshot, palette: Palette
    ) -> tuple[list[LiveRow], dict[str, TaskRef], str]:
        """(rows, the try behind each row key, the title's detail)."""
        raise NotImplementedError

    # ---- refresh -------------------------------------------------------------------
    def refresh_panel(self, snapshot: Snapshot, palette: Palette) -> None:
        rows, tasks, detail = self.rows(snapshot, palette)
        self.tasks = tasks
        self.table.show(rows)
        self.set_title(self.title_text(detail), self.table.sort_label)
        self._announce_selection()

    @property
    def selected(self) -> TaskRef | None:
        key = self.table.selected_key
        return self.tasks.get(key) if key is not None else None

    def showing(self, ti_id: int) -> TaskRef | None:
        """The try ``ti_id`` as a row of this panel shows it now, or None if none does."""
        return next((task for task in self.tasks.values() if task.ti_id == ti_id), None)

    def _announce_selection(self) -> None:
        """Tell the screen which try is selected, when it changed (or its state did)."""
        task = self.selected
        if task is not None and self.table.has_focus and task != self._announced:
            self._announced = task
            self.post_message(TaskSelected(task.ti_id, task.key, task.state, task.executor))

    def on_descendant_focus(self) -> None:
        self._announced = None
        self._announce_selection()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._announce_selection()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        task = self.selected
        if task is not None:
            self.post_message(TaskOpened(task.ti_id))

    def on_live_table_sort_changed(self, event: LiveTable.SortChanged) -> None:
        self.set_title(self._title_text, self.table.sort_label)
