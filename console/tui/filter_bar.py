"""The / filter: a regular expression matched against every panel's rows."""

from __future__ import annotations

import re

from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input


class FilterBar(Input):
    """A one-line input at the bottom; enter applies, esc clears and closes."""

    BINDINGS = [Binding("escape", "clear_filter", "Clear filter", show=False)]

    class FilterChanged(Message):
        """The operator applied a filter (None: cleared it)."""

        def __init__(self, pattern: str | None) -> None:
            super().__init__()
            self.pattern = pattern

    def __init__(self) -> None:
        super().__init__(
            placeholder="filter (regex) on task, run, state, executor, worker; esc clears",
            id="filter-bar",
        )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        pattern = event.value.strip() or None
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as error:
                self.app.notify(f"not a regular expression: {error}", severity="error")
                return
        self.post_message(self.FilterChanged(pattern))

    def action_clear_filter(self) -> None:
        self.value = ""
        self.post_message(self.FilterChanged(None))
