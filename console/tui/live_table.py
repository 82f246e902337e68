"""A DataTable kept in step with live rows by key: changed cells only, sorted only on change.

Rebuilding a 10,000-row DataTable froze the UI for 1-4 s (measured here), so a
LiveTable never clears itself: each refresh removes rows that went away, adds
new ones, updates only the cells whose value changed, and reorders only when
the order actually changed. Callers keep the number of rows to what fits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.style import Style
from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey


@dataclass(frozen=True, slots=True)
class Column:
    """A column: its key, header and width.

    ``numeric`` columns sort biggest first. ``flex`` columns take the width
    the others leave: each gets its ``width`` (the minimum), then the rest is
    handed out in column order up to each one's ``max_width``.
    """

    key: str
    label: str
    width: int = 8
    numeric: bool = False
    flex: bool = False
    max_width: int | None = None


@dataclass(frozen=True, slots=True)
class LiveRow:
    """A row as the table should show it, and the values it sorts by (one per column)."""

    key: str
    cells: tuple[Any, ...]
    sort_values: tuple[Any, ...]


def _middle_cut(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    if width < 3:
        return text[:width]
    head = (width - 1) // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head) :]


class FitText:
    """Cell text that, when too long for its column, loses its front or middle, not its end.

    Task keys differ at the end (``partition_00041#2``), so ``…/partition_00041#2``
    says more than ``backfill_2025/parti…``.
    """

    __slots__ = ("style", "text")

    def __init__(self, text: str, style: str | Style = "") -> None:
        self.text = text
        self.style = style

    def fitted(self, width: int) -> str:
        """The text in ``width`` cells: first without its ``dag/`` prefix, then without its middle."""
        text = self.text
        if len(text) <= width:
            return text
        _prefix, slash, rest = text.partition("/")
        if slash and width > 6:
            return "…/" + _middle_cut(rest, width - 2)
        return _middle_cut(text, width)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FitText) and (self.text, self.style) == (other.text, other.style)

    def __hash__(self) -> int:
        return hash(self.text)

    def __str__(self) -> str:
        return self.text

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield Text(
            self.fitted(options.max_width), style=self.style, no_wrap=True, overflow="crop", end=""
        )

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(1, len(self.text))


def cell_text(text: str, style: str | Style = "") -> Text:
    """A cell's text: one line, never markup, cut with an ellipsis when too long."""
    return Text(text, style=style, no_wrap=True, overflow="ellipsis", end="")


def _as_text(row: LiveRow) -> LiveRow:
    # Plain strings would be read as Rich markup by DataTable (a log line or a
    # mapped key holds brackets), and the first cell must be an object of its
    # own (see LiveTable._apply_order): strings, and a first cell of any other
    # kind, become a Text of their own.
    first, *rest = row.cells
    cells = (
        first if isinstance(first, Text | FitText) else cell_text(str(first)),
        *(cell_text(cell) if isinstance(cell, str) else cell for cell in rest),
    )
    for cell in cells:
        if isinstance(cell, Text):
            cell.end = ""  # a Text's default "\n" end shifts the cell's text by one column
    return LiveRow(row.key, cells, row.sort_values)


class LiveTable(DataTable[Any]):
    """A row-cursor DataTable updated in place by ``show(rows)``.

    Strings are shown as they are (never read as markup).
    """

    class SortChanged(Message):
        """The operator chose another sort column or direction."""

        def __init__(self, table: LiveTable) -> None:
            super().__init__()
            self.table = table

    def __init__(self, columns: Sequence[Column], *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", show_row_labels=False)
        self.live_columns = list(columns)
        self._rows: list[LiveRow] = []
        self._cells: dict[str, tuple[Any, ...]] = {}
        self._order: list[str] = []
        self.sort_column: int | None = None  # None: the natural order (e.g. dispatch order)
        self.sort_reverse = False

    def on_mount(self) -> None:
        self._ensure_columns()
        self.call_after_refresh(self.fit_columns)

    def _ensure_columns(self) -> None:
        # A snapshot may arrive before the table is mounted: columns come first either way.
        if not self.columns:
            for column in self.live_columns:
                self.add_column(Text(column.label), width=column.width, key=column.key)

    def on_resize(self) -> None:
        self.fit_columns()

    def fit_columns(self) -> None:
        """Give the flex columns what the fixed ones leave, so nothing scrolls sideways."""
        flex = [column for column in self.live_columns if column.flex]
        if not flex or self.size.width == 0:
            return
        padding = 2 * self.cell_padding
        used = sum(column.width + padding for column in self.live_columns)
        spare = max(0, self.size.width - self.styles.scrollbar_size_vertical - used)
        changed = None
        for column in flex:
            extra = spare
            if column.max_width is not None:
                extra = min(extra, column.max_width - column.width)
            extra = max(0, extra)
            spare -= extra
            width = column.width + extra
            current = self.columns[ColumnKey(column.key)]
            if current.width != width:
                current.width = width
                changed = column.key
        if changed is not None and self._order:
            # Re-measure the table (its scrollable width) through the public path.
            first = self._order[0]
            self.update_cell(first, changed, self.get_cell(first, changed), update_width=True)
        self.refresh()

    # ---- rows ------------------------------------------------------------------
    @property
    def row_keys(self) -> list[str]:
        """Row keys in display order."""
        return list(self._order)

    @property
    def selected_key(self) -> str | None:
        """The key of the row under the cursor, if any."""
        if not self._order or not self.is_valid_row_index(self.cursor_row):
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return row_key.value

    def show(self, rows: Sequence[LiveRow]) -> None:
        """Make the table hold exactly ``rows``, in order (or in the chosen sort order)."""
        self._ensure_columns()
        self._rows = [_as_text(row) for row in rows]
        ordered = self._sorted(self._rows)
        selected = self.selected_key
        wanted = {row.key for row in ordered}
        with self.app.batch_update():
            for key in [key for key in self._cells if key not in wanted]:
                self.remove_row(key)
                del self._cells[key]
            for row in ordered:
                old = self._cells.get(row.key)
                if old is None:
                    self.add_row(*row.cells, key=row.key)
                    self._cells[row.key] = row.cells
                elif old != row.cells:
                    merged = []
                    for column, before, after in zip(
                        self.live_columns, old, row.cells, strict=True
                    ):
                        if before != after:
                            self.update_cell(row.key, column.key, after)
                            merged.append(after)
                        else:
                            merged.append(before)
                    # Mirror exactly the objects the table holds (see _apply_order).
                    self._cells[row.key] = tuple(merged)
            order = [row.key for row in ordered]
            if order != self._order_in_table():
                self._apply_order(order)
            self._order = order
            # The cursor stays on its task, wherever that row moved.
            if selected is not None and selected in wanted:
                index = order.index(selected)
                if index != self.cursor_row:
                    self.move_cursor(row=index, scroll=False)

    def _order_in_table(self) -> list[str]:
        return [str(row.key.value) for row in self.ordered_rows]

    def _apply_order(self, order: list[str]) -> None:
        # DataTable.sort's key function sees only cell values, never the row key,
        # so rows are ranked by the identity of their first cell object, which
        # this table keeps (in self._cells) exactly as it handed it over.
        rank = {id(self._cells[key][0]): index for index, key in enumerate(order)}
        self.sort(key=lambda values: rank.get(id(values[0]), len(rank)))

    def _sorted(self, rows: Sequence[LiveRow]) -> list[LiveRow]:
        if self.sort_column is None:
            return list(rows)
        index = self.sort_column
        present = [row for row in rows if row.sort_values[index] is not None]
        missing = [row for row in rows if row.sort_values[index] is None]
        # Numbers read best biggest first (CPU, RSS, elapsed), text from A; unknowns last.
        reverse = self.sort_reverse != self.live_columns[index].numeric
        present.sort(key=lambda row: row.sort_values[index], reverse=reverse)
        return present + missing

    # ---- sorting by column -----------------------------------------------------------
    @property
    def sort_label(self) -> str:
        """``sorted by CPU ▼``, or "" in the natural order."""
        if self.sort_column is None:
            return ""
        arrow = "▲" if self.sort_reverse else "▼"
        return f"sorted by {self.live_columns[self.sort_column].label} {arrow}"

    def sort_by(self, column: int | None, reverse: bool = False) -> None:
        """Sort by a column (None: the natural order) and redraw at once."""
        self.sort_column = column
        self.sort_reverse = reverse
        self.show(self._rows)
        self.post_message(self.SortChanged(self))

    def cycle_sort(self, step: int) -> None:
        """Sort by the next (``step`` 1) or previous (-1) column; past the ends, the natural order."""
        positions: list[int | None] = [None, *range(len(self.live_columns))]
        current = positions.index(self.sort_column)
        self.sort_by(positions[(current + step) % len(positions)])

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        """Clicking a header sorts by it; clicking it again reverses the order."""
        event.stop()
        index = event.column_index
        reverse = not self.sort_reverse if self.sort_column == index else False
        self.sort_by(index, reverse)
