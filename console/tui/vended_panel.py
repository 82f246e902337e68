"""A frame around a panel an executor vends (ConsolePanel): the console never names it."""

from __future__ import annotations

import logging
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Static

from console.snapshot import Snapshot
from console.tui.panel_frame import PanelFrame
from executors.base import BaseExecutor
from executors.vended import ConsolePanel

log = logging.getLogger(__name__)


class VendedPanel(Vertical, PanelFrame, can_focus=True):
    """Builds the executor's widget lazily and feeds it each snapshot.

    A broken plug-in must not break the console: if its widget cannot be
    built or fails to refresh, the frame says so and the console goes on.
    """

    ALLOW_MAXIMIZE = True

    def __init__(
        self,
        spec: ConsolePanel,
        executor: BaseExecutor,
        context: Any,
        hotkey: str,
        *,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id, classes="panel vended-panel")
        self.spec = spec
        self.executor = executor
        self.context = context
        self.hotkey = hotkey
        self.widget: Widget | None = None
        self.failed: str | None = None
        self.set_title(f"{hotkey} {spec.title} · {executor.executor_name}")

    def compose(self) -> ComposeResult:
        try:
            factory = self.spec.load()
            widget = factory(self.executor, self.context)
        except Exception as error:
            log.exception("could not build panel %s", self.spec.id)
            self.failed = f"{self.spec.title}: the panel could not be built ({error})"
            yield Static(Text(self.failed), classes="panel-error")
            return
        self.widget = widget
        yield widget

    def refresh_panel(self, snapshot: Snapshot) -> None:
        refresh = getattr(self.widget, "refresh_panel", None)
        if refresh is None or self.failed:
            return
        try:
            refresh(snapshot)
        except Exception as error:  # a plug-in bug must not stop the console's refresh
            log.exception("panel %s failed to refresh", self.spec.id)
            self.failed = f"{self.spec.title}: refresh failed ({error})"
            self.mount(Static(Text(self.failed), classes="panel-error"))

    def focus_inside(self) -> None:
        """Focus the panel's own focusable widget, or the frame."""
        for widget in self.query("*"):
            if widget.focusable:
                widget.focus()
                return
        self.focus()
