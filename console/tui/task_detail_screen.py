"""The enter screen: every field of a try, its state history, its tries and its log tail."""

from __future__ import annotations

import json
import shlex
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Log, Static

from console.snapshot import TaskDetail, home_relative
from console.tui import formatting as fmt
from console.tui.footer import StableFooter
from console.tui.messages import TaskDetailLoaded
from console.tui.palette import Palette
from console.tui.task_panel import TaskRef
from executors.state import TaskState
from store.records import TASK_COLUMNS, TaskRecord

if TYPE_CHECKING:
    from console.tui.app import ConsoleApp

REFRESH_INTERVAL = 1.0
LOG_TAIL_LINES = 40
# Fields shown first, in the order an operator asks about them.
FIRST_FIELDS = (
    "state",
    "reason",
    "executor",
    "pid",
    "worker",
    "hostname",
    "exit_code",
    "signal",
    "duration",
)


def state_text(palette: Palette, state: str) -> Text:
    """A state by its real name, in its colour.

    The panels say states by these names too (``STATE_LABELS``); this
    screen shows every field as the store and the CLI name it.
    """
    return Text(state, style=palette.state(state))


def command_line(command: Any, *, shell: bool) -> str:
    """A command as a shell would read it: ``sh -c 'echo "run $X"; sleep 1'``, not ``sh -c echo``.

    A shell command (``shell = true``) is its one string, shown as written.
    """
    if not isinstance(command, list):
        return str(command)
    if shell and len(command) == 1:
        return str(command[0])
    return shlex.join(str(part) for part in command)


def why_no_log(record: TaskRecord) -> str | None:
    """Why a try has no log (it never started), or None when it may have one."""
    state = TaskState(record.state)
    if state == TaskState.UPSTREAM_FAILED:
        return "never started: upstream failed"
    if state == TaskState.SCHEDULED:
        if record.pending_upstreams:
            return "not started yet: waiting for its upstream tasks"
        if record.not_before:
            return "not started yet: waiting out its retry delay"
        return "not started yet"
    if state == TaskState.QUEUED:
        return f"not started yet: handed to {record.executor}"
    if record.start_date is None and state.is_finished:
        return f"never started: {record.reason}" if record.reason else "never started"
    return None


class TaskDetailScreen(Screen[None]):
    """Refreshes itself every second while open; esc goes back."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("l", "task('logs')", "Logs"),
        Binding("k", "task('kill')", "Kill"),
        Binding("r", "task('retry')", "Retry"),
        Binding("R", "task('retry_downstream')", "Retry with downstream"),
        Binding("s", "task('mark_success')", "Mark success"),
        Binding("f", "task('mark_failed')", "Mark failed"),
        Binding("C", "task('cancel_run')", "Cancel run"),
    ]

    def __init__(self, ti_id: int) -> None:
        super().__init__(classes="detail-screen")
        self.ti_id = ti_id
        self.detail: TaskDetail | None = None

    @property
    def console_app(self) -> ConsoleApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(id="detail-title")
        with Horizontal(id="detail-body"):
            with VerticalScroll(id="detail-fields", classes="panel detail-panel"):
                yield Static(id="detail-fields-table")
            with Vertical(id="detail-right"):
                with VerticalScroll(id="detail-tries", classes="panel detail-panel"):
                    yield Static(id="detail-tries-table")
                with VerticalScroll(id="detail-history", classes="panel detail-panel"):
                    yield Static(id="detail-history-table")
        with Vertical(id="detail-log-frame", classes="panel detail-panel"):
            yield Log(id="detail-log", max_lines=LOG_TAIL_LINES * 4)
        yield StableFooter()

    def on_mount(self) -> None:
        self.query_one("#detail-fields", VerticalScroll).border_title = "Fields"
        self.query_one("#detail-tries", VerticalScroll).border_title = "Tries"
        self.query_one("#detail-history", VerticalScroll).border_title = "State history (audit log)"
        self.query_one("#detail-log-frame", Vertical).border_title = "Log tail (l follows)"
        if self.console_app.polling:
            self._load()
        else:
            self.show(self.console_app.builder.task_detail(self.ti_id))

    def action_back(self) -> None:
        if self.is_active:  # app.pop_screen pops the top screen, whichever it is
            self.dismiss()

    @property
    def task_ref(self) -> TaskRef | None:
        if self.detail is None:
            return None
        record = self.detail.record
        return TaskRef(record.id, record.key, str(record.state), record.executor)

    # ---- loading -------------------------------------------------------------------
    def _load(self) -> None:
        builder = self.console_app.builder

        def fetch() -> None:
            self.post_message(TaskDetailLoaded(builder.task_detail(self.ti_id)))

        self.run_worker(fetch, thread=True, group="task-detail", exit_on_error=False)

    def on_task_detail_loaded(self, message: TaskDetailLoaded) -> None:
        self.show(message.detail)
        if self.is_attached and self.console_app.polling:
            self.set_timer(REFRESH_INTERVAL, self._load)

    def show(self, detail: TaskDetail | None) -> None:
        palette = self.console_app.palette
        title = self.query_one("#detail-title", Static)
        if detail is None:
            title.update(Text(f"task instance {self.ti_id} no longer exists"))
            return
        changed = self.detail is None or self.detail.record.state != detail.record.state
        self.detail = detail
        record = detail.record
        heading = Text()
        heading.append(f"{record.key}", style=palette.style("primary", bold=True))
        heading.append("  ")
        heading.append_text(state_text(palette, str(record.state)))
        if record.reason:
            heading.append(f"  {record.reason}", style=palette.style("foreground-muted"))
        title.update(heading)
        self.query_one("#detail-fields-table", Static).update(self._fields(detail, palette))
        self.query_one("#detail-tries-table", Static).update(self._tries(detail, palette))
        self.query_one("#detail-history-table", Static).update(self._history(detail, palette))
        log = self.query_one("#detail-log", Log)
        log.clear()
        # The tail comes made safe to draw (console.task_log.read_task_log).
        lines = detail.log_tail.splitlines()[-LOG_TAIL_LINES:]
        never_ran = None if record.log_path else why_no_log(record)
        log.write_lines(lines or [never_ran or "(empty)"])
        frame = self.query_one("#detail-log-frame", Vertical)
        source = home_relative(detail.log_source, self.console_app.context.home)
        frame.border_subtitle = "" if never_ran and not lines else source
        if changed:
            self.refresh_bindings()

    def _fields(self, detail: TaskDetail, palette: Palette) -> Table:
        record = detail.record
        data: dict[str, Any] = record.to_json()
        table = Table.grid(padding=(0, 1))
        table.add_column(style=palette.style("foreground-muted"), no_wrap=True)
        table.add_column()
        home = self.console_app.context.home
        ordered = [*FIRST_FIELDS, *(c for c in TASK_COLUMNS if c not in FIRST_FIELDS)]
        for name in ordered:
            value = data.get(name)
            if name == "command":
                shown = command_line(value, shell=bool(data.get("shell")))
            elif name == "env":
                shown = json.dumps(value) if value else "{}"
            elif name == "log_path":
                shown = home_relative(value, home)
            elif name == "duration" and value is not None:
                shown = fmt.duration(value)
            else:
                shown = "-" if value is None else str(value)
            cell = state_text(palette, shown) if name == "state" else Text(shown)
            table.add_row(name, cell)
        table.add_row("upstream", Text(", ".join(detail.upstream) or "-"))
        return table

    def _tries(self, detail: TaskDetail, palette: Palette) -> Table:
        table = Table(box=None, padding=(0, 1), expand=True)
        for header in ("Try", "State", "Started", "Took", "Exit", "Worker", "Reason"):
            table.add_column(
                header, style=palette.style("foreground-muted") if header == "Reason" else None
            )
        for attempt in detail.tries:
            table.add_row(
                str(attempt.try_number),
                state_text(palette, str(attempt.state)),
                fmt.clock_time(attempt.start_date),
                fmt.duration(attempt.duration),
                "-" if attempt.exit_code is None else str(attempt.exit_code),
                Text(attempt.worker or "-"),
                Text(attempt.reason or ""),
            )
        return table

    def _history(self, detail: TaskDetail, palette: Palette) -> Table:
        table = Table(box=None, padding=(0, 1), expand=True)
        for header in ("Time", "Try", "From", "", "To", "By", "Reason"):
            table.add_column(header)
        tries = {attempt.id: attempt.try_number for attempt in detail.tries}
        for event in detail.history:
            table.add_row(
                fmt.clock_time(event.at),
                str(tries.get(event.ti_id, "?")),
                state_text(palette, event.from_state) if event.from_state else Text("-"),
                "→",
                state_text(palette, event.to_state),
                Text(event.actor),
                Text(event.reason or "", style=palette.style("foreground-muted")),
            )
        return table

    # ---- keys ------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "task":
            return self.console_app.task_action_allowed(str(parameters[0]), self.task_ref)
        return True

    def action_task(self, name: str) -> None:
        task = self.task_ref
        if task is not None:
            self.console_app.run_task_action(name, task)
