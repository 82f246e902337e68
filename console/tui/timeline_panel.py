"""The Timeline panel: recent tries as bars on one lane per worker slot (a Gantt chart).

Where people would rather look than read: gaps show idle slots, long bars
show slow tasks, red shows failures, and a bar still growing at the right
edge is running now.
"""

from __future__ import annotations

from typing import NamedTuple

from rich.segment import Segment
from rich.style import Style
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from console.snapshot import Snapshot, TimelineBar
from console.tui.palette import STATE_LABELS, Palette
from console.tui.panel_frame import PanelFrame

LANE_LABEL_WIDTH = 20
WINDOWS = (30, 60, 120, 300, 600, 1800, 3600)


class _Layout(NamedTuple):
    """The drawing, reduced to cells: redraw only when this changes."""

    window: int
    lanes: tuple[str, ...]
    width: int
    bars: tuple[tuple[str, int, int, str, str], ...]  # lane, first cell, last cell, state, task


def _window_for(bars: tuple[TimelineBar, ...]) -> int:
    """The shortest window (seconds) that shows every bar's start, within an hour."""
    earliest = -min((bar.start for bar in bars), default=-30.0)
    for window in WINDOWS:
        if earliest <= window:
            return window
    return WINDOWS[-1]


def _span(seconds: int) -> str:
    return f"{seconds // 60}m" if seconds >= 60 and seconds % 60 == 0 else f"{seconds}s"


class TimelineView(Widget, can_focus=True):
    """Draws the bars; redrawn on each snapshot and on resize."""

    DEFAULT_CSS = """
    TimelineView {
        width: 1fr;
        height: 1fr;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.bars: tuple[TimelineBar, ...] = ()
        self.palette: Palette | None = None
        self.window = WINDOWS[1]
        self.lanes: list[str] = []
        self._drawn: _Layout | None = None
        self._lines_for: tuple[object, ...] | None = None
        self._lines: list[Strip] = []
        self._frame: list[Strip] | None = None

    def show(self, bars: tuple[TimelineBar, ...], palette: Palette) -> None:
        """Take new bars; redraw only if some bar moved by a cell, changed or appeared."""
        if palette is not self.palette:
            self._drawn = None  # another theme: everything changes colour
        self.bars, self.palette = bars, palette
        self.window = _window_for(bars)
        self.lanes = sorted({bar.lane for bar in bars})
        placed = self._placed(self._bar_width())
        if placed != self._drawn:
            self.refresh()

    def on_resize(self) -> None:
        self._drawn = None

    def _bar_width(self) -> int:
        return max(self.size.width - LANE_LABEL_WIDTH - 1, 10)

    def _placed(self, width: int) -> _Layout:
        """Where each bar lands, in cells: what the drawing depends on besides the palette."""
        scale = width / self.window
        placed = []
        for bar in sorted(self.bars, key=lambda b: b.start):
            first = max(0, int((bar.start + self.window) * scale))
            end = bar.end if bar.end is not None else 0.0
            last = min(width - 1, max(first, int((end + self.window) * scale) - 1))
            if first >= width or end < -self.window:
                continue
            placed.append((bar.lane, first, last, bar.state, bar.key.task_id))
        return _Layout(self.window, tuple(self.lanes), width, tuple(placed))

    # ---- drawing (Textual's line API) ----------------------------------------------
    # Drawn line by line from segments, not as one Rich Text: Textual turned the
    # Text into lines through its Visual pipeline (styles and link styles applied
    # cell by cell) on every redraw, and in a busy run the bars move on every
    # refresh. Lines are kept by what they show, so a lane whose bars did not
    # move is not drawn again.
    def render_lines(self, crop: Region) -> list[Strip]:
        self._frame = self._drawing()  # worked out once per draw, not once per line
        try:
            return super().render_lines(crop)
        finally:
            self._frame = None

    def render_line(self, y: int) -> Strip:
        lines = self._frame if self._frame is not None else self._drawing()
        if y < len(lines):
            return lines[y]
        return Strip.blank(self.size.width, self.rich_style)

    def _drawing(self) -> list[Strip]:
        """Every line of the panel, as drawn for the current bars, size and palette."""
        width = self._bar_width()
        key = (self._placed(width), self.size, self.palette, self.app.theme, self.rich_style)
        if self._lines_for == key:
            return self._lines
        self._drawn = key[0]
        self._lines_for = key
        self._lines = self._draw(key[0])
        return self._lines

    def _draw(self, placed: _Layout) -> list[Strip]:
        palette = self.palette
        base = self.rich_style
        full = self.size.width
        if palette is None or not self.bars:
            return [self._strip([("No task has started yet.", Style(dim=True))], base, full)]
        width = placed.width
        height = max(self.size.height - 2, 1)  # the axis and the legend
        lanes = self.lanes[:height]  # one line each at least
        rows: dict[str, list[tuple[str, Style | None]]] = {
            lane: [(" ", None)] * width for lane in lanes
        }
        ink = palette.color("background")
        for lane, first, last, state, task_id in placed.bars:
            cells = rows.get(lane)
            if cells is None:
                continue
            style = Style(bgcolor=palette.state(state).color, color=ink)
            # A bar of three cells or more starts with a gap, so back-to-back
            # tries on one worker read as two bars, and carries its task's name.
            gap = last - first >= 2
            label = f" {task_id}" if last - first >= 3 else ""
            for x in range(first, last + 1):
                offset = x - first
                if gap and offset == 0:
                    cells[x] = (" ", None)
                    continue
                char = label[offset] if offset < len(label) else " "
                cells[x] = (char, style)
        label_style = palette.style("foreground-muted")
        lines: list[Strip] = []
        # With room to spare (a zoomed panel), lanes grow to two-line bars and a gap.
        per_lane = max(1, min(3, height // max(len(lanes), 1)))
        bar_lines = per_lane - 1 if per_lane > 1 else 1
        blank = " " * LANE_LABEL_WIDTH
        for lane in lanes:
            for line in range(bar_lines):
                label = (
                    f"{lane[: LANE_LABEL_WIDTH - 1]:<{LANE_LABEL_WIDTH}}" if line == 0 else blank
                )
                parts: list[tuple[str, Style | None]] = [(label, label_style)]
                parts += rows[lane] if line == 0 else [(" ", style) for _, style in rows[lane]]
                lines.append(self._strip(parts, base, full))
            if per_lane > bar_lines:
                lines.append(self._strip([], base, full))
        lines.append(self._strip([(self._axis(width), label_style)], base, full))
        legend: list[tuple[str, Style | None]] = [(" " * LANE_LABEL_WIDTH, None)]
        for state in ("running", "success", "failed", "up_for_retry"):
            legend.append(("  ", None))
            legend.append(("  ", Style(bgcolor=palette.state(state).color)))
            legend.append((f" {STATE_LABELS[state]}", label_style))
        lines.append(self._strip(legend, base, full))
        return lines

    @staticmethod
    def _strip(parts: list[tuple[str, Style | None]], base: Style, width: int) -> Strip:
        """One line from (text, style) runs over the widget's own style, cut or padded to ``width``."""
        segments: list[Segment] = []
        text, style = "", None
        for chunk, chunk_style in parts:  # runs of one style become one segment
            if chunk_style == style:
                text += chunk
                continue
            if text:
                segments.append(Segment(text, base + style if style else base))
            text, style = chunk, chunk_style
        if text:
            segments.append(Segment(text, base + style if style else base))
        return Strip(segments).crop_extend(0, width, base)

    def _axis(self, width: int) -> str:
        """Tick labels under the bars: -5m ... -1m now."""
        axis = [" "] * width
        ticks = 5
        for tick in range(ticks + 1):
            seconds = int(self.window * (ticks - tick) / ticks)
            label = "now" if seconds == 0 else f"-{_span(seconds)}"
            x = min(int(width * tick / ticks), width - len(label))
            for i, char in enumerate(label):
                if 0 <= x + i < width:
                    axis[x + i] = char
        # The label column says what the axis is (leading blanks would be trimmed).
        return f"{'time →':<{LANE_LABEL_WIDTH}}" + "".join(axis)


class TimelinePanel(Vertical, PanelFrame):
    """The framed timeline."""

    ALLOW_MAXIMIZE = True  # z zooms the whole panel, frame and title included

    HOTKEY = "4"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="panel")
        self.view = TimelineView(id=f"{id}-view" if id else None)
        self.set_title(f"{self.HOTKEY} Timeline")

    def compose(self) -> ComposeResult:
        yield self.view

    def refresh_panel(self, snapshot: Snapshot, palette: Palette) -> None:
        self.view.show(snapshot.timeline, palette)
        lanes = len(self.view.lanes)
        self.set_title(
            f"{self.HOTKEY} Timeline · last {_span(self.view.window)} · {lanes} worker slot"
            + ("" if lanes == 1 else "s")
        )
