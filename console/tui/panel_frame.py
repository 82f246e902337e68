"""The dashboard panels' frame: a rounded border whose title says which panel has focus.

Textual would show focus with ``:focus-within`` CSS: on every focus change it
restyles the old and the new panel and everything inside them, then redraws
both panels whole (every visible line of their tables), about 80 ms of CPU
and 45 KB of terminal output per switch with 10,000 tasks queued (measured
here). A panel switch only needs to change the frames, so a ``PanelFrame``
sets its border colour and title style itself and repaints only its border:
the four edges, not the lines inside. Titles that change with every refresh
(counts, sort order) are repainted the same way.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.style import Style
from rich.text import Text
from textual.color import Color
from textual.geometry import Region
from textual.widget import Widget

if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Self


class PanelFrame(Widget):
    """A widget with a ``round`` border (CSS class ``panel``) that draws its focus itself.

    Set the title with ``set_title``; the dashboard calls ``show_focus`` when
    the focus moves into or out of the panel.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._frame_only = False
        self._looks_focused = False
        self._title_text = ""
        self._subtitle_text = ""
        self._theme_shown: str | None = None

    # ---- what the dashboard calls ------------------------------------------------
    def set_title(self, title: str, subtitle: str | None = None) -> None:
        """Change the frame's title (and subtitle); only the border is repainted."""
        if title == self._title_text and (subtitle is None or subtitle == self._subtitle_text):
            return
        self._title_text = title
        if subtitle is not None:
            self._subtitle_text = subtitle
        self._draw_frame()

    def show_focus(self, focused: bool) -> None:
        """Draw the frame as focused (primary colour, bold title) or not."""
        if focused == self._looks_focused and self._theme_shown == self.app.theme:
            return
        self._looks_focused = focused
        self._draw_frame()

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

    def _draw_frame(self) -> None:
        if not self.is_attached:  # before mounting: no theme yet, and nothing drawn
            self.border_title = self._title_text or None
            self.border_subtitle = self._subtitle_text or None
            return
        self._theme_shown = self.app.theme
        focused = self._looks_focused
        border = self._colour("primary" if focused else "border-blurred")
        title = self._colour("primary" if focused else "foreground-muted")
        with self._repaint_frame_only():
            self.styles.border = ("round", border)
            self.border_title = (
                Text(self._title_text, style=Style(color=title.rich_color, bold=focused))
                if self._title_text
                else None
            )
            self.border_subtitle = self._subtitle_text or None

    @contextmanager
    def _repaint_frame_only(self) -> Iterator[None]:
        self._frame_only = True
        try:
            yield
        finally:
            self._frame_only = False

    def _frame_regions(self) -> list[Region]:
        """The four edges, in the coordinates ``refresh`` takes (relative to the content)."""
        width, height = self.outer_size
        left, top = self.content_offset
        return [
            Region(-left, -top, width, 1),
            Region(-left, height - 1 - top, width, 1),
            Region(-left, -top, 1, height),
            Region(width - 1 - left, -top, 1, height),
        ]

    def refresh(
        self,
        *regions: Region,
        repaint: bool = True,
        layout: bool = False,
        recompose: bool = False,
    ) -> Self:
        if self._frame_only and not regions and not layout and not recompose:
            # The border changed (same kind, same width): the lines inside did not.
            width, height = self.outer_size
            if width and height:
                regions = tuple(self._frame_regions())
        return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)
