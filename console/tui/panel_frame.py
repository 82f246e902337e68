"""The dashboard panels' frame: a rounded border whose title says which panel has focus.

Textual would show focus with ``:focus-within`` CSS: on every focus change it
restyles the old and the new panel and everything inside them, then redraws
both panels whole (every visible line of their tables), about 80 ms of CPU
and 45 KB of terminal output per switch with 10,000 tasks queued (measured
here). Even a border repainted edge by edge is costly: Textual composes the
bounding box of everything dirty, and the side edges of two panels side by
side span the whole middle of the screen. So the border stays as CSS draws
it, and a ``PanelFrame`` shows focus in its title alone (a filled tab in the
theme's primary colour), repainting only the top edge; a subtitle change
(the sort order) repaints only the bottom edge.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.style import Style
from rich.text import Text
from textual.color import Color
from textual.containers import Horizontal, Vertical
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.widget import Widget

if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Self


KEPT_LINES = 16  # sizes and crops remembered per widget (a zoom alternates two)


class KeptLines(Widget):
    """Mixin for a widget whose drawn lines depend on a few things (``lines_key``).

    Put it after the Textual class in the bases: Textual takes CSS (layout,
    defaults) from the first base only. Textual drops a widget's drawn lines
    whenever its size changes, and a zoom changes the size of every panel
    twice (in, then out): about 30 ms of each zoom went to drawing the same
    frames and scrollbars again (measured here). It also lays the whole screen
    out a second time when a widget's virtual size changed during a layout;
    these widgets are sized by CSS or by their table and never scroll
    themselves, so nothing depends on their virtual size.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._kept_lines: dict[tuple[object, ...], list[Strip]] = {}

    def lines_key(self, crop: Region) -> tuple[object, ...]:
        """Everything this widget's own lines depend on (its children draw theirs)."""
        base, background = self.background_colors
        return (
            self.region.size,
            crop,
            self._frame_state(),
            base,
            background,
            self.app.theme,
            self.opacity,
            tuple(repr(line_filter) for line_filter in self.get_line_filters()),
        )

    def render_lines(self, crop: Region) -> list[Strip]:
        key = self.lines_key(crop)
        kept = self._kept_lines.get(key)
        if kept is None:
            kept = super().render_lines(crop)
            if len(self._kept_lines) >= KEPT_LINES:
                self._kept_lines.clear()
            self._kept_lines[key] = kept
        return kept

    def _size_updated(
        self, size: Size, virtual_size: Size, container_size: Size, layout: bool = True
    ) -> bool:
        return super()._size_updated(size, virtual_size, container_size, layout=False)

    def _frame_state(self) -> tuple[object, ...]:
        """What the title and subtitle look like (Textual's Content compares text, not style)."""
        return (
            self._border_title.markup if self._border_title is not None else None,
            self._border_subtitle.markup if self._border_subtitle is not None else None,
        )


class Row(Horizontal, KeptLines):
    """A row of panels (see KeptLines)."""


class Column(Vertical, KeptLines):
    """A column of panels (see KeptLines)."""


class PanelFrame(KeptLines):
    """Mixin (after the Textual class in the bases) for a widget with a ``round`` border (CSS class ``panel``) that draws its focus itself.

    Set the title with ``set_title``; the dashboard calls ``show_focus`` when
    the focus moves into or out of the panel.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._frame_edges: tuple[str, ...] = ()
        self._looks_focused = False
        self._title_text = ""
        self._subtitle_text = ""
        self._theme_shown: str | None = None

    # ---- what the dashboard calls ------------------------------------------------
    def set_title(self, title: str, subtitle: str | None = None) -> None:
        """Change the frame's title (and subtitle); only the edges that hold them are repainted."""
        edges = []
        if title != self._title_text:
            self._title_text = title
            edges.append("top")
        if subtitle is not None and subtitle != self._subtitle_text:
            self._subtitle_text = subtitle
            edges.append("bottom")
        if edges:
            self._draw_frame(*edges)

    def show_focus(self, focused: bool) -> bool:
        """Draw the title as focused (a filled tab) or not; True if it was redrawn."""
        if focused == self._looks_focused and self._theme_shown == self.app.theme:
            return False
        self._looks_focused = focused
        self._draw_frame("top")
        return True

    @property
    def looks_focused(self) -> bool:
        return self._looks_focused

    @property
    def frame_title(self) -> str:
        """The title as plain text (``border_title`` holds it with its style)."""
        return self._title_text

    @property
    def frame_subtitle(self) -> str:
        return self._subtitle_text

    # ---- drawing ---------------------------------------------------------------------
    def _colour(self, variable: str) -> Color:
        variables = self.app.theme_variables
        try:
            colour = Color.parse(variables.get(variable, ""))
        except Exception:
            return Color(128, 128, 128)
        if colour.a < 1:  # translucent theme colours are blended onto the background
            colour = Color.parse(variables.get("background", "#000000")) + colour
        return colour

    def _title_style(self) -> Style:
        if not self._looks_focused:
            return Style(color=self._colour("foreground-muted").rich_color)
        tab = self._colour("primary")
        return Style(color=tab.get_contrast_text().rich_color, bgcolor=tab.rich_color, bold=True)

    def _draw_frame(self, *edges: str) -> None:
        if not self.is_attached:  # before mounting: no theme yet, and nothing drawn
            self.border_title = self._title_text or None
            self.border_subtitle = self._subtitle_text or None
            return
        self._theme_shown = self.app.theme
        with self._repaint_frame_only(edges):
            self.border_title = (
                Text(f" {self._title_text} ", style=self._title_style())
                if self._title_text
                else None
            )
            self.border_subtitle = self._subtitle_text or None

    @contextmanager
    def _repaint_frame_only(self, edges: tuple[str, ...]) -> Iterator[None]:
        self._frame_edges = edges
        try:
            yield
        finally:
            self._frame_edges = ()

    def _edge_regions(self, edges: tuple[str, ...]) -> list[Region]:
        """The top and/or bottom edge, in the coordinates ``refresh`` takes (relative to the content)."""
        width, height = self.outer_size
        left, top = self.content_offset
        rows = {"top": 0, "bottom": height - 1}
        return [Region(-left, rows[edge] - top, width, 1) for edge in edges]

    def refresh(
        self,
        *regions: Region,
        repaint: bool = True,
        layout: bool = False,
        recompose: bool = False,
    ) -> Self:
        if self._frame_edges and not regions and not layout and not recompose:
            # A title changed: the lines inside did not.
            width, height = self.outer_size
            if width and height:
                regions = tuple(self._edge_regions(self._frame_edges))
        return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)
