"""A DataTable kept in step with live rows by key: changed cells only, sorted only on change.

Rebuilding a 10,000-row DataTable froze the UI for 1-4 s (measured here), so a
LiveTable never clears itself: each refresh removes rows that went away, adds
new ones, updates only the cells whose value changed, and reorders only when
the order actually changed. Callers keep the number of rows to what fits.

It also draws its own lines (``render_line``, Textual's line API): DataTable
renders every cell through Rich's generic Padding/Styled pipeline, about
0.2 ms a cell here, and a focus change, a zoom or a resize redraws every
visible cell of the table. With 4 tables on screen that made switching
panels cost 50-60 ms of CPU and zooming 150-250 ms. A LiveTable's cells are
one line of text each, so a line is composed directly from their segments,
with the same component styles (header, cursor, hover) and the same mouse
metadata as DataTable's, so that clicks and sorting by header work unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len, set_cell_size
from rich.console import Console, ConsoleOptions, RenderResult
from rich.control import strip_control_codes
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.coordinate import Coordinate
from textual.dom import NoScreen
from textual.geometry import Region, Size
from textual.message import Message
from textual.scrollbar import ScrollBar
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import DataTable
from textual.widgets.data_table import CellKey, DuplicateKey, RowKey
from textual.widgets.data_table import Row as DataTableRow

from console.tui.panel_frame import KeptLines

if TYPE_CHECKING:
    from typing import Self


FOCUS_COMPONENTS = (
    "datatable--cursor",
    "datatable--hover",
    "datatable--header",
    "datatable--header-hover",
)


class _SteadyScrollBar(ScrollBar, KeptLines):
    """A table's scrollbar that neither lays the screen out again nor redraws what it drew before.

    Textual draws a scrollbar through Rich, line by line, whenever its size
    changes (every zoom); its lines depend only on what ``lines_key`` names.
    """

    def lines_key(self, crop: Region) -> tuple[object, ...]:
        parent = self.parent
        return (
            self.region.size,
            crop,
            self.window_virtual_size,
            self.window_size,
            self.position,
            self.grabbed,
            self.mouse_over,
            self.app.theme,
            parent.background_colors if isinstance(parent, Widget) else None,
        )


@dataclass(frozen=True, slots=True)
class Column:
    """A column: its key, header and width.

    ``numeric`` columns sort biggest first. How the table's width is shared
    (``LiveTable.content_widths``): every column gets its minimum (``min_width``
    if set, else ``width``; a ``min_width`` of 0 hides the column while there
    is no room for it); then, in this order:

    1. ``fit`` columns grow to their longest cell (a task key without the dag
       prefix every row shares, see ``FitText``), up to ``max_width``;
    2. columns below ``width`` get it back, in column order (a hidden one
       only when it fits whole, a half-shown queue name helps no one);
    3. ``fit`` columns grow to their longest cell in full, if it fits whole;
    4. ``flex`` columns take the rest, in column order, up to ``max_width``.
    """

    key: str
    label: str
    width: int = 8
    numeric: bool = False
    flex: bool = False
    max_width: int | None = None
    fit: bool = False
    min_width: int | None = None

    @property
    def least(self) -> int:
        """The narrowest it gets (0: hidden)."""
        return self.width if self.min_width is None else min(self.min_width, self.width)


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
    says more than ``backfill_2025/parti…``. With ``shared_prefix`` (every row
    shown has the same ``dag/``: the panel says so), the prefix goes whole, with
    no ``…/`` in its place, and the column is sized for the text without it;
    the table then drops it from every row at once (``short``), so that the
    column does not mix keys with and without it.
    """

    __slots__ = ("shared_prefix", "style", "text")

    def __init__(self, text: str, style: str | Style = "", *, shared_prefix: bool = False) -> None:
        self.text = text
        self.style = style
        self.shared_prefix = shared_prefix

    @property
    def short(self) -> str:
        """The text without a shared prefix (the whole text when there is none)."""
        if not self.shared_prefix:
            return self.text
        _prefix, slash, rest = self.text.partition("/")
        return rest if slash else self.text

    def fitted(self, width: int, short: bool = False) -> str:
        """The text in ``width`` cells: first without its ``dag/`` prefix, then without its middle.

        ``short``: without a shared prefix even if the whole text fits.
        """
        text = self.text
        _prefix, slash, rest = text.partition("/")
        if slash and self.shared_prefix and short:
            return _middle_cut(rest, width)
        if len(text) <= width:
            return text
        if slash and self.shared_prefix:
            return _middle_cut(rest, width)
        if slash and width > 6:
            return "…/" + _middle_cut(rest, width - 2)
        return _middle_cut(text, width)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FitText) and (self.text, self.style, self.shared_prefix) == (
            other.text,
            other.style,
            other.shared_prefix,
        )

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


def shares_prefix(labels: Iterable[str]) -> bool:
    """Whether every label has the same ``prefix/`` (one dag): then it can go when room is short."""
    prefixes = {label.partition("/")[0] if "/" in label else None for label in labels}
    return len(prefixes) == 1 and None not in prefixes


def _cell_width(cell: Any, short: bool) -> int:
    """How many cells a cell's text takes (``short``: a FitText without its shared prefix)."""
    if isinstance(cell, FitText):
        return len(cell.short if short else cell.text)
    if isinstance(cell, Text):
        return cell.cell_len
    return cell_len(str(cell).partition("\n")[0])


def cell_text(text: str, style: str | Style = "") -> Text:
    """A cell's text: one line, never markup, cut with an ellipsis when too long."""
    return Text(text, style=style, no_wrap=True, overflow="ellipsis", end="")


def _share_width(
    columns: Sequence[Column], room: int, padding: int, widest: dict[int, tuple[int, int]]
) -> list[int]:
    """Each column's text width in ``room`` cells, each shown column taking ``padding`` more.

    See ``Column`` for the order in which the width is handed out.
    """
    widths = [column.least for column in columns]
    spare = room - sum(width + padding for width in widths if width)

    def grow(index: int, to: int, *, whole: bool = False) -> None:
        nonlocal spare
        width = widths[index]
        if to <= width:
            return
        cost = to - width + (padding if width == 0 else 0)
        if whole and cost > spare:
            return
        if width == 0 and spare <= padding:
            return
        give = min(cost, spare)
        if give <= 0:
            return
        widths[index] = width + give - (padding if width == 0 else 0)
        spare -= give

    def capped(column: Column, width: int) -> int:
        width = max(width, column.width)
        return width if column.max_width is None else min(width, column.max_width)

    for index, column in enumerate(columns):
        if column.fit:
            grow(index, capped(column, widest.get(index, (0, 0))[0]))
    for index, column in enumerate(columns):
        grow(index, column.width, whole=column.least == 0)
    for index, column in enumerate(columns):
        if column.fit:  # whole or not at all: a key cut short is shown without its prefix anyway
            grow(index, capped(column, widest.get(index, (0, 0))[1]), whole=True)
    for index, column in enumerate(columns):
        if column.flex and spare > 0:
            limit = room if column.max_width is None else column.max_width
            grow(index, min(widths[index] + spare, max(limit, widths[index])))
    return widths


def _as_text(row: LiveRow) -> LiveRow:
    # The first cell must be an object of its own (see LiveTable._apply_order):
    # a first cell of any other kind than Text or FitText becomes a Text of its
    # own. Other strings stay strings: a LiveTable draws its cells itself, never
    # as Rich markup (DataTable would read a log line's brackets as markup), and
    # making a Text of each (Rich strips control codes from every one) was a
    # tenth of a busy refresh, for rows mostly never drawn.
    first, *rest = row.cells
    cells = (first if isinstance(first, Text | FitText) else cell_text(str(first)), *rest)
    for cell in cells:
        if isinstance(cell, Text):
            cell.end = ""  # a Text's default "\n" end shifts the cell's text by one column
    return LiveRow(row.key, cells, row.sort_values)


def _cell_segments(cell: Any, width: int, console: Console, short: bool = False) -> list[Segment]:
    """A cell's one line of text cut to ``width`` cells, as segments (styles unset where plain).

    ``short``: a FitText without its shared prefix (see FitText).
    """
    if width <= 0:
        return []
    if isinstance(cell, str):
        # As cell_text would show it: one line, no control codes, an ellipsis when cut.
        line = strip_control_codes(cell.partition("\n")[0])
        if cell_len(line) > width:
            line = set_cell_size(line, width - 1) + "…"
        return [Segment(line)]
    if isinstance(cell, FitText):
        style = cell.style if isinstance(cell.style, Style) else Style.parse(cell.style or "")
        return [Segment(cell.fitted(width, short), style or None)]
    if isinstance(cell, Text):
        text = cell
        plain = text.plain
        if not text.spans and "\n" not in plain and cell_len(plain) <= width:
            # One style for the whole cell (most cells): no need for Rich's layout.
            return [Segment(plain, console.get_style(text.style) if text.style else None)]
        if "\n" in text.plain:
            text = text.split("\n")[0]
        if cell_len(text.plain) > width:
            text = text.copy()
            text.truncate(width, overflow="ellipsis" if cell.overflow == "ellipsis" else "crop")
        # Text.render leaves out the Text's own style (Rich applies it as a span when
        # laying text out): put it under the spans' styles here.
        base = console.get_style(text.style, default=None) if text.style else None
        return [
            Segment(
                segment.text,
                base + segment.style if base and segment.style else base or segment.style,
            )
            for segment in text.render(console, end="")
            if segment.text
        ]
    # Anything else (not produced by the console's panels): Rich's general path.
    lines = console.render_lines(
        cell, console.options.update(width=width, no_wrap=True, height=1), pad=False
    )
    return list(lines[0]) if lines else []


@dataclass(frozen=True, slots=True)
class _Place:
    """Where the operator is in a newest-first table, taken before its rows change.

    ``at_top``: the cursor on the first row with the view at the top, so the
    table follows the newest row. Otherwise ``lines`` holds each row in view
    by the screen line it is on (the cursor's row first), so that the first
    of them still shown can be kept on its line; ``scroll_y`` and ``cursor``
    are where the view and the cursor were.
    """

    at_top: bool
    lines: tuple[tuple[str, int], ...] = ()
    scroll_y: int = 0
    cursor: int = 0


# More rows added and removed than this in one refresh: rebuild the table instead.
REBUILD_CHURN = 16
STRIP_CACHE_SIZE = 4000  # drawn lines kept per table (a few screens' worth, in two styles)
STYLE_CACHE_SIZE = 20000  # combined cell styles kept per table (see _row_segments)


class LiveTable(DataTable[Any]):
    """A row-cursor DataTable updated in place by ``show(rows)``.

    Strings are shown as they are (never read as markup).

    By default the cursor stays on its row wherever that row moves, and the
    view scrolls only to keep the cursor in it. A ``newest_first`` table
    (Events: new rows arrive at the top) follows the top instead while its
    cursor is on the first row with the view at the top (in the natural
    order): new rows are shown, and the cursor is on the newest. Once the
    operator moved the cursor or scrolled away, the row they look at keeps
    its line on the screen as rows arrive above it.
    """

    # DataTable's own enter (hidden) opens the selected row; say so in the footer.
    BINDINGS = [Binding("enter", "select_cursor", "Detail", show=True)]

    class SortChanged(Message):
        """The operator chose another sort column or direction."""

        def __init__(self, table: LiveTable) -> None:
            super().__init__()
            self.table = table

    def __init__(
        self, columns: Sequence[Column], *, id: str | None = None, newest_first: bool = False
    ) -> None:
        super().__init__(id=id, cursor_type="row", show_row_labels=False)
        self.live_columns = list(columns)
        self.newest_first = newest_first
        self._rows: list[LiveRow] = []
        self._cells: dict[str, tuple[Any, ...]] = {}
        self._order: list[str] = []
        self.sort_column: int | None = None  # None: the natural order (e.g. dispatch order)
        self.sort_reverse = False
        self._widths_for: tuple[object, ...] | None = None
        self._widths: list[int] = []
        self._widths_version = 0  # drawn lines depend on it (see render_line)
        # The widest cell of each ``fit`` column (without and with a shared prefix),
        # kept while the table keeps its width (see _measure).
        self._widest: dict[int, tuple[int, int]] = {}
        self._widest_for: int | None = None
        self._short: frozenset[int] = frozenset()  # fit columns drawn without shared prefixes
        # Drawn lines by what they depend on: a focus change, a zoom or a resize
        # back to a size seen before draws from here (see render_line).
        self._strips: dict[tuple[object, ...], Strip] = {}
        self._versions: dict[str, int] = {}
        self._version = 0
        # Component styles (cursor, header, hover) by (focused, theme): see watch_has_focus.
        self._components: dict[tuple[bool, str], dict[str, Style]] = {}
        self._draw: tuple[int, Any, Style, list[int]] | None = None  # see render_lines
        self._styles: dict[tuple[Any, ...], Style] = {}  # see _row_segments

    def on_mount(self) -> None:
        self._ensure_columns()

    @property
    def vertical_scrollbar(self) -> ScrollBar:
        """Widget's scrollbar, but one whose resize does not lay the screen out again."""
        if self._vertical_scrollbar is None:
            self._vertical_scrollbar = bar = _SteadyScrollBar(
                vertical=True, name="vertical", thickness=self.scrollbar_size_vertical
            )
            bar.display = False
            self.app._start_widget(self, bar)
        return self._vertical_scrollbar

    # ---- focus without a restyle --------------------------------------------------
    # Textual restyles a widget whose focus changes (DataTable's CSS has :focus
    # rules) and redraws it whole: about 10 ms of CPU per table here, and every
    # visible line sent to the terminal again. Only the cursor row looks
    # different (a focused table is not tinted, see console.tcss), so once the
    # component styles of both states are known, a focus change repaints that
    # row alone.
    def watch_has_focus(self, has_focus: bool) -> None:
        if (has_focus, self.app.theme) not in self._components:
            super().watch_has_focus(has_focus)  # restyle, once per state and theme

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._components.pop((self.has_focus, self.app.theme), None)

    def focus(self, scroll_visible: bool = True) -> Self:
        """Take the focus (on the next message, as Widget.focus), without repainting every line."""

        def take(_table: LiveTable) -> None:
            try:
                self.screen.set_focus(self, scroll_visible=scroll_visible)
            except NoScreen:
                pass

        self.app.call_later(take, self)
        return self

    def show_focus(self, focused: bool) -> None:
        """Look focused or not: only the cursor row changes (the screen calls this as focus moves)."""
        if self.has_focus != focused:
            self.has_focus = focused
            self._refresh_cursor_row()

    def _on_focus(self, event: events.Focus) -> None:
        event.prevent_default()  # not Widget's: it would repaint every line
        self.show_focus(self._is_focused())
        if self.parent is not None:
            self.parent.post_message(events.DescendantFocus(self))

    def _on_blur(self, event: events.Blur) -> None:
        event.prevent_default()
        self.show_focus(self._is_focused())
        if self.parent is not None:
            self.parent.post_message(events.DescendantBlur(self))

    def _is_focused(self) -> bool:
        """Whether the screen's focus is here now (a Focus or Blur event may be stale)."""
        try:
            return self.screen.focused is self
        except NoScreen:
            return False

    def _refresh_cursor_row(self) -> None:
        if self.row_count and self.is_valid_row_index(self.cursor_row):
            self.refresh_row(self.cursor_row)

    def _component(self, name: str) -> Style:
        """A component's style for the table's focus state, as DataTable's CSS gives it."""
        key = (self.has_focus, self.app.theme)
        styles = self._components.get(key)
        if styles is None:
            # The last restyle was in this state (see watch_has_focus): read them now.
            styles = self._components[key] = {
                component: self.get_component_rich_style(component)
                for component in FOCUS_COMPONENTS
            }
        return styles[name]

    def _ensure_columns(self) -> None:
        # A snapshot may arrive before the table is mounted: columns come first either way.
        if not self.columns:
            for column in self.live_columns:
                self.add_column(Text(column.label), width=column.width, key=column.key)

    def content_widths(self) -> list[int]:
        """Each column's text width at the table's current size (0: the column is hidden).

        The width is shared as ``Column`` says: minimums first, then the task
        column up to its longest key, then columns squeezed below their width,
        then the flex columns the rest (so nothing scrolls sideways). This is
        worked out when a line is drawn, not stored in DataTable's columns (they
        keep the minimum widths), so a resize or a zoom is drawn once, at the
        right widths.
        """
        key = (
            self.size.width,
            self.cell_padding,
            self.styles.scrollbar_size_vertical,
            tuple(self._widest.items()),
        )
        if key == self._widths_for:
            return self._widths
        widths = _share_width(
            self.live_columns,
            self.size.width - self.styles.scrollbar_size_vertical,
            2 * self.cell_padding,
            self._widest,
        )
        # Fit columns too narrow for their longest key show every key short.
        short = frozenset(
            index for index, (_short, full) in self._widest.items() if widths[index] < full
        )
        if (widths, short) != (self._widths, self._short):
            self._widths_version += 1  # every line is drawn again
        self._widths_for, self._widths, self._short = key, widths, short
        return widths

    def _measure(self, rows: Sequence[LiveRow]) -> None:
        """Note the widest cell of each ``fit`` column.

        A column only widens while the table keeps its size (it narrows again
        on the next resize or zoom): rows come and go on every refresh of a
        busy run, and the columns to the right of the task would jump about.
        """
        fit = [index for index, column in enumerate(self.live_columns) if column.fit]
        if not fit:
            return
        keep = self._widest_for == self.size.width
        for index in fit:
            short = max((_cell_width(row.cells[index], True) for row in rows), default=0)
            full = max((_cell_width(row.cells[index], False) for row in rows), default=0)
            if keep and index in self._widest:
                kept_short, kept_full = self._widest[index]
                short, full = max(short, kept_short), max(full, kept_full)
            self._widest[index] = (short, full)
        self._widest_for = self.size.width

    def refresh(
        self,
        *regions: Region,
        repaint: bool = True,
        layout: bool = False,
        recompose: bool = False,
    ) -> Self:
        """Repaint; and lay the screen out again only when this table's rows could move something.

        DataTable asks for a layout whenever a row comes or goes. A LiveTable's
        height is set by its panel, so while every row fits (no scrollbar before
        or after) nothing else on the screen moves, and a layout, which redraws
        much of the screen, is skipped. In a busy run the Running table gains
        and loses rows on every refresh.
        """
        if layout and not recompose and self._rows_fit():
            layout = False
        return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)

    # ---- no measuring ------------------------------------------------------------
    # DataTable measures every cell of each new row (and each updated cell) on
    # idle, through Rich, to size auto-width columns and auto-height rows. A
    # LiveTable's columns have fixed minimum widths (content_widths() works out
    # the rest at draw time) and its rows are one line each, so the measuring
    # bought nothing: in a busy run, where Queued and Events get new rows on
    # every refresh, it was a tenth of the console's CPU.
    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        header_height = self.header_height if self.show_header else 0
        # The narrowest the columns get (a hidden one takes nothing): wider, nothing scrolls.
        padding = 2 * self.cell_padding
        width = sum(column.least + padding for column in self.live_columns if column.least)
        self.virtual_size = Size(width, self._total_row_height + header_height)

    def _update_column_widths(self, updated_cells: set[CellKey]) -> None:
        self._require_update_dimensions = True  # the virtual size, as DataTable would

    def _rows_fit(self) -> bool:
        height = self.styles.height
        if not self.is_mounted or height is None or height.is_auto:
            return False
        if self.show_vertical_scrollbar:
            return False  # it may have to go away: that is a layout
        rows = self.row_count + (self.header_height if self.show_header else 0)
        return rows <= self.size.height

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
        self._measure(self._rows)
        ordered = self._sorted(self._rows)
        selected = self.selected_key
        place = self._place() if self.newest_first else None
        wanted = {row.key for row in ordered}
        gone = [key for key in self._cells if key not in wanted]
        churn = len(gone) + sum(1 for row in ordered if row.key not in self._cells)
        if churn > REBUILD_CHURN:
            self._rebuild(ordered, selected, place)
            return
        with self.app.batch_update():
            for key in gone:
                self.remove_row(key)
                del self._cells[key]
                self._versions.pop(key, None)
            for row in ordered:
                old = self._cells.get(row.key)
                if old is None:
                    self.add_row(*row.cells, key=row.key)
                    self._cells[row.key] = row.cells
                    self._new_version(row.key)
                elif old != row.cells:
                    self._new_version(row.key)
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
            if place is not None:
                self._keep_place(place, selected)
            # The cursor stays on its task, wherever that row moved.
            elif selected is not None and selected in wanted:
                index = order.index(selected)
                if index != self.cursor_row:
                    self.move_cursor(row=index, scroll=False)

    def _rebuild(
        self, ordered: Sequence[LiveRow], selected: str | None, place: _Place | None = None
    ) -> None:
        """Replace every row at once: cheaper than removing rows one by one when many changed.

        DataTable.remove_row re-indexes every row below and re-validates the
        cursor, so a refresh that replaced 100 rows of Events in a busy run
        cost about 30 ms; clearing and adding them again costs a few.
        """
        cursor = self.cursor_row
        scroll_x, scroll_y = self.scroll_offset
        with self.app.batch_update():
            if place is not None:
                # clear() puts the cursor on the first row, and that move would scroll
                # the cursor into view after the next refresh: _keep_place places both.
                self.set_reactive(DataTable.cursor_coordinate, Coordinate(0, 0))
            self.clear()  # also scrolls to the top: the view is put back below
            old_cells, self._cells = self._cells, {}
            self._add_rows(ordered)
            for row in ordered:
                self._cells[row.key] = row.cells
                if old_cells.get(row.key) != row.cells:
                    self._new_version(row.key)
            for key in old_cells.keys() - self._cells.keys():
                self._versions.pop(key, None)
            self._order = [row.key for row in ordered]
            if place is not None:
                self.scroll_to(scroll_x, None, animate=False, immediate=True)
                self._keep_place(place, selected)
                return
            self.scroll_to(scroll_x, scroll_y, animate=False, immediate=True)
            if not self._order:
                return
            # The cursor stays on its task if it is still shown, else on its line.
            index = self._order.index(selected) if selected in self._cells else cursor
            index = max(0, min(index, len(self._order) - 1))
            if index != self.cursor_row:
                self.move_cursor(row=index, scroll=False)

    # ---- a newest-first table's view (see the class docstring) ---------------------------
    def _place(self) -> _Place:
        """Where the operator is, before the rows change."""
        scroll_y = self.scroll_offset.y
        cursor = self.cursor_row
        if not self._order or (cursor == 0 and scroll_y == 0 and self.sort_column is None):
            return _Place(at_top=True)
        height = self.size.height - (self.header_height if self.show_header else 0)
        shown = range(scroll_y, min(scroll_y + height, len(self._order)))
        rows = ([cursor] if cursor in shown else []) + list(shown)
        return _Place(
            at_top=False,
            lines=tuple((self._order[row], row - scroll_y) for row in rows),
            scroll_y=scroll_y,
            cursor=cursor,
        )

    def _keep_place(self, place: _Place, selected: str | None) -> None:
        """Put the view and the cursor back where ``place`` says the operator was.

        At the top: the view at the top, the cursor on the first row. Else the
        first of the rows that were in view still shown keeps its line (none
        left: the view stays), and the cursor stays on its row (gone: on its
        line).
        """
        if not self._order:
            return
        # The virtual size for the rows held now (DataTable works it out on idle),
        # so that the view can be placed below where the last rows ended.
        self._update_dimensions(())
        if place.at_top:
            self._place_view(0, 0)
            return
        index = {key: row for row, key in enumerate(self._order)}
        top = place.scroll_y
        for key, line in place.lines:
            if key in index:
                top = max(0, index[key] - line)
                break
        if selected is not None and selected in index:
            cursor = index[selected]
        else:
            cursor = top + place.cursor - place.scroll_y
        self._place_view(top, cursor)

    def _place_view(self, scroll_y: int, cursor: int) -> None:
        """Scroll to ``scroll_y`` and put the cursor on row ``cursor``, without scrolling to it.

        Moving DataTable's cursor scrolls it into view (after the next refresh);
        here the view is where it should be already.
        """
        if self.scroll_offset.y != scroll_y:
            self.scroll_to(None, scroll_y, animate=False, immediate=True, force=True)
        cursor = max(0, min(cursor, len(self._order) - 1))
        old = self.cursor_coordinate
        if cursor == old.row:
            return
        self.set_reactive(DataTable.cursor_coordinate, Coordinate(cursor, old.column))
        if self.is_valid_row_index(old.row):
            self.refresh_row(old.row)
        self._highlight_row(cursor)  # repaint it and say so (RowHighlighted), as a move does

    def _add_rows(self, rows: Sequence[LiveRow]) -> None:
        """DataTable.add_row for many rows at once, into an empty table.

        add_row re-validates the cursor (a reactive, with its watchers) and lists
        the columns anew for every row: 40% of a refresh that replaced Queued and
        Events. The table's bookkeeping is the same as add_row's (Textual 8.2).
        """
        if self.row_count:
            for row in rows:
                self.add_row(*row.cells, key=row.key)
            return
        column_keys = [column.key for column in self.ordered_columns]
        for index, row in enumerate(rows):
            row_key = RowKey(row.key)
            if row_key in self._row_locations:
                raise DuplicateKey(f"The row key {row_key!r} already exists.")
            self._row_locations[row_key] = index
            self._data[row_key] = dict(zip(column_keys, row.cells, strict=False))
            self.rows[row_key] = DataTableRow(row_key, 1, None, False)
            self._new_rows.add(row_key)
        if not rows:
            return
        self._require_update_dimensions = True
        self.cursor_coordinate = self.cursor_coordinate
        if self.columns and self.show_cursor and self.cursor_type != "none":
            self._highlight_cursor()  # as add_row does when the first row arrives
        self._update_count += 1
        self.check_idle()

    def _new_version(self, key: str) -> None:
        self._version += 1
        self._versions[key] = self._version

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

    # ---- drawing (Textual's line API) ---------------------------------------------------
    def render_lines(self, crop: Region) -> list[Strip]:
        # What every line of one draw shares, worked out once: rich_style walks
        # the styles of every ancestor, and read per line it was a twentieth of
        # the console's CPU in a busy run.
        self._draw = (self.size.width, self.scroll_offset, self.rich_style, self.content_widths())
        try:
            return super().render_lines(crop)
        finally:
            self._draw = None

    def render_line(self, y: int) -> Strip:
        """One line of the table: the header, a row, or blank below the last row."""
        draw = self._draw
        if draw is None:
            draw = (self.size.width, self.scroll_offset, self.rich_style, self.content_widths())
        width, (scroll_x, scroll_y), base_style, _widths = draw
        if self.show_header and y < self.header_height:
            if y > 0:
                return Strip.blank(width, base_style)
            row_index = -1
            row_key, version = "", 0
            cells: Sequence[Any] = [column.label for column in self.ordered_columns]
        else:
            row_index = y - (self.header_height if self.show_header else 0) + scroll_y
            if not 0 <= row_index < len(self._order):
                return Strip.blank(width, base_style)
            row_key = self._order[row_index]
            row_cells = self._cells.get(row_key)
            if row_cells is None:
                return Strip.blank(width, base_style)
            cells = row_cells
            version = self._versions.get(row_key, 0)
        show_cursor = self.show_cursor and self.cursor_type == "row"
        cursor = show_cursor and row_index >= 0 and row_index == self.cursor_row
        hover = (
            show_cursor
            and getattr(self, "_show_hover_cursor", False)
            and self.hover_coordinate.row == row_index
        )
        # The row's meta (for clicks) holds its index: a row that moved is drawn again.
        # The theme decides the component styles; focus only the cursor's and the hover's.
        key = (
            row_key,
            version,
            row_index,
            width,
            self._widths_version,
            scroll_x,
            cursor,
            hover,
            self.has_focus if cursor or hover else None,
            self.app.theme,
            base_style,
        )
        strip = self._strips.get(key)
        if strip is None:
            segments = self._row_segments(row_index, cells, base_style, cursor, hover)
            strip = Strip(segments)
            if scroll_x or strip.cell_length != width:
                strip = strip.crop_extend(scroll_x, scroll_x + width, base_style)
            strip = strip.simplify()
            if len(self._strips) > STRIP_CACHE_SIZE:
                self._strips.clear()
            self._strips[key] = strip
        return strip

    def _row_segments(
        self, row_index: int, cells: Sequence[Any], base_style: Style, cursor: bool, hover: bool
    ) -> list[Segment]:
        """A row's segments, styled as DataTable styles its cells (pre-style + cell + post-style).

        The combined styles are kept (``_styles``) by what they are made of: in a
        busy run every visible row is new on every refresh, and adding Rich
        styles (each cell's click metadata, the cursor's overlay, the cell's own
        style) was most of drawing a row.
        """
        component = self._component
        header = row_index == -1
        row_style = component("datatable--header") if header else base_style
        overlay = Style()
        if hover:
            overlay += component("datatable--hover")
            if header:
                overlay += component("datatable--header-hover")
        if cursor:
            overlay += component("datatable--cursor")
        # DataTable's default priorities: the cursor's colour wins, a cell's background wins.
        post_style = Style.from_color(color=overlay.color) if (cursor or hover) else Style()
        styles = self._styles
        if len(styles) > STYLE_CACHE_SIZE:
            styles.clear()
        padding = self.cell_padding
        pad = " " * padding
        console = self.app.console
        segments: list[Segment] = []
        total = 0
        widths = self._draw[3] if self._draw is not None else self.content_widths()
        short = self._short
        for column_index, (content_width, cell) in enumerate(zip(widths, cells, strict=False)):
            if not content_width:
                continue  # a hidden column (no room for it): not even its padding
            where = (row_style, overlay, post_style, row_index, column_index)
            plain = styles.get(where)
            if plain is None:
                pre = row_style + Style.from_meta({"row": row_index, "column": column_index})
                plain = styles[where] = pre + overlay + post_style
                styles[(*where, "pre")] = pre + overlay
            inner = _cell_segments(cell, content_width, console, column_index in short)
            used = 0
            if pad:
                segments.append(Segment(pad, plain))
            for text, style, _control in inner:
                used += cell_len(text)
                if style is None:
                    segments.append(Segment(text, plain))
                    continue
                combined = styles.get((*where, style))
                if combined is None:
                    combined = styles[(*where, style)] = (
                        styles[(*where, "pre")] + style + post_style
                    )
                segments.append(Segment(text, combined))
            if used < content_width:
                segments.append(Segment(" " * (content_width - used), plain))
            if pad:
                segments.append(Segment(pad, plain))
            total += content_width + 2 * padding
        remaining = self.size.width - total
        if remaining > 0:
            extend_style = (
                row_style
                + overlay
                + Style.from_meta({"row": row_index, "column": 0, "out_of_bounds": True})
            )
            segments.append(Segment(" " * remaining, extend_style))
        return segments

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
