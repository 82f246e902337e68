"""The l screen: follow a try's log live, and search in it."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from rich.highlighter import Highlighter
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Input, Log, Static

from console.snapshot import home_relative
from console.tui import formatting as fmt
from console.tui.footer import StableFooter
from console.tui.log_source import LogFollower, LogUpdate
from console.tui.task_panel import TaskRef

if TYPE_CHECKING:
    from console.tui.app import ConsoleApp

MAX_LINES = 50_000
FOLLOW_INTERVAL = 0.5


class SearchHighlighter(Highlighter):
    """Marks every match of the search pattern."""

    def __init__(self) -> None:
        self.pattern: re.Pattern[str] | None = None
        self.style = Style(reverse=True)

    def highlight(self, text: Text) -> None:
        if self.pattern is None:
            return
        for match in self.pattern.finditer(text.plain):
            if match.end() > match.start():
                text.stylize(self.style, match.start(), match.end())


class LogUpdated(Message):
    """New log text arrived from the worker thread."""

    def __init__(self, update: LogUpdate | None, error: str | None = None) -> None:
        super().__init__()
        self.update = update
        self.error = error


class LogScreen(Screen[None]):
    """Follows the log (the view sticks to the end until you scroll or search)."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("slash", "search", "Search"),
        Binding("n", "next_match", "Next match"),
        Binding("N", "previous_match", "Previous match"),
        Binding("f,end", "follow", "Follow"),
        Binding("g,home", "top", "Top", show=False),
    ]

    def __init__(self, task: TaskRef) -> None:
        super().__init__(classes="log-screen")
        self.task_ref = task
        self.follower: LogFollower | None = None
        self.highlighter = SearchHighlighter()
        self.matches: list[int] = []
        self.match_index = -1
        self.log_source = ""
        self.log_size = 0
        self.truncated = False
        self.following = True
        self._timer_pending = False

    @property
    def console_app(self) -> ConsoleApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(id="log-title")
        log = Log(highlight=True, max_lines=MAX_LINES, id="log-view", auto_scroll=True)
        log.highlighter = self.highlighter
        yield log
        yield Input(
            placeholder="search (regex); enter finds, n / N next / previous, esc clears",
            id="log-search",
        )
        yield StableFooter()

    @property
    def log_view(self) -> Log:
        return self.query_one("#log-view", Log)

    def on_mount(self) -> None:
        palette = self.console_app.palette
        self.highlighter.style = palette.background("warning") + Style(
            color=palette.color("background")
        )
        self.query_one("#log-search", Input).display = False
        self.log_view.focus()
        self._title()
        record = self.console_app.builder.record(self.task_ref.ti_id)
        if record is None:
            self.log_view.write_line(f"task instance {self.task_ref.ti_id} no longer exists")
            return
        self.follower = LogFollower(self.console_app.context.executors, record)
        if self.console_app.polling:
            self._poll()
        else:
            # Deterministic (tests, screenshots): read once, on the UI thread.
            self._apply(self.follower.poll())

    # ---- following ---------------------------------------------------------------
    def _poll(self) -> None:
        follower = self.follower
        if follower is None:
            return

        def fetch() -> None:
            try:
                if not follower.record.log_path:
                    record = self.console_app.builder.record(self.task_ref.ti_id)
                    if record is not None:
                        follower.record = record
                self.post_message(LogUpdated(follower.poll()))
            except Exception as error:
                self.post_message(LogUpdated(None, str(error)))

        self.run_worker(fetch, thread=True, group="log-follow", exit_on_error=False)

    def on_log_updated(self, message: LogUpdated) -> None:
        if message.error:
            self.log_source = f"cannot read the log: {message.error}"
        self._apply(message.update)
        if self.is_attached and self.console_app.polling:
            self.set_timer(FOLLOW_INTERVAL, self._poll)

    def _apply(self, update: LogUpdate | None) -> None:
        if update is not None:
            log = self.log_view
            if (
                self.following
                and not update.replace
                and log.max_scroll_y > 0
                and not log.is_vertical_scroll_end
            ):
                # The operator scrolled up: stop following until f (or end).
                self.following = False
            if update.replace:
                log.clear()
            if update.text:
                log.write(update.text, scroll_end=self.following)
            self.log_source, self.log_size, self.truncated = (
                update.source,
                update.size,
                update.truncated or self.truncated,
            )
            if self.highlighter.pattern is not None:
                self._find_matches()
        self._title()

    def _title(self) -> None:
        """Two lines: what is shown and how; then where it comes from."""
        app = self.console_app
        palette = app.palette
        text = Text()
        state = "FOLLOWING" if self.following else "PAUSED · f follows"
        text.append(
            f" {state} ",
            style=palette.style("accent" if self.following else "warning", reverse=True),
        )
        text.append(
            f" Log of {fmt.task_label(self.task_ref.key)}",
            style=palette.style("primary", bold=True),
        )
        text.append(f" · run {self.task_ref.key.run_id} · {fmt.size(self.log_size)}")
        if self.truncated:
            text.append(" (the end of it)", style=palette.style("foreground-muted"))
        if self.highlighter.pattern is not None:
            found = len(self.matches)
            where = f"match {self.match_index + 1} of {found}" if found else "no match"
            text.append(
                f"  /{self.highlighter.pattern.pattern}/ {where}",
                style=palette.style("warning", bold=True),
            )
        text.append("\n")
        text.append(
            home_relative(self.log_source, app.context.home),
            style=palette.style("foreground-muted"),
        )
        self.query_one("#log-title", Static).update(text)

    # ---- search ----------------------------------------------------------------------
    def action_search(self) -> None:
        search = self.query_one("#log-search", Input)
        search.display = True
        search.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        pattern = event.value.strip()
        try:
            self.highlighter.pattern = re.compile(pattern, re.IGNORECASE) if pattern else None
        except re.error as error:
            self.notify(f"not a regular expression: {error}", severity="error")
            return
        event.input.display = False
        self.log_view.focus()
        self._find_matches()
        self.match_index = -1
        if self.matches:
            self.action_next_match()
        self.log_view.refresh()
        self._title()

    def _find_matches(self) -> None:
        pattern = self.highlighter.pattern
        if pattern is None:
            self.matches = []
            return
        self.matches = [y for y, line in enumerate(self.log_view.lines) if pattern.search(line)]

    def _go_to_match(self, step: int) -> None:
        if not self.matches:
            self._title()
            return
        self.following = False
        self.match_index = (self.match_index + step) % len(self.matches)
        line = self.matches[self.match_index]
        self.log_view.scroll_to(y=max(0, line - self.log_view.size.height // 2), animate=False)
        self._title()

    def action_next_match(self) -> None:
        self._go_to_match(1)

    def action_previous_match(self) -> None:
        self._go_to_match(-1)

    def action_follow(self) -> None:
        self.following = True
        self.log_view.scroll_end(animate=False)
        self._title()

    def action_top(self) -> None:
        self.following = False
        self.log_view.scroll_home(animate=False)
        self._title()

    def action_back(self) -> None:
        search = self.query_one("#log-search", Input)
        if search.has_focus or self.highlighter.pattern is not None:
            search.value = ""
            search.display = False
            self.highlighter.pattern = None
            self.matches = []
            self.log_view.focus()
            self.log_view.refresh()
            self._title()
            return
        self.app.pop_screen()
