"""The dashboard: header, Running, Queued, Events, Timeline and the executors' own panels.

::

    ┌ header: engine, executors and slots, counts, throughput sparkline ─────────┐
    │ 1 Running: what runs where, what it costs, what it last said               │
    │ 2 Queued (in dispatch order)          │ 3 Events (the audit log, newest first) │
    │ 4 Timeline (one lane per worker slot) │ 5+ executors' own panels (Workers)   │
    └ footer: keys ────────────────────────────────────────────────────────────────┘

Keys act on the selected task (the highlighted row of the focused panel) or
on the engine. Whether a key is offered is decided here from the executors'
capability flags and the read-only switch, never from an executor's name.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from textual import messages
from textual.app import ComposeResult
from textual.binding import Binding
from textual.css.scalar import Scalar
from textual.dom import DOMNode
from textual.reactive import Reactive
from textual.screen import ModalScreen, Screen
from textual.widget import Widget

from console.snapshot import Snapshot
from console.tui.events_panel import EventsPanel
from console.tui.filter_bar import FilterBar
from console.tui.footer import StableFooter
from console.tui.header_bar import HeaderBar
from console.tui.help_screen import HelpLine
from console.tui.keys import KEYS, action_name
from console.tui.live_table import LiveTable
from console.tui.messages import TaskOpened, TaskSelected
from console.tui.panel_frame import Column, PanelFrame, Row
from console.tui.queued_panel import QueuedPanel
from console.tui.running_panel import RunningPanel
from console.tui.task_panel import TaskPanel, TaskRef
from console.tui.timeline_panel import TimelinePanel
from console.tui.vended_panel import VendedPanel

if TYPE_CHECKING:
    from console.tui.app import ConsoleApp, VendedKey

RUNNING_MIN_ROWS = 2
ZOOMED_HEIGHT = Scalar.parse("1fr")
NARROW = 110  # columns
BACKGROUND_REFRESH = 2.0  # seconds between refreshes of the dashboard under a dialog


class DashboardScreen(Screen[None]):
    """The console's main screen; ``make_dashboard`` adds the executors' keys."""

    # Textual repaints the whole screen whenever the focus moves. Here the focus
    # styles (a panel's border and title, its table's cursor) refresh the widgets
    # they change by themselves, and the full repaint cost a third of a panel
    # switch (about 7 ms of 25 here).
    focused: Reactive[Widget | None] = Reactive(None, repaint=False)

    # Below NARROW columns the screen has the class -narrow (console.tcss: the
    # header's sparkline shrinks, Queued takes half the middle row).
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (NARROW, "-wide")]

    def __init__(self, vended_keys: list[VendedKey]) -> None:
        super().__init__(id="dashboard")
        self.vended_keys = vended_keys
        self.last_selected: TaskRef | None = None
        self._selected_from: TaskPanel | None = None  # the panel last_selected was chosen in
        self._selection_shown: TaskRef | None = None  # what the footer's keys were last decided for
        self._focus_before_filter: Widget | None = None
        self.running_panel = RunningPanel(id="running")
        self.queued_panel = QueuedPanel(id="queued")
        self.events_panel = EventsPanel(id="events")
        self.timeline_panel = TimelinePanel(id="timeline")
        self.header = HeaderBar(id="header")
        self.vended_panels: list[VendedPanel] = []
        self._paused_shown: bool | None = None
        self.zoomed: Widget | None = None
        self._running_rows: int | None = None
        # The latest snapshot not shown yet (another screen is on top).
        self._behind: Snapshot | None = None
        self._applied_at = 0.0  # time.monotonic() of the last snapshot shown

    @property
    def console_app(self) -> ConsoleApp:
        return self.app  # type: ignore[return-value]

    # ---- layout ------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        app = self.console_app
        yield self.header
        hotkey = 5
        for name, executor in app.context.executors.items():
            for spec in executor.console_panels():
                panel = VendedPanel(
                    spec, executor, app.context, str(hotkey), id=f"vended-{name}-{spec.id}"
                )
                self.vended_panels.append(panel)
                hotkey += 1
        yield self.running_panel
        with Row(id="row-middle"):
            yield self.queued_panel
            yield self.events_panel
        with Row(id="row-bottom"):
            yield self.timeline_panel
            if self.vended_panels:
                with Column(id="executor-panels"):
                    yield from self.vended_panels
        yield FilterBar()
        yield StableFooter()

    def on_mount(self) -> None:
        self.query_one(FilterBar).display = False
        self.running_panel.table.focus()
        self.call_after_refresh(self.console_app.dashboard_ready)

    @property
    def panels(self) -> list[Widget]:
        """Panels in hotkey order (1 Running, 2 Queued, 3 Events, 4 Timeline, 5+ executors')."""
        return [
            self.running_panel,
            self.queued_panel,
            self.events_panel,
            self.timeline_panel,
            *self.vended_panels,
        ]

    # ---- refresh ---------------------------------------------------------------------
    def apply(self, snapshot: Snapshot) -> None:
        """Show a new snapshot: every panel updates in place, in one batch.

        Not while another screen hides the dashboard (task detail, logs): the
        last snapshot is shown when it comes back. Under a dialog, which leaves
        it in view but dimmed, at most every BACKGROUND_REFRESH seconds: each
        change there redraws the dashboard and the dialog over it.
        """
        if not self.header.is_attached:
            return  # a late snapshot while the console closes
        top = self.app.screen
        if top is not self:
            self._behind = snapshot
            if not isinstance(top, ModalScreen):
                return
            now = time.monotonic()
            if now - self._applied_at < BACKGROUND_REFRESH:
                return
        self._show(snapshot)

    def on_screen_resume(self) -> None:
        """Back on top: show what changed while another screen covered the dashboard."""
        snapshot, self._behind = self._behind, None
        if snapshot is not None and not self.console_app.frozen:
            self._show(snapshot)

    def _show(self, snapshot: Snapshot) -> None:
        self._behind = None
        self._applied_at = time.monotonic()
        palette = self.console_app.palette
        with self.app.batch_update():
            self.size_running(snapshot)
            self._show_header(snapshot, snapshot.filter)
            for panel in (self.running_panel, self.queued_panel, self.events_panel):
                panel.refresh_panel(snapshot, palette)
            self.timeline_panel.refresh_panel(snapshot, palette, self.console_app.engine_since)
            for vended in self.vended_panels:
                vended.refresh_panel(snapshot)
        selection = self.selected_task
        if snapshot.header.paused != self._paused_shown or selection != self._selection_shown:
            # Paused, or the selected row left the screen or changed state: re-decide the keys.
            self._paused_shown = snapshot.header.paused
            self._selection_shown = selection
            self.refresh_bindings()

    def size_running(self, snapshot: Snapshot) -> None:
        """Make the Running panel as tall as its rows: one per worker slot, or per running task.

        Sized by the executors' slots rather than by what runs right now, so
        that the layout stays put while short tasks come and go (a new layout
        redraws the whole screen); CSS caps it at 40% of the screen.
        """
        slots = [view.parallelism for view in snapshot.header.executors]
        rows = len(snapshot.running)
        if slots and all(slots):  # every executor has a known, finite parallelism
            rows = max(rows, sum(slot or 0 for slot in slots))
        else:  # unlimited: follow what runs, shrinking only when a screenful fewer run
            shown = self._running_rows or 0
            rows = rows if rows > shown or rows < shown - 10 else shown
        self._running_rows = rows
        height = Scalar.from_number(max(RUNNING_MIN_ROWS, rows) + 3)  # its header row and the frame
        if self.zoomed is self.running_panel:
            height = ZOOMED_HEIGHT  # zoomed: the whole screen below the header
        if self.running_panel.styles.height != height:
            self.running_panel.styles.height = height

    def show_badges(self) -> None:
        """Redraw the header's badges (freeze, filter) from the last snapshot."""
        snapshot = self.console_app.snapshot
        if snapshot is not None and self.header.is_attached:
            self._show_header(snapshot, self.console_app.builder.filter)

    def _show_header(self, snapshot: Snapshot, filter_text: str | None) -> None:
        app = self.console_app
        self.header.show(
            snapshot.header,
            app.palette,
            frozen=app.frozen,
            read_only=app.context.read_only,
            engine_error=app.engine_error,
            filter_text=filter_text,
            zoomed=self.zoomed is not None,
        )

    # ---- focus -------------------------------------------------------------------------
    def set_focus(
        self, widget: Widget | None, scroll_visible: bool = True, from_app_focus: bool = False
    ) -> None:
        blurred = self.focused
        super().set_focus(widget, scroll_visible, from_app_focus)
        if blurred is widget:
            return
        # Everything a switch changes is drawn in this one call, so it reaches the
        # terminal as one frame: the two tables' cursor rows (without waiting for
        # their Focus and Blur events, whose handlers then find nothing to do) and
        # the two panels' frames.
        changed: list[Widget] = []
        for table, focused in ((blurred, False), (widget, True)):
            if isinstance(table, LiveTable):
                table.show_focus(focused)
                changed.append(table)
        changed += self.show_focused_panel()
        # Tell the screen now, not when each widget next idles (the panels would
        # idle only after their tables' Focus events, a frame later).
        for repainted in changed:
            self.post_message(messages.Update(repainted))

    def show_focused_panel(self) -> list[Widget]:
        """Title the panel that holds the focus as focused, the others not; returns those redrawn."""
        current = self.focused_panel
        redrawn: list[Widget] = []
        for panel in self.panels:
            if isinstance(panel, PanelFrame) and panel.show_focus(panel is current):
                redrawn.append(panel)
        return redrawn

    # ---- selection -----------------------------------------------------------------------
    @property
    def focused_panel(self) -> Widget | None:
        focused = self.focused
        for panel in self.panels:
            if focused is not None and (focused is panel or panel in focused.ancestors):
                return panel
        return None

    @property
    def selected_task(self) -> TaskRef | None:
        """The try task keys act on: one the operator can see highlighted.

        With a task panel focused, its highlighted row (None when the panel is
        empty: a row that has left the screen is not a target). With another
        panel focused (Workers, Timeline), the row last selected, while its
        panel still shows it, in the state shown there now.
        """
        panel = self.focused_panel
        if isinstance(panel, TaskPanel):
            return panel.selected
        last, source = self.last_selected, self._selected_from
        if last is None or source is None:
            return None
        return source.showing(last.ti_id)

    @property
    def focused_executor(self) -> str | None:
        """The executor whose panel has focus, else the selected task's executor."""
        panel = self.focused_panel
        if isinstance(panel, VendedPanel):
            return panel.executor.executor_name
        task = self.selected_task
        if task is not None and task.executor in self.console_app.context.executors:
            return task.executor
        return None

    def on_task_selected(self, message: TaskSelected) -> None:
        message.stop()
        self.last_selected = TaskRef(message.ti_id, message.key, message.state, message.executor)
        panel = self.focused_panel
        self._selected_from = panel if isinstance(panel, TaskPanel) else None
        self._selection_shown = self.selected_task
        self.refresh_bindings()

    def on_task_opened(self, message: TaskOpened) -> None:
        message.stop()
        task = self.selected_task
        if task is not None and task.ti_id == message.ti_id:
            self.console_app.run_task_action("detail", task)

    def on_descendant_focus(self) -> None:
        self.refresh_bindings()

    # ---- which keys are offered ---------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        app = self.console_app
        if action == "task":
            return app.task_action_allowed(str(parameters[0]), self.selected_task)
        if action in ("pause", "parallelism", "new_task", "open_workflow"):
            return app.engine_action_allowed(action, self.focused_executor)
        if action == "sort":
            return True if isinstance(self.focused, LiveTable) else None
        if action == "vended":
            return app.vended_key_allowed(
                self.vended_keys[int(str(parameters[0]))], self.selected_task, self.focused_executor
            )
        return True

    def help_lines(self) -> list[HelpLine]:
        """Every key with why it is unavailable here, if it is."""
        app = self.console_app
        lines = []
        for spec in KEYS:
            if spec.action.startswith("focus_panel(") and spec.keys != "1":
                continue
            name, params = action_name(spec.action)
            allowed = self.check_action(name, params)
            lines.append(
                HelpLine(
                    spec.group,
                    spec.display,
                    spec.description,
                    app.why_not(name, params, allowed, self),
                )
            )
        for index, vended in enumerate(self.vended_keys):
            allowed = self.check_action("vended", (index,))
            lines.append(
                HelpLine(
                    f"Executor {vended.executor}",
                    vended.binding.key,
                    vended.binding.description,
                    app.why_not("vended", (index,), allowed, self),
                )
            )
        lines.append(HelpLine("Everywhere", "tab / shift+tab", "Next / previous panel", ""))
        lines.append(HelpLine("Everywhere", "ctrl+p", "Command palette: every action by name", ""))
        return lines

    # ---- actions ----------------------------------------------------------------------------
    def action_help(self) -> None:
        self.console_app.show_help(self)

    def action_filter(self) -> None:
        bar = self.query_one(FilterBar)
        if not bar.display:
            # Where the focus goes back to once the filter is applied or cleared.
            self._focus_before_filter = self.focused
        bar.display = True
        bar.value = self.console_app.builder.filter or ""
        bar.focus()

    def on_filter_bar_filter_changed(self, message: FilterBar.FilterChanged) -> None:
        message.stop()
        self.console_app.set_filter(message.pattern)
        bar = self.query_one(FilterBar)
        had_focus = self.focused is bar
        bar.display = False
        if had_focus or self.focused is None:
            before, self._focus_before_filter = self._focus_before_filter, None
            if before is not None and before.is_attached and before.focusable:
                before.focus()  # back to the panel the operator filtered from
            else:
                self.running_panel.table.focus()

    def action_escape(self) -> None:
        if self.console_app.builder.filter:
            self.console_app.set_filter(None)
        elif self.zoomed is not None:
            self.zoom(None)
        elif self.maximized is not None:
            self.minimize()

    def action_task(self, name: str) -> None:
        task = self.selected_task
        if task is not None:
            self.console_app.run_task_action(name, task)

    def action_freeze(self) -> None:
        self.console_app.toggle_freeze()

    def action_zoom(self) -> None:
        if self.zoomed is not None:
            self.zoom(None)
        elif self.maximized is not None:
            self.minimize()
        elif self.focused_panel is not None:
            self.zoom(self.focused_panel)

    def zoom(self, panel: Widget | None) -> None:
        """Show ``panel`` alone below the header (None: every panel again).

        The other panels, and the rows that hold only them, are hidden, and the
        panel takes the whole width and height below the header (Queued's share
        of its row, Running's height by its rows, no longer hold). Textual's
        ``maximize`` would restyle every widget on the screen and redraw them all
        (35 ms of CPU, then 50-100 ms more to draw, measured here); hiding only
        lays the rows out again, and the header stays in view.
        """
        if panel is self.zoomed:
            return
        keep: set[DOMNode] = set() if panel is None else {panel, *panel.ancestors}
        parts: list[Widget] = [
            *self.panels,
            *self.query("#row-middle, #row-bottom, #executor-panels").results(Widget),
        ]
        with self.app.batch_update():
            if self.zoomed is not None:
                self._fill(self.zoomed, False)
            for part in parts:
                part.display = panel is None or part in keep
            self.zoomed = panel
            if panel is not None:
                self._fill(panel, True)
            snapshot = self.console_app.snapshot
            if snapshot is not None:
                self.size_running(snapshot)
            self.show_badges()

    @staticmethod
    def _fill(panel: Widget, zoomed: bool) -> None:
        """Let a zoomed panel take the whole width and height, whatever CSS gives it in its row.

        Inline styles, not a class: a class restyles the panel and its table.
        (Running's height is set by size_running.)
        """
        panel.styles.width = "1fr" if zoomed else None
        panel.styles.max_height = "100%" if zoomed else None

    def action_focus_panel(self, number: int) -> None:
        panels = self.panels
        if not 1 <= number <= len(panels):
            self.notify(
                f"there is no panel {number}: panels are 1 to {len(panels)}", severity="warning"
            )
            return
        panel = panels[number - 1]
        if self.zoomed is not None:
            self.zoom(panel)  # shown before it can take the focus
        # Focused at once (Widget.focus would defer it and repaint the widget whole).
        if isinstance(panel, TaskPanel):
            self.set_focus(panel.table)
        elif isinstance(panel, TimelinePanel):
            self.set_focus(panel.view)
        elif isinstance(panel, VendedPanel):
            panel.focus_inside()
        if self.maximized is not None:
            self.maximize(panel)

    def action_sort(self, step: int) -> None:
        focused = self.focused
        if isinstance(focused, LiveTable):
            focused.cycle_sort(step)

    def action_pause(self) -> None:
        self.console_app.toggle_pause()

    def action_parallelism(self, step: int) -> None:
        self.console_app.change_parallelism(step, self.focused_executor)

    def action_new_task(self) -> None:
        self.console_app.open_new_task()

    def action_open_workflow(self) -> None:
        self.console_app.open_workflow()

    def action_quit(self) -> None:
        self.console_app.request_quit()

    def action_vended(self, index: int) -> None:
        self.console_app.run_vended_key(self.vended_keys[index], self.selected_task)


def make_dashboard(vended_keys: list[VendedKey]) -> DashboardScreen:
    """A dashboard with the built-in keys plus each executor's own (built-ins win a clash)."""
    from console.tui.keys import bindings

    taken = {key for spec in KEYS for key in spec.keys.split(",")}
    extra: list[Any] = []
    for index, vended in enumerate(vended_keys):
        if vended.binding.key in taken:
            vended.clash = True
            continue
        taken.add(vended.binding.key)
        extra.append(Binding(vended.binding.key, f"vended({index})", vended.binding.description))
    # BINDINGS are merged when a class is created, so the executors' keys get a
    # class of their own; the console's keys are never changed at run time.
    screen_class = type("DashboardScreen", (DashboardScreen,), {"BINDINGS": [*bindings(), *extra]})
    return screen_class(vended_keys)
