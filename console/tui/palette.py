"""Colours for text drawn in code (table cells, timeline bars), taken from the theme.

Layout colours live in the .tcss files; cells and bars are Rich Text built in
Python, so they take their colours from the running theme's variables here,
never from literal colour names, and follow a theme change.
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.color import Color as RichColor
from rich.style import Style
from rich.text import Text
from textual.color import Color, ColorParseError

# Which theme variable colours each task state.
STATE_VARIABLES: Mapping[str, str] = {
    "scheduled": "foreground-muted",
    "queued": "text-secondary",  # "secondary" is too dark to read on the panels
    "running": "primary",
    "success": "success",
    "failed": "error",
    "up_for_retry": "warning",
    "upstream_failed": "warning",
}

# How each state reads on screen: its own name, as `execconsole tasks list` prints it
# and `--state` takes it, so the console and the CLI never name one state two ways.
STATE_LABELS: Mapping[str, str] = {
    "scheduled": "scheduled",
    "queued": "queued",
    "running": "running",
    "success": "success",
    "failed": "failed",
    "up_for_retry": "up_for_retry",
    "upstream_failed": "upstream_failed",
}


class Palette:
    """Rich styles resolved from a theme's variables (``App.theme_variables``)."""

    def __init__(self, variables: Mapping[str, str]) -> None:
        self.variables = variables
        self._colors: dict[str, RichColor | None] = {}

    def color(self, variable: str) -> RichColor | None:
        """A theme variable as a Rich colour; translucent ones are blended onto the background."""
        if variable not in self._colors:
            self._colors[variable] = self._parse(variable)
        return self._colors[variable]

    def _parse(self, variable: str) -> RichColor | None:
        try:
            color = Color.parse(self.variables.get(variable, ""))
        except ColorParseError:
            return None
        if color.a < 1:
            try:
                color = Color.parse(self.variables.get("background", "")) + color
            except ColorParseError:
                color = color.with_alpha(1)
        return color.rich_color

    def style(self, variable: str, *, bold: bool = False, reverse: bool = False) -> Style:
        """A Rich style in the colour of a theme variable (plain when it is not a colour)."""
        return Style(color=self.color(variable), bold=bold, reverse=reverse)

    def background(self, variable: str) -> Style:
        color = self.color(variable)
        return Style(bgcolor=color) if color is not None else Style(reverse=True)

    def state(self, state: str, *, bold: bool = False) -> Style:
        return self.style(STATE_VARIABLES.get(state, "foreground"), bold=bold)

    def faded(self, state: str) -> RichColor | None:
        """A state's colour half-way to the background: for what is past (an earlier engine's slots)."""
        variable = STATE_VARIABLES.get(state, "foreground")
        key = f"faded:{variable}"
        if key not in self._colors:
            try:
                ink = Color.parse(self.variables.get(variable, ""))
                ground = Color.parse(self.variables.get("background", ""))
            except ColorParseError:
                self._colors[key] = self.color(variable)
            else:
                self._colors[key] = ground.blend(ink.with_alpha(1), 0.45).rich_color
        return self._colors[key]

    def state_text(self, state: str) -> Text:
        """A state name in its colour."""
        return Text(STATE_LABELS.get(state, state), style=self.state(state))

    def muted(self, text: str) -> Text:
        return Text(text, style=self.style("foreground-muted"))

    def plain(self, text: str) -> Text:
        """Text that is never read as markup (keys and log lines may hold brackets)."""
        return Text(text)
