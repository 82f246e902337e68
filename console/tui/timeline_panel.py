"""The Timeline panel: recent tries as bars on one lane per worker slot (a Gantt chart).

Where people would rather look than read: gaps show idle slots, long bars
show slow tasks, red shows failures, and a bar still growing at the right
edge is running now.
"""

from __future__ import annotations

from typing import NamedTuple

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
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

    def render(self) -> Text:
        palette = self.palette
        width = self._bar_width()
        height = max(self.size.height - 2, 1)  # the axis and the legend
        if palette is None or not self.bars:
            return Text("No task has started yet.", style="dim")
        self._drawn = placed = self._placed(width)
        lanes = self.lanes[:height]  # one line each at least
        rows: dict[str, list[tuple[str, Style]]] = {
            lane: [(" ", Style())] * width for lane in lanes
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
                    cells[x] = (" ", Style())
                    continue
                char = label[offset] if offset < len(label) else " "
                cells[x] = (char, style)
        text = Text(no_wrap=True, overflow="crop")
        label_style = palette.style("foreground-muted")
        # With room to spare (a zoomed panel), lanes grow to two-line bars and a gap.
        per_lane = max(1, min(3, height // max(len(lanes), 1)))
        bar_lines = per_lane - 1 if per_lane > 1 else 1
        blank = "\u00a0" * LANE_LABEL_WIDTH  # leading blanks would be trimmed
        for lane in lanes:
            for line in range(bar_lines):
                label = (
                    f"{lane[: LANE_LABEL_WIDTH - 1]:<{LANE_LABEL_WIDTH}}" if line == 0 else blank
                )
                text.append(label, style=label_style)
                for char, style in rows[lane]:
                    text.append(char if line == 0 else " ", style=style)
                text.append("\n")
            if per_lane > bar_lines:
                text.append("\n")
        text.append(self._axis(width), style=label_style)
        text.append("\n")
        text.append(f"{'':<{LANE_LABEL_WIDTH}}".replace(" ", "\u00a0"))
        for state in ("running", "success", "failed", "up_for_retry"):
            text.append("  ")
            text.append("  ", style=Style(bgcolor=palette.state(state).color))
            text.append(f" {STATE_LABELS[state]}", style=label_style)
        return text

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
