"""The ? screen: every key, what it does, and why it is greyed out or hidden here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from console.tui.palette import Palette


@dataclass(frozen=True, slots=True)
class HelpLine:
    """One key on the help screen."""

    group: str
    keys: str
    description: str
    status: str  # "" when available, else why not


class HelpScreen(ModalScreen[None]):
    """Keys by group, as k9s and htop users expect them."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def __init__(self, lines: Sequence[HelpLine], palette: Palette, summary: str) -> None:
        super().__init__(classes="dialog-screen")
        self.lines = list(lines)
        self.palette = palette
        self.summary = summary

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog", id="help-dialog"):
            yield Static(
                Text("Keys", style=self.palette.style("primary", bold=True)), classes="dialog-title"
            )
            yield Static(Text(self.summary), classes="dialog-detail")
            yield Static(self._table())
            yield Static(
                Text(
                    "Every action is in the command palette too (ctrl+p). "
                    "Click a column header to sort by it. esc closes.",
                    style=self.palette.style("foreground-muted"),
                ),
                classes="help-note",
            )

    def _table(self) -> Table:
        table = Table(box=None, padding=(0, 2), show_header=True, expand=True)
        table.add_column("Key", style=self.palette.style("accent", bold=True), no_wrap=True)
        table.add_column("Does")
        table.add_column("Here", style=self.palette.style("foreground-muted"))
        group = None
        for line in self.lines:
            if line.group != group:
                group = line.group
                table.add_row(Text(group, style=self.palette.style("primary", bold=True)), "", "")
            status = Text(
                line.status or "✓",
                style=self.palette.style("success")
                if not line.status
                else self.palette.style("foreground-muted"),
            )
            table.add_row(Text(line.keys), Text(line.description), status)
        return table

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(None)
