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

from console.cli.output import plural
from console.snapshot import home_relative
from console.tui import formatting as fmt
from console.tui.footer import StableFooter
from console.tui.log_source import EarlierMatches, LogFollower, LogUpdate, search_before
from console.tui.task_panel import TaskRef
from executors.state import TaskState
from store.records import TaskRecord

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
    """New log text arrived from the worker thread, with the try as the store has it now."""

    def __init__(
        self,
        update: LogUpdate | None,
        error: str | None = None,
        record: TaskRecord | None = None,
    ) -> None:
        super().__init__()
        self.update = update
        self.error = error
        self.record = record


class EarlierSearched(Message):
    """The search of the part of the log file before the text shown has ended."""

    def __init__(self, search: int, found: EarlierMatches | None, error: str | None = None) -> None:
        super().__init__()
        self.search = search
        self.found = found
        self.error = error


def follow_state(
    record: TaskRecord | None, following: bool, paused_by: str = "scroll"
) -> tuple[str, str]:
    """What the log view is doing, in a few words, and the theme variable to show it in.

    True at a glance: a try that has ended writes nothing more, whatever the
    view does; a running one is followed until the operator scrolls up (or
    jumps to a search match, ``paused_by`` "match"; or to the top, "top").
    """
    state = TaskState(record.state) if record is not None else None
    if record is not None and state is not None and state.is_finished:
        how = [f"exit {record.exit_code}"] if record.exit_code is not None else []
        if record.reason:
            how.append(record.reason[:60])
        outcome = f" ({'; '.join(how)})" if how else ""
        variable = "success" if state == TaskState.SUCCESS else "error"
        if state in (TaskState.UP_FOR_RETRY, TaskState.UPSTREAM_FAILED):
            variable = "warning"
        return f"ENDED: {state}{outcome} · nothing more will come", variable
    if state in (TaskState.SCHEDULED, TaskState.QUEUED):
        return f"NOT STARTED ({state}) · its output shows once it runs", "secondary"
    if following:
        return "FOLLOWING new output", "accent"
    why = {"match": "at a match", "top": "at the top"}.get(paused_by, "you scrolled up")
    return f"PAUSED: {why} · f or end follows again", "warning"


class LogScreen(Screen[None]):
    """Follows the log (the view sticks to the end until you scroll or search).

    A long log shows its last FIRST_READ_BYTES (and what is written after).
    ``/`` searches the lines shown, where n / N move between matches, and, when
    the log is a local file, the part of the file before them on a worker
    thread: the title says how many lines were searched where, and how many
    matches lie earlier in the file (their first lines in a notification).
    """

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
        self.paused_by = "scroll"  # why following stopped: "scroll", "match" or "top"
        self.record: TaskRecord | None = None  # the try, as last read from the store
        self._timer_pending = False
        # Where the lines shown start in the local log file (None: not a local file).
        self.loaded_from: int | None = None
        self.earlier: EarlierMatches | None = None  # the search of the part before them
        self.searching_earlier = False
        self._search = 0  # which search an EarlierSearched answers

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
        self.record = record
        self.follower = LogFollower(self.console_app.context.executors, record)
        # Scrolling up stops following at once, not at the next output (a try
        # that prints nothing for a minute would say FOLLOWING all that time).
        self.watch(self.log_view, "scroll_y", self._scrolled, init=False)
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
            record = None
            try:
                # The try's state, for the title (and its log path, once it has one).
                record = self.console_app.builder.record(self.task_ref.ti_id)
                if record is not None and not follower.record.log_path:
                    follower.record = record
                self.post_message(LogUpdated(follower.poll(), record=record))
            except Exception as error:
                self.post_message(LogUpdated(None, str(error), record))

        self.run_worker(fetch, thread=True, group="log-follow", exit_on_error=False)

    def on_log_updated(self, message: LogUpdated) -> None:
        if message.error:
            self.log_source = f"cannot read the log: {message.error}"
        ended_before = self.ended
        if message.record is not None:
            self.record = message.record
        self._apply(message.update)
        if ended_before and not message.error:
            return  # read once more after the try ended: nothing more will come
        if self.is_attached and self.console_app.polling:
            self.set_timer(FOLLOW_INTERVAL, self._poll)

    @property
    def ended(self) -> bool:
        """The try has ended: its log is whole."""
        return self.record is not None and TaskState(self.record.state).is_finished

    def _scrolled(self, _old: float, _new: float) -> None:
        """Up from the end: paused; back at the end (end, f, or scrolled down): following."""
        log = self.log_view
        if log.max_scroll_y == 0:
            return  # not laid out yet, or it all fits: there is no end to leave
        at_end = log.is_vertical_scroll_end
        if at_end != self.following:
            self.following = at_end
            self.paused_by = "scroll"
            self._title()

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
                self.following, self.paused_by = False, "scroll"
            if update.replace:
                log.clear()
            if update.text:
                log.write(update.text, scroll_end=self.following)
            self.log_source, self.log_size, self.truncated = (
                update.source,
                update.size,
                update.truncated or self.truncated,
            )
            if update.replace:
                self.loaded_from = update.start if update.truncated else None
            if self.highlighter.pattern is not None:
                self._find_matches()
                if update.replace:
                    self._search_earlier()
        self._title()

    def _title(self) -> None:
        """Two lines: what is shown and how; then where it comes from."""
        app = self.console_app
        palette = app.palette
        text = Text()
        badge, variable = follow_state(self.record, self.following, self.paused_by)
        text.append(f" {badge} ", style=palette.style(variable, reverse=True))
        text.append(
            f" Log of {fmt.task_label(self.task_ref.key)}",
            style=palette.style("primary", bold=True),
        )
        text.append(f" · run {self.task_ref.key.run_id} · {fmt.size(self.log_size)}")
        if self.truncated:
            text.append(" (the end of it)", style=palette.style("foreground-muted"))
        if self.highlighter.pattern is not None:
            text.append(
                f"  /{self.highlighter.pattern.pattern}/ {self.search_summary()}",
                style=palette.style("warning", bold=True),
            )
        text.append("\n")
        text.append(
            home_relative(self.log_source, app.context.home),
            style=palette.style("foreground-muted"),
        )
        self.query_one("#log-title", Static).update(text)

    # ---- search ----------------------------------------------------------------------
    def search_summary(self) -> str:
        """``match 2 of 5``; for a log shown in part, where it searched and what lies before."""
        found = len(self.matches)
        where = f"match {self.match_index + 1} of {found}" if found else "no match"
        if not self.truncated:
            return where
        where += f" in the last {plural(len(self.log_view.lines), 'line')}"
        if self.loaded_from is None:
            return where + " (the rest is not searchable here)"
        before = fmt.size(self.loaded_from)
        earlier = self.earlier
        if self.searching_earlier:
            return where + f" · searching the {before} before them…"
        if earlier is None:
            return where
        if not earlier.count:
            return where + f" · none in the {before} before them"
        first = earlier.first[0][0]
        return where + f" · {earlier.count:,} earlier, not shown (first at line {first:,})"

    def _search_earlier(self) -> None:
        """Search the part of the log file before the lines shown, on a worker thread."""
        self._search += 1
        self.earlier = None
        pattern = self.highlighter.pattern
        path = self.follower.record.log_path if self.follower is not None else None
        end = self.loaded_from
        self.searching_earlier = bool(pattern and path and end and self.truncated)
        if not self.searching_earlier or pattern is None or not path or not end:
            return
        search = self._search

        def work() -> None:
            from textual.worker import get_current_worker

            worker = get_current_worker()
            try:
                found = search_before(path, end, pattern, cancelled=lambda: worker.is_cancelled)
            except OSError as error:
                self.post_message(EarlierSearched(search, None, str(error)))
            else:
                self.post_message(EarlierSearched(search, found))

        self.run_worker(work, thread=True, group="log-search", exclusive=True, exit_on_error=False)

    def on_earlier_searched(self, message: EarlierSearched) -> None:
        if message.search != self._search or self.highlighter.pattern is None:
            return  # a search since replaced or cleared
        self.searching_earlier = False
        self.earlier = message.found
        if message.error:
            self.notify(f"could not search the start of the log: {message.error}", severity="error")
        elif message.found is not None and message.found.first:
            lines = "\n".join(
                f"line {number:,}: {line[:160]}" for number, line in message.found.first
            )
            more = message.found.count - len(message.found.first)
            if more > 0:
                lines += f"\n… and {more:,} more"
            self.notify(
                lines,
                title=f"/{self.highlighter.pattern.pattern}/ earlier in the log, not shown",
                markup=False,
                timeout=15,
            )
        self._title()

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
        self._search_earlier()
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
        self.following, self.paused_by = False, "match"
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
        self.following, self.paused_by = False, "top"
        self.log_view.scroll_home(animate=False)
        self._title()

    def action_back(self) -> None:
        search = self.query_one("#log-search", Input)
        if search.has_focus or self.highlighter.pattern is not None:
            search.value = ""
            search.display = False
            self.highlighter.pattern = None
            self.matches = []
            self._search_earlier()  # none: forgets the last one
            self.log_view.focus()
            self.log_view.refresh()
            self._title()
            return
        if self.is_active:  # app.pop_screen pops the top screen, whichever it is
            self.dismiss()
