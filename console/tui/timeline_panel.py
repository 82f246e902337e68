"""The Timeline panel: recent tries as bars on one lane per worker slot (a Gantt chart).

Where people would rather look than read: gaps show idle slots, long bars
show slow tasks, red shows failures, and a bar still growing at the right
edge is running now.

Bars are drawn for the latest tries (and every running one). When the store
holds more, the snapshot adds marks: per lane and second, how many tries
ended in each state, so a lane that ran hundreds of short tries is never
drawn idle, and the title says which tries have bars. A cell where tries
of several states ended shows two of them, success always among them
(half a cell each, ``▌``), so a failure never hides the successes beside it.
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

from console.cli.output import plural
from console.snapshot import Snapshot, TimelineBar, TimelineMark, parse_time
from console.tui.palette import STATE_LABELS, Palette
from console.tui.panel_frame import PanelFrame

LANE_LABEL_WIDTH = 20  # at most: lane names are as wide as the longest needs
AXIS_LABEL = "time →"
TITLE_MARGIN = 7  # what the frame takes around the title: corners, edges, spaces
WINDOWS = (30, 60, 120, 300, 600, 1800, 3600)


# Which state a cell shows first when tries of several states ended in it.
SEVERITY = ("failed", "up_for_retry", "running", "success")
MIXED = "▌"  # left half: success (or the less severe state), right half: the other


class _Layout(NamedTuple):
    """The drawing, reduced to cells: redraw only when this changes."""

    window: int
    lanes: tuple[str, ...]
    width: int
    bars: tuple[tuple[str, int, int, str, str], ...]  # lane, first cell, last cell, state, task
    marks: tuple[tuple[str, int, int, str], ...] = ()  # lane, first cell, last cell, state
    old: frozenset[str] = frozenset()  # lanes of an earlier engine, drawn faded


def order_lanes(
    bars: tuple[TimelineBar, ...], marks: tuple[TimelineMark, ...], engine_since: float | None
) -> tuple[list[str], frozenset[str]]:
    """The lanes top to bottom, and which of them are an earlier engine's.

    A lane is an earlier engine's when nothing runs in it and its last try
    ended before the current engine took the store (``engine_since``, seconds
    relative to the snapshot; None: not known, every lane is current). The
    current engine's lanes come first, by name (they stay put from one
    refresh to the next); the earlier ones after them, the most recent first.
    """
    last: dict[str, float] = {}
    for bar in bars:
        end = 0.0 if bar.end is None else bar.end
        last[bar.lane] = max(last.get(bar.lane, end), end)
    for mark in marks:
        last[mark.lane] = max(last.get(mark.lane, mark.second + 1), mark.second + 1)
    old = frozenset(
        lane for lane, ended in last.items() if engine_since is not None and ended < engine_since
    )
    current = sorted(lane for lane in last if lane not in old)
    earlier = sorted(old, key=lambda lane: (-last[lane], lane))
    return current + earlier, old


def _window_for(bars: tuple[TimelineBar, ...], marks: tuple[TimelineMark, ...] = ()) -> int:
    """The shortest window (seconds) that shows every bar's start and every mark, within an hour."""
    starts = [bar.start for bar in bars] + [mark.second for mark in marks]
    earliest = -min(starts, default=-30.0)
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
        self.marks: tuple[TimelineMark, ...] = ()
        self.palette: Palette | None = None
        self.window = WINDOWS[1]
        self.lanes: list[str] = []
        self.old_lanes: frozenset[str] = frozenset()
        self._drawn: _Layout | None = None
        self._lines_for: tuple[object, ...] | None = None
        self._lines: list[Strip] = []
        self._frame: list[Strip] | None = None

    def show(
        self,
        bars: tuple[TimelineBar, ...],
        palette: Palette,
        marks: tuple[TimelineMark, ...] = (),
        engine_since: float | None = None,
    ) -> None:
        """Take new bars and marks; redraw only if one moved by a cell, changed or appeared.

        ``engine_since``: when the current engine took the store, in seconds
        relative to the snapshot (None: not known); see ``order_lanes``.
        """
        if palette is not self.palette:
            self._drawn = None  # another theme: everything changes colour
        self.bars, self.marks, self.palette = bars, marks, palette
        self.window = _window_for(bars, marks)
        self.lanes, self.old_lanes = order_lanes(bars, marks, engine_since)
        placed = self._placed(self._bar_width())
        if placed != self._drawn:
            self.refresh()

    def on_resize(self) -> None:
        self._drawn = None

    @property
    def label_width(self) -> int:
        """The lanes' name column: as wide as the longest name needs (a space after it), at most LANE_LABEL_WIDTH.

        ``local:41201`` takes 12 of a small terminal's 44 columns, not 20.
        """
        longest = max((len(lane) for lane in self.lanes), default=0)
        return min(LANE_LABEL_WIDTH, max(longest, len(AXIS_LABEL)) + 2)

    def _bar_width(self) -> int:
        return max(self.size.width - self.label_width - 1, 10)

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
        marks = set()
        for mark in self.marks:
            if mark.second < -self.window - 1:
                continue
            first = max(0, int((mark.second + self.window) * scale))
            last = min(width - 1, max(first, int((mark.second + 1 + self.window) * scale) - 1))
            if first < width:
                marks.add((mark.lane, first, last, mark.state))
        return _Layout(
            self.window,
            tuple(self.lanes),
            width,
            tuple(placed),
            tuple(sorted(marks)),
            self.old_lanes,
        )

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
        # What ran or ended in each cell, by state: from bars of three cells or more
        # (long), and from shorter bars and marks (short); and the long bars' labels.
        long: dict[str, list[set[str]]] = {lane: [set() for _ in range(width)] for lane in lanes}
        short: dict[str, list[set[str]]] = {lane: [set() for _ in range(width)] for lane in lanes}
        gaps: dict[str, set[int]] = {lane: set() for lane in lanes}
        labels: dict[str, dict[int, tuple[str, str]]] = {lane: {} for lane in lanes}
        for lane, first, last, state, task_id in placed.bars:
            if lane not in long:
                continue
            if last - first < 2:
                for x in range(first, last + 1):
                    short[lane][x].add(state)
                continue
            # A long bar starts with a gap, so back-to-back tries on one worker
            # read as two bars (the gap hides only the long bar before it), and
            # carries its task's name.
            gaps[lane].add(first)
            label = f" {task_id}" if last - first >= 3 else ""
            for x in range(first + 1, last + 1):
                long[lane][x].add(state)
                if x - first < len(label):
                    labels[lane][x] = (label[x - first], state)
        for lane, first, last, state in placed.marks:
            if lane in short:
                for x in range(first, last + 1):
                    short[lane][x].add(state)
        states = {
            lane: [
                short[lane][x] if x in gaps[lane] else short[lane][x] | long[lane][x]
                for x in range(width)
            ]
            for lane in lanes
        }
        rows = {
            lane: [
                self._cell(cell, labels[lane].get(x), palette, faded=lane in placed.old)
                for x, cell in enumerate(cells)
            ]
            for lane, cells in states.items()
        }
        label_style = palette.style("foreground-muted")
        old_label_style = label_style + Style(dim=True, italic=True)
        lines: list[Strip] = []
        # With room to spare (a zoomed panel), lanes grow to two-line bars and a gap.
        per_lane = max(1, min(3, height // max(len(lanes), 1)))
        bar_lines = per_lane - 1 if per_lane > 1 else 1
        label_width = self.label_width
        blank = " " * label_width
        for lane in lanes:
            for line in range(bar_lines):
                label = f"{lane[: label_width - 1]:<{label_width}}" if line == 0 else blank
                style = old_label_style if lane in placed.old else label_style
                parts: list[tuple[str, Style | None]] = [(label, style)]
                parts += (
                    rows[lane]
                    if line == 0
                    else [(char if char == MIXED else " ", style) for char, style in rows[lane]]
                )
                lines.append(self._strip(parts, base, full))
            if per_lane > bar_lines:
                lines.append(self._strip([], base, full))
        lines.append(self._strip([(self._axis(width), label_style)], base, full))
        legend: list[tuple[str, Style | None]] = [(" " * label_width, None)]
        for state in ("running", "success", "failed", "up_for_retry"):
            legend.append(("  ", None))
            legend.append(("  ", Style(bgcolor=palette.state(state).color)))
            legend.append((f" {STATE_LABELS[state]}", label_style))
        if any(lane in placed.old for lane in lanes):
            legend.append(("   faded: an earlier engine's slots", old_label_style))
        lines.append(self._strip(legend, base, full))
        return lines

    @staticmethod
    def _cell(
        states: set[str], label: tuple[str, str] | None, palette: Palette, *, faded: bool = False
    ) -> tuple[str, Style | None]:
        """One cell of a lane: blank, one state's colour (with a bar's label), or two states.

        ``faded``: an earlier engine's lane, in colours half-way to the background.
        """
        if not states:
            return (" ", None)
        ink = palette.color("background")
        if faded:
            (state, *_) = sorted(
                states, key=lambda s: SEVERITY.index(s) if s in SEVERITY else len(SEVERITY)
            )
            char = label[0] if label is not None and label[1] == state else " "
            return (char, Style(bgcolor=palette.faded(state), color=ink))
        if len(states) == 1:
            (state,) = states
            char = label[0] if label is not None and label[1] == state else " "
            return (char, Style(bgcolor=palette.state(state).color, color=ink))
        ranked = sorted(states, key=lambda s: SEVERITY.index(s) if s in SEVERITY else len(SEVERITY))
        worst = ranked[0]
        other = "success" if "success" in states and worst != "success" else ranked[1]
        return (
            MIXED,
            Style(color=palette.state(other).color, bgcolor=palette.state(worst).color),
        )

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
        """Tick labels under the bars: -5m ... -1m now, as many as fit apart."""
        axis = [" "] * width
        for x, label in _tick_labels(self.window, width):
            for i, char in enumerate(label):
                if 0 <= x + i < width:
                    axis[x + i] = char
        # The label column says what the axis is (leading blanks would be trimmed).
        return f"{AXIS_LABEL:<{self.label_width}}" + "".join(axis)


def _tick_labels(window: int, width: int) -> list[tuple[int, str]]:
    """Where each tick label goes: the window cut into up to 5 steps, labels a space apart at least.

    A step divides the window evenly and, from a minute up, is whole minutes
    (-5m -4m ..., never -3m20s); one step (the window's start and now) at least.
    """
    for ticks in (5, 4, 3, 2, 1):
        step, rest = divmod(window, ticks)
        if ticks > 1 and (rest or (step >= 60 and step % 60)):
            continue
        placed = []
        for tick in range(ticks + 1):
            seconds = int(window * (ticks - tick) / ticks)
            label = "now" if seconds == 0 else f"-{_span(seconds)}"
            placed.append((max(0, min(int(width * tick / ticks), width - len(label))), label))
        apart = all(
            x + len(label) < next_x
            for (x, label), (next_x, _) in zip(placed, placed[1:], strict=False)
        )
        if apart or ticks == 1:
            return placed
    return []


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

    def refresh_panel(
        self, snapshot: Snapshot, palette: Palette, engine_since: float | None = None
    ) -> None:
        """Show the snapshot's bars; ``engine_since``: when the current engine took the
        store (seconds since the epoch; None: not known)."""
        since = None
        taken = parse_time(snapshot.taken_at)
        if engine_since is not None and taken is not None:
            since = engine_since - taken
        self.view.show(snapshot.timeline, palette, snapshot.timeline_marks, since)
        self.set_title(self.title_text(snapshot.timeline_bars))

    def title_text(self, bars: int) -> str:
        """``4 Timeline · last 30s · 2 worker slots``, and when not every try has a bar, which do.

        As long as the panel's width allows: the note on bars is kept before
        the count of slots (the lanes are in view anyway), the span before both.
        """
        lanes = len(self.view.lanes)
        head = f"{self.HOTKEY} Timeline · last {_span(self.view.window)}"
        slots = plural(lanes, "worker slot")
        if not bars:
            candidates = [f"{head} · {slots}", head]
        else:
            candidates = [
                f"{head} · {slots} · bars for the last {bars} tries",
                f"{head} · bars for the last {bars} tries",
                f"{head} · bars: last {bars} tries",
                head,
            ]
        width = self.outer_size.width
        if not width:
            return candidates[0]
        # The frame's corners and the spaces around the title take TITLE_MARGIN cells.
        return next((c for c in candidates if len(c) + TITLE_MARGIN <= width), candidates[-1])
