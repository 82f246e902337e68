"""The Events panel: the audit log as it drains, newest first; older pages on demand."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable

from console.snapshot import EventRow, Snapshot, _filter_text
from console.tui import formatting as fmt
from console.tui.live_table import Column, FitText, LiveRow, cell_text, shares_prefix
from console.tui.messages import OlderEventsLoaded
from console.tui.palette import Palette
from console.tui.task_panel import TaskPanel, TaskRef

OLDER_PAGE = 100


def _reason(event: EventRow, palette: Palette) -> Text:
    """The reason, or who made the change when there is none."""
    if event.reason:
        return cell_text(event.reason)
    # "executor:local" reads as "by local".
    return cell_text(f"by {event.actor.rpartition(':')[2]}", palette.style("foreground-muted"))


def _matching(events: Sequence[EventRow], pattern: str | None) -> list[EventRow]:
    """The events the operator's filter lets through: the rule the live events are filtered by.

    The snapshot's live events are filtered as it is built (SnapshotBuilder);
    pages of history come unfiltered from the store, so they are filtered here.
    """
    if not pattern:
        return list(events)
    regex = re.compile(pattern, re.IGNORECASE)
    return [
        event
        for event in events
        if regex.search(_filter_text(event.key, event.to_state, event.actor, event.reason or ""))
    ]


class EventsPanel(TaskPanel):
    """Time, key, state in colour, duration, exit code and reason.

    The live part holds the newest events; moving the cursor onto the last
    row fetches the next older page from the store (never all of history).
    The operator's filter applies to both.
    """

    TITLE = "Events"
    HOTKEY = "3"
    NEWEST_FIRST = True
    # The task grows to its longest key first, then the reason gets back to
    # its width, then takes the rest (all of it, zoomed).
    COLUMNS = (
        Column("time", "Time", 8),
        Column("task", "Task", 20, fit=True),
        Column("state", "State", 15),  # "upstream_failed" whole
        Column("duration", "Took", 5, numeric=True),
        Column("exit", "Exit", 4, numeric=True),
        Column("reason", "Reason / by", 12, flex=True, min_width=8),
    )

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.older: list[EventRow] = []
        self.loading_older = False
        self.history_ended = False
        self._last_snapshot: Snapshot | None = None
        self._palette: Palette | None = None
        self._shown_key: tuple[object, ...] | None = None
        self.history_shown = 0  # rows of older history the filter lets through

    def refresh_panel(self, snapshot: Snapshot, palette: Palette) -> None:
        """Events never change once written: redraw only when new ones (or older pages) arrived."""
        events = snapshot.events
        key = (
            events[0].id if events else None,
            len(events),
            len(self.older),
            snapshot.filter,
            id(palette),
        )
        if key == self._shown_key:
            self._last_snapshot = snapshot
            return
        self._shown_key = key
        super().refresh_panel(snapshot, palette)

    def rows(
        self, snapshot: Snapshot, palette: Palette
    ) -> tuple[list[LiveRow], dict[str, TaskRef], str]:
        self._last_snapshot, self._palette = snapshot, palette
        rows, tasks = [], {}
        live_ids = {event.id for event in snapshot.events}
        oldest_live = min(live_ids) if live_ids else None
        older = _matching(
            [e for e in self.older if oldest_live is None or e.id < oldest_live], snapshot.filter
        )
        shown = (*snapshot.events, *older)
        one_dag = shares_prefix(fmt.task_label(event.key) for event in shown)
        for event in shown:
            key = f"e{event.id}"
            tasks[key] = TaskRef(event.ti_id, event.key, event.to_state, "")
            state = palette.state_text(event.to_state)
            if event.from_state == event.to_state:
                state = palette.muted("note")
            rows.append(
                LiveRow(
                    key,
                    (
                        fmt.clock_time(event.at),
                        FitText(fmt.task_label(event.key), shared_prefix=one_dag),
                        state,
                        fmt.duration(event.duration) if event.duration is not None else "",
                        "" if event.exit_code is None else str(event.exit_code),
                        _reason(event, palette),
                    ),
                    (
                        event.at,
                        fmt.task_label(event.key),
                        event.to_state,
                        event.duration,
                        event.exit_code,
                        event.reason or event.actor,
                    ),
                )
            )
        self.history_shown = len(older)
        detail = f"{len(rows)} shown"
        if older:
            detail += f" · {len(older)} from history"
        if snapshot.filter and not self.history_ended:
            # The filter runs over the events loaded so far, not the whole audit
            # log: the same filter would otherwise seem to find nothing, then
            # something once scrolled. Moving to the last row loads older ones.
            detail += " · filter: loaded events only, the last row loads older"
        return rows, tasks, detail

    @property
    def oldest_id(self) -> int | None:
        ids = [e.id for e in self.older] or [
            e.id for e in (self._last_snapshot.events if self._last_snapshot else ())
        ]
        return min(ids) if ids else None

    def add_older(self, events: list[EventRow] | None) -> None:
        """Append a page of older history below the live events (None: it could not be read).

        A page the filter leaves nothing of adds no row to move onto: while the
        operator is still on the last row, the page before it is fetched.
        """
        self.loading_older = False
        if events is None:
            return
        if not events:
            self.history_ended = True
        self.older.extend(events)
        if self._last_snapshot is not None and self._palette is not None:
            shown = self.history_shown
            self.refresh_panel(self._last_snapshot, self._palette)
            if events and self.history_shown == shown and self._wants_older():
                self.request_older()

    def _wants_older(self) -> bool:
        """The operator is on the last row (in the table) and there may be older history."""
        table = self.table
        at_end = table.row_count > 0 and table.cursor_row >= table.row_count - 1
        return at_end and not self.loading_older and not self.history_ended and table.has_focus

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        super().on_data_table_row_highlighted(event)
        if self._wants_older():
            self.request_older()

    def request_older(self) -> None:
        """Fetch the page of history before the oldest event shown, on a worker thread."""
        before = self.oldest_id
        builder = getattr(self.app, "builder", None)
        if before is None or self.loading_older or builder is None:
            return
        self.loading_older = True

        def fetch() -> None:
            try:
                page: list[EventRow] | None = builder.older_events(before, OLDER_PAGE)
            except Exception:
                page = None  # the store was busy: the next move to the end tries again
            self.post_message(OlderEventsLoaded(page))

        self.run_worker(fetch, thread=True, group="older-events", exit_on_error=False)

    def on_older_events_loaded(self, message: OlderEventsLoaded) -> None:
        message.stop()
        self.add_older(message.events)
