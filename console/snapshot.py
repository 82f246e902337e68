"""What the console shows, as plain data: built from the store (and its engine's status).

::

    store (own connection) ─────────┐
    the console's engine (status) ──┼──► SnapshotBuilder.build() ──► Snapshot ──► panels (UI thread)
    psutil (ProcessProbe) ──────────┘        (a worker thread)

The console's own engine runs in a child process (``console.tui.engine_process``)
and reports an ``EngineStatus`` (console/engine_status.py: pause and drain state, executors'
slots, worker processes) a few times a second; the builder reads the latest.

The console fetches a Snapshot on a worker thread and renders it on the UI
thread, so a slow store never delays a key press. Building is cheap even with
10,000 queued tries: every query has a LIMIT or aggregates in SQLite, and
events are read incrementally (only those after the last one seen).

This module is headless: it never imports Textual.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pendulum
import psutil

from console.engine_status import EngineStatus
from console.process_probe import ProcessProbe
from console.task_log import clean_line, last_line_of, read_task_log
from executors.state import TaskState
from executors.task_key import TaskKey
from store.records import TASK_SELECT, EventRecord, TaskRecord
from store.runs import LatestTryCounts

if TYPE_CHECKING:
    from executors.base import BaseExecutor
    from store import Store

Clock = Callable[[], pendulum.DateTime]

QUEUED_LIMIT = 60
EVENTS_LIMIT = 100
MIN_ROWS = 24  # fit_rows never goes below this
TIMELINE_LIMIT = 120
THROUGHPUT_BUCKET_SECONDS = 10
THROUGHPUT_BUCKETS = 30  # five minutes
DEAD_WORKER_SECONDS = 10.0
# "Finishing N/s": tries finished per second over this many seconds just past. Tries
# shorter than a tick are reported once, at their end ("quiet start"), so a busy
# run of them shows 0 running; the rate says what is going on.
FINISHING_SECONDS = 5
_FINISHED_SQL = "('success', 'failed', 'up_for_retry', 'upstream_failed')"
# A try's lane on the timeline (its worker slot), as _timeline_rows names it; NULL
# for a try that never started (upstream_failed, or failed by an operator while waiting).
_LANE_SQL = (
    "CASE WHEN start_date IS NULL THEN NULL "
    "ELSE coalesce(nullif(worker, ''), nullif(hostname, ''), executor) END"
)
# The states the timeline draws for tries that ended.
_TIMELINE_STATES = frozenset({"success", "failed", "up_for_retry"})
# What the operator's filter regex is matched against, per task row.
_FILTER_TEXT_SQL = (
    "dag_id || '/' || task_id || '/' || run_id || '#' || try_number || ' ' || state || ' ' || "
    "executor || ' ' || queue || ' ' || coalesce(worker, '')"
)


# ---- what the panels show ------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ExecutorView:
    """One configured executor, for the header."""

    name: str
    class_name: str
    parallelism: int | None  # None: not known here (attached and never set)
    open_slots: int | None  # as the executor counts them
    running: int  # from the store, as HeaderView.counts
    backlog: int  # handed to the executor, not yet started (from the store)
    capabilities: Mapping[str, bool]
    warning: str | None = None  # e.g. "for debugging, not production"
    finishing: float = 0.0  # tries finished per second, last FINISHING_SECONDS


@dataclass(frozen=True, slots=True)
class HeaderView:
    """The header: who runs the engine, executors, counts, throughput."""

    mode: str  # "hosted", "attached" or "watching"
    owner: str | None  # the engine's pid and host, when attached
    # Tasks by the state of their latest try (they add up to the number of tasks),
    # except up_for_retry: every try a later try superseded, the engine's retries
    # and operators' alike (shown as "retried"). See store.runs.LatestTryCounts.
    counts: Mapping[str, int]
    executors: tuple[ExecutorView, ...]
    paused: bool
    draining: bool
    throughput: tuple[float, ...]  # finished tries per second, oldest bucket first
    last_message: str | None = None
    finishing: float = 0.0  # tries finished per second, last FINISHING_SECONDS (every executor)
    last_message_at: str | None = None  # when the console first saw it (ISO-8601, UTC)

    @property
    def queue_depth(self) -> int:
        """Tries waiting to start: in the store and in executors' backlogs."""
        return self.counts.get("scheduled", 0) + self.counts.get("queued", 0)

    @property
    def throughput_now(self) -> float:
        """Finished per second over the last minute."""
        recent = self.throughput[-6:]
        return sum(recent) / len(recent) if recent else 0.0


@dataclass(frozen=True, slots=True)
class QueuedRow:
    """A try waiting to start, in the order it will be started."""

    id: int
    key: TaskKey
    state: str  # "queued" (in an executor's backlog) or "scheduled"
    priority: int
    queue: str
    executor: str
    waiting: float  # seconds since it was submitted
    blocked_by: int  # upstream tasks not yet succeeded
    not_before: str | None


@dataclass(frozen=True, slots=True)
class RunningRow:
    """A try whose process runs, with what it costs."""

    id: int
    key: TaskKey
    executor: str
    pid: int | None
    worker: str | None
    hostname: str | None
    elapsed: float | None
    cpu_percent: float | None  # whole process tree; None when it cannot be seen
    rss: int | None  # bytes, whole process tree
    processes: int  # in the tree
    last_line: str
    timeout: float | None


@dataclass(frozen=True, slots=True)
class WorkerRow:
    """A worker process of an executor that runs them on this machine."""

    executor: str
    pid: int
    title: str
    busy: bool
    task: str | None
    cpu_percent: float | None
    rss: int | None
    tasks_done: int
    alive: bool = True
    exit_reason: str | None = None


@dataclass(frozen=True, slots=True)
class EventRow:
    """A line of the audit log."""

    id: int
    ti_id: int
    key: TaskKey
    at: str
    from_state: str | None
    to_state: str
    actor: str
    reason: str | None
    duration: float | None
    exit_code: int | None


@dataclass(frozen=True, slots=True)
class TimelineBar:
    """One try on the timeline: seconds relative to the snapshot (negative is past)."""

    id: int
    key: TaskKey
    lane: str  # the worker slot it ran in
    start: float
    end: float | None  # None while it runs
    state: str


@dataclass(frozen=True, slots=True)
class TimelineMark:
    """Tries of one lane that ended within one second in one state: what the bars leave out.

    Sent only when the store holds more started tries than the timeline has
    bars for, so that a lane that ran hundreds of short tries still shows it.
    """

    lane: str
    second: float  # the start of that second, relative to the snapshot (negative is past)
    state: str
    count: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the console's panels show at one moment."""

    taken_at: str
    header: HeaderView
    queued: tuple[QueuedRow, ...]
    running: tuple[RunningRow, ...]
    workers: tuple[WorkerRow, ...]
    events: tuple[EventRow, ...]  # newest first
    timeline: tuple[TimelineBar, ...]
    filter: str | None = None
    build_seconds: float = 0.0
    # When the store holds more started tries than the timeline's bars (the latest
    # ``timeline_bars`` of them, and every running one): how many bars, and marks
    # for the tries of the last few minutes that have none. 0 and () otherwise.
    timeline_bars: int = 0
    timeline_marks: tuple[TimelineMark, ...] = ()

    @property
    def queue_depth(self) -> int:
        return self.header.queue_depth


@dataclass(frozen=True, slots=True)
class TaskDetail:
    """One try with everything known about it, for the detail screen."""

    record: TaskRecord
    history: tuple[EventRow, ...]  # oldest first, every try of the task instance
    tries: tuple[TaskRecord, ...]
    log_tail: str
    log_source: str
    upstream: tuple[str, ...] = ()


# ---- helpers -----------------------------------------------------------------------
def parse_time(text: str | None) -> float | None:
    """Seconds since the epoch for an ISO-8601 string (fast: no pendulum)."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _event_row(event: EventRecord) -> EventRow:
    return EventRow(
        id=event.id,
        ti_id=event.ti_id,
        key=event.key,
        at=event.at,
        from_state=event.from_state,
        to_state=event.to_state,
        actor=event.actor,
        reason=event.reason,
        duration=event.duration,
        exit_code=event.exit_code,
    )


def _filter_text(key: TaskKey, *extra: object) -> str:
    return " ".join([f"{key.dag_id}/{key.task_id}/{key.run_id}#{key.try_number}", *map(str, extra)])


@dataclass(frozen=True, slots=True)
class _TimelineRow:
    """A try that started, as the timeline reads it from the store (times as epoch seconds)."""

    id: int
    key: TaskKey
    state: str
    executor: str
    lane: str
    started: float
    ended: float | None
    filter_text: str


@dataclass(frozen=True, slots=True)
class _StoreReads:
    """What one build read from the store: reused as is while the store is unchanged."""

    counts: Mapping[str, int]
    in_flight: Sequence[TaskRecord]
    settings: Mapping[str, Any]
    queued: tuple[TaskRecord, ...]
    events: tuple[EventRow, ...]
    timeline: tuple[_TimelineRow, ...]
    timeline_cut: bool  # more tries started than the timeline reads


@contextlib.contextmanager
def _read_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """Statements inside see one state of the store (a deferred transaction, read only here)."""
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


@dataclass
class _WorkerMemory:
    """A worker last seen alive, remembered so that its death stays visible a while."""

    row: WorkerRow
    died_at: float | None = None


# ---- the builder ---------------------------------------------------------------------
@dataclass
class SnapshotBuilder:
    """Builds Snapshots from the store on its own connection, plus its own engine's status.

    Args:
        store_path: the store file; the builder opens its own connection, because
            an SQLite connection must not be used by two threads at once.
        executors: the configured executors by name (their capabilities and
            classes; the engine runs its own instances).
        engine_status: the latest status of the console's own engine (None while
            it has not reported, or after it stopped); None when the console has
            no engine of its own (attached or watching).
        attached_to: the lease owner when another process hosts the engine.
        clock: the time; tests and screenshots pass a fixed one.
        probe: measures process trees (StaticProbe for deterministic scenes).
    """

    store_path: str | os.PathLike[str]
    executors: Mapping[str, BaseExecutor]
    engine_status: Callable[[], EngineStatus | None] | None = None
    attached_to: Mapping[str, Any] | None = None
    clock: Clock = field(default=lambda: pendulum.now("UTC"))
    probe: ProcessProbe = field(default_factory=ProcessProbe)
    default_parallelism: int = 2
    queued_limit: int = QUEUED_LIMIT
    events_limit: int = EVENTS_LIMIT
    timeline_limit: int = TIMELINE_LIMIT

    def __post_init__(self) -> None:
        self._store: Store | None = None
        self._lock = threading.Lock()
        self._events: deque[EventRow] = deque(maxlen=self.events_limit)
        self._last_event_id = 0
        self._workers: dict[tuple[str, int], _WorkerMemory] = {}
        # The engine's newest note and when it was first seen: it stays on the
        # header long after, and must not read as what happens now.
        self._message_seen: tuple[str, str] | None = None
        self._filter: re.Pattern[str] | None = None
        # What the last build read from the store, kept while the store is unchanged
        # (see _read_store); None: read it again.
        self._reads: _StoreReads | None = None
        self._data_version: int | None = None
        # Tries finished per second ((epoch second, executor) -> count) over the
        # throughput window, and the last event counted into it (see _throughput).
        self._finished: dict[tuple[int, str], int] = {}
        # The same tries by (epoch second, lane, state), for the timeline's marks.
        self._activity: dict[tuple[int, str, str], int] = {}
        self._latest = LatestTryCounts()  # the header's counts, by each task's latest try
        self._finished_cursor: int | None = None
        self._finished_version: int | None = None
        self.store_reads = 0  # builds that read the store (the others reused the last reads)

    # ---- setup ---------------------------------------------------------------
    @property
    def store(self) -> Store:
        """The builder's own store connection, opened on first use."""
        if self._store is None:
            from store import Store

            store = Store(self.store_path, clock=self.clock)
            # The operator's filter, compiled once, as an SQL function: the queue
            # is filtered in SQLite, so only LIMIT rows ever reach Python objects.
            store.conn.create_function("console_filter", 1, self._matches)
            self._store = store
        return self._store

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    @property
    def mode(self) -> str:
        if self.engine_status is not None:
            return "hosted"
        return "attached" if self.attached_to else "watching"

    def set_filter(self, pattern: str | None) -> None:
        """Show only rows whose key, state, executor, queue or worker match ``pattern``.

        Raises:
            re.error: the pattern is not a valid regular expression.
        """
        self._filter = re.compile(pattern, re.IGNORECASE) if pattern else None
        self._reads = None  # the rows shown depend on it

    def fit_rows(self, rows: int) -> None:
        """Keep the live Queued and Events lists to ``rows`` each: what a screen shows at most.

        The console calls this with its height. Rows beyond what fits cost a
        table update on every refresh for nothing (Events has older pages).
        """
        rows = max(MIN_ROWS, rows)
        with self._lock:
            if rows == self.queued_limit == self.events_limit:
                return
            self.queued_limit = self.events_limit = rows
            self._events = deque(self._events, maxlen=rows)
            self._reads = None

    @property
    def filter(self) -> str | None:
        return self._filter.pattern if self._filter else None

    def _matches(self, text: str | None) -> bool:
        pattern = self._filter
        return pattern is None or (text is not None and pattern.search(text) is not None)

    # ---- building --------------------------------------------------------------
    def build(self) -> Snapshot:
        """One consistent-enough picture of the store and the engine."""
        with self._lock:
            return self._build()

    def _build(self) -> Snapshot:
        import time

        began = time.perf_counter()
        now = self.clock()
        now_ts = now.timestamp()
        pattern = self._filter
        reads = self._read_store(pattern)
        in_flight = reads.in_flight
        self.probe.begin()
        try:
            running = tuple(self._running_rows(in_flight, now_ts, pattern))
            workers = tuple(self._worker_rows(now_ts, pattern))
        finally:
            self.probe.end()
        queued = tuple(self._queued_rows(reads.queued, now_ts))
        header = self._header(reads.counts, in_flight, reads.settings, now)
        timeline = tuple(self._timeline(reads.timeline, now_ts, pattern))
        marks: tuple[TimelineMark, ...] = ()
        if reads.timeline_cut and pattern is None:  # marks are not the filter's to select
            marks = tuple(self._timeline_marks(now_ts))
        return Snapshot(
            taken_at=now.to_iso8601_string(),
            header=header,
            queued=queued,
            running=running,
            workers=workers,
            events=reads.events,
            timeline=timeline,
            filter=pattern.pattern if pattern else None,
            build_seconds=time.perf_counter() - began,
            timeline_bars=self.timeline_limit if reads.timeline_cut else 0,
            timeline_marks=marks,
        )

    def _read_store(self, pattern: re.Pattern[str] | None) -> _StoreReads:
        """What the panels need from the store; the last reads again while nothing was written.

        SQLite's data_version changes when another connection commits, so a
        console watching a quiet store (tasks running for minutes, a queue
        waiting) skips every query; what depends on the clock (elapsed, waiting,
        the throughput window, the timeline's scale) is still worked out anew.
        """
        store = self.store
        version = store.conn.execute("PRAGMA data_version").fetchone()[0]
        if self._reads is not None and version == self._data_version:
            return self._reads
        self.store_reads += 1
        # One read transaction: the counts and the tries in flight are of one moment,
        # so the header's figures agree with each other.
        with _read_transaction(store.conn):
            counts = self._latest.count(store.conn, store.count_by_state())
            in_flight = store.in_flight()
        timeline, timeline_cut = self._timeline_rows(in_flight)
        self._reads = _StoreReads(
            counts=counts,
            in_flight=in_flight,
            settings=store.settings(),
            queued=self._queued_records(in_flight, pattern),
            events=tuple(self._event_rows(pattern)),
            timeline=timeline,
            timeline_cut=timeline_cut,
        )
        self._data_version = version
        return self._reads

    def _header(
        self,
        counts: Mapping[str, int],
        in_flight: Sequence[TaskRecord],
        settings: Mapping[str, Any],
        now: pendulum.DateTime,
    ) -> HeaderView:
        status = self.engine_status() if self.engine_status is not None else None
        throughput = self._throughput(now)
        finishing = self._finishing(now.timestamp())
        views = []
        for name, executor in self.executors.items():
            warning = None if executor.is_production else "for debugging, not production"
            reported = status.executors.get(name) if status is not None else None
            # Running and handed out as the counts line says them: from the same read
            # of the store (the engine's own figures are of another moment, and count
            # a try handed to a worker as running).
            running = sum(
                1 for r in in_flight if r.executor == name and r.state == TaskState.RUNNING
            )
            backlog = sum(
                1 for r in in_flight if r.executor == name and r.state == TaskState.QUEUED
            )
            if reported is not None:
                # Slots are the executor's to know.
                parallelism: int | None = reported.parallelism
                open_slots: int | None = reported.open_slots
            else:
                # No status from an engine of ours: what the store knows.
                wanted = settings.get(f"parallelism.{name}")
                parallelism = int(wanted) if wanted is not None else self.default_parallelism
                open_slots = max(parallelism - running, 0) if parallelism else None
            views.append(
                ExecutorView(
                    name=name,
                    class_name=type(executor).__name__,
                    parallelism=parallelism,
                    open_slots=open_slots,
                    running=running,
                    backlog=backlog,
                    capabilities=executor.capabilities(),
                    warning=warning,
                    finishing=finishing.get(name, 0.0),
                )
            )
        if status is not None:
            paused, draining, last_message = status.paused, status.draining, status.last_message
        else:
            paused, draining, last_message = bool(settings.get("paused", False)), False, None
        owner = None
        if self.attached_to:
            owner = f"pid {self.attached_to.get('pid')} on {self.attached_to.get('hostname')}"
        elif status is not None:
            owner = f"pid {status.pid}"
        if last_message is not None and (
            self._message_seen is None or self._message_seen[0] != last_message
        ):
            self._message_seen = (last_message, now.to_iso8601_string())
        message_at = (
            self._message_seen[1] if last_message is not None and self._message_seen else None
        )
        return HeaderView(
            mode=self.mode,
            owner=owner,
            counts=dict(counts),
            executors=tuple(views),
            paused=paused,
            draining=draining,
            throughput=throughput,
            last_message=last_message,
            finishing=sum(finishing.values()),
            last_message_at=message_at,
        )

    def _throughput(self, now: pendulum.DateTime) -> tuple[float, ...]:
        """Finished tries per second in each bucket of the last few minutes.

        Counted incrementally: once, the tries that ended within the window (by
        end_date, on its index), then on each build only the finishing events
        written since the last one counted (by event id, so a try committed late
        is still counted once). Counting the whole window on every refresh read
        every row finished in the last five minutes: 180,000 index entries at
        600 tries a second.
        """
        span = THROUGHPUT_BUCKET_SECONDS * THROUGHPUT_BUCKETS
        now_ts = now.timestamp()
        since_ts = now_ts - span
        conn = self.store.conn
        if self._finished_cursor is not None and self._finished_version == self._data_version:
            rows: list[Any] = []  # nothing written since the last count
        else:
            rows = self._count_finished(conn, now, span)
            self._finished_version = self._data_version
        finished, activity = self._finished, self._activity
        for second, executor, lane, state, count in rows:
            if second is not None:
                key = (second, executor)
                finished[key] = finished.get(key, 0) + count
                if lane is not None and state in _TIMELINE_STATES:
                    mark = (second, lane, state)
                    activity[mark] = activity.get(mark, 0) + count
        for key in [key for key in finished if key[0] < since_ts - 1]:
            del finished[key]
        for mark in [mark for mark in activity if mark[0] < since_ts - 1]:
            del activity[mark]
        buckets = [0.0] * THROUGHPUT_BUCKETS
        for (second, _executor), count in finished.items():
            bucket = int((second - since_ts) // THROUGHPUT_BUCKET_SECONDS)
            if 0 <= bucket < THROUGHPUT_BUCKETS:
                buckets[bucket] += count / THROUGHPUT_BUCKET_SECONDS
            elif bucket == THROUGHPUT_BUCKETS:  # ended exactly now
                buckets[-1] += count / THROUGHPUT_BUCKET_SECONDS
        return tuple(buckets)

    def _finishing(self, now_ts: float) -> dict[str, float]:
        """Tries finished per second by executor, over the last FINISHING_SECONDS."""
        since = now_ts - FINISHING_SECONDS
        rates: dict[str, float] = {}
        for (second, executor), count in self._finished.items():
            if since <= second <= now_ts:
                rates[executor] = rates.get(executor, 0.0) + count / FINISHING_SECONDS
        return rates

    def _count_finished(
        self, conn: sqlite3.Connection, now: pendulum.DateTime, span: int
    ) -> list[Any]:
        """(epoch second, executor, lane, state, tries finished) not counted yet; moves the cursor past them.

        The lane (the timeline's, see _LANE_SQL) is None for a try that never started.
        """
        # One read transaction: the per-second counts and the cursor agree.
        with _read_transaction(conn):
            top = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
            if self._finished_cursor is None:
                since = now.subtract(seconds=span).to_iso8601_string()
                rows = conn.execute(
                    "SELECT CAST(strftime('%s', end_date) AS INTEGER), executor, "
                    f"{_LANE_SQL}, state, count(*) "
                    # INDEXED BY: left to itself SQLite walks every finished row by state.
                    f"FROM task_instances INDEXED BY ti_end_date "
                    f"WHERE end_date >= ? AND state IN {_FINISHED_SQL} GROUP BY 1, 2, 3, 4",
                    (since,),
                ).fetchall()
            elif top > self._finished_cursor:
                rows = conn.execute(
                    "SELECT CAST(strftime('%s', e.at) AS INTEGER), t.executor, "
                    f"{_LANE_SQL}, e.to_state, count(*) "  # its columns are task_instances' only
                    "FROM events e JOIN task_instances t ON t.id = e.ti_id "
                    f"WHERE e.id > ? AND e.id <= ? AND e.to_state IN {_FINISHED_SQL} "
                    "AND e.from_state IS NOT e.to_state GROUP BY 1, 2, 3, 4",
                    (self._finished_cursor, top),
                ).fetchall()
            else:
                rows = []
        self._finished_cursor = top
        return rows

    def _queued_records(
        self, in_flight: Sequence[TaskRecord], pattern: re.Pattern[str] | None
    ) -> tuple[TaskRecord, ...]:
        # Executors' backlogs start first, in the order they start them.
        backlog = sorted(
            (r for r in in_flight if r.state == TaskState.QUEUED), key=lambda r: (-r.priority, r.id)
        )
        if pattern is not None:
            backlog = [
                r
                for r in backlog
                if pattern.search(_filter_text(r.key, r.state, r.executor, r.queue))
            ]
        limit = self.queued_limit
        records = backlog[:limit]
        if len(records) < limit:
            records += self._waiting(limit - len(records), pattern)
        return tuple(records)

    def _queued_rows(self, records: Sequence[TaskRecord], now_ts: float) -> Iterable[QueuedRow]:
        for record in records:
            submitted = parse_time(record.queued_at if record.state == TaskState.QUEUED else None)
            submitted = parse_time(record.submitted_at) if submitted is None else submitted
            yield QueuedRow(
                id=record.id,
                key=record.key,
                state=str(record.state),
                priority=record.priority,
                queue=record.queue,
                executor=record.executor,
                waiting=max(0.0, now_ts - submitted) if submitted is not None else 0.0,
                blocked_by=record.pending_upstreams,
                not_before=record.not_before,
            )

    def _waiting(self, limit: int, pattern: re.Pattern[str] | None) -> list[TaskRecord]:
        """Scheduled tries in Store.waiting's order (ready first, then blocked; priority, then age).

        One query per executor and readiness, each walking the ``ti_ready`` index
        (state, executor, priority DESC, id) and stopping at LIMIT: sorting all
        10,000 waiting rows for every refresh cost 15 ms here, this 0.3 ms.
        """
        if pattern is not None:
            # Filtered: one pass over the waiting rows in SQLite; only matches come back.
            matches: list[TaskRecord] = []
            sql = f"{TASK_SELECT} WHERE state = 'scheduled' AND console_filter({_FILTER_TEXT_SQL})"
            for row in self.store.conn.execute(sql):
                matches.append(TaskRecord.from_row(row))
                if len(matches) >= 50 * limit:
                    break  # more than anyone reads; the header still counts them all
            matches.sort(key=lambda r: (r.pending_upstreams > 0, -r.priority, r.id))
            return matches[:limit]
        found: list[TaskRecord] = []
        for blocked in (False, True):
            wanted = limit - len(found)
            if wanted <= 0:
                break
            batch: list[TaskRecord] = []
            for name in self.executors:
                sql = (
                    f"{TASK_SELECT} WHERE state = 'scheduled' AND executor = ? "
                    f"AND pending_upstreams {'>' if blocked else '='} 0 "
                    "ORDER BY priority DESC, id LIMIT ?"
                )
                batch += [
                    TaskRecord.from_row(row) for row in self.store.conn.execute(sql, (name, wanted))
                ]
            batch.sort(key=lambda record: (-record.priority, record.id))
            found += batch[:wanted]
        return found

    def _running_rows(
        self, in_flight: Sequence[TaskRecord], now_ts: float, pattern: re.Pattern[str] | None
    ) -> Iterable[RunningRow]:
        for record in in_flight:
            if record.state != TaskState.RUNNING:
                continue
            if pattern is not None and not pattern.search(
                _filter_text(
                    record.key, record.state, record.executor, record.queue, record.worker or ""
                )
            ):
                continue
            executor = self.executors.get(record.executor)
            usage = None
            if (
                record.pid
                and self.probe.can_see(record.hostname)
                and (executor is None or executor.is_local)
            ):
                usage = self.probe.measure_tree(record.pid, record.pid_create_time)
            started = parse_time(record.start_date)
            if executor is not None and not executor.serve_logs:
                last = self._remote_last_line(executor, record)
            else:
                last = last_line_of(record.log_path)
            yield RunningRow(
                id=record.id,
                key=record.key,
                executor=record.executor,
                pid=record.pid,
                worker=record.worker,
                hostname=record.hostname,
                elapsed=max(0.0, now_ts - started) if started is not None else None,
                cpu_percent=usage.cpu_percent if usage else None,
                rss=usage.rss if usage else None,
                processes=usage.processes if usage else 0,
                last_line=last,
                timeout=record.timeout,
            )

    def _remote_last_line(self, executor: BaseExecutor, record: TaskRecord) -> str:
        """The last log line of a try whose executor keeps logs elsewhere (e.g. Redis)."""
        if self.engine_status is None:
            return ""  # not our engine: its executors' connections are not ours to use
        try:
            return _last_nonempty(executor.get_task_log(record.key, record.log_path, 2048).text)
        except Exception:  # unreachable log service: the row still shows
            return ""

    def _worker_rows(self, now_ts: float, pattern: re.Pattern[str] | None) -> Iterable[WorkerRow]:
        if self.engine_status is None:
            return []  # worker processes are reported by the console's own engine
        status = self.engine_status()
        seen: set[tuple[str, int]] = set()
        for name, infos in (status.workers if status is not None else {}).items():
            for info in infos:
                usage = self.probe.measure(info.pid) if info.alive else None
                row = WorkerRow(
                    executor=name,
                    pid=info.pid,
                    title=info.title,
                    busy=info.task is not None,
                    task=info.task,
                    cpu_percent=usage.cpu_percent if usage else None,
                    rss=usage.rss if usage else None,
                    tasks_done=info.tasks_done,
                    alive=info.alive,
                    exit_reason=info.exit_reason,
                )
                key = (name, info.pid)
                seen.add(key)
                memory = self._workers.get(key)
                if memory is None:
                    memory = self._workers[key] = _WorkerMemory(row)
                memory.row = row
                if not row.alive and memory.died_at is None:
                    memory.died_at = now_ts
        # A worker that vanished from its executor's list stays visible, dead, a while.
        # Vanished from the list is not dead, though: with the engine stopped (no
        # status) or restarted (a new engine lists only the workers it started),
        # a worker still finishing its try, or one whose try was adopted, lives on.
        rows = []
        for key, memory in list(self._workers.items()):
            if key not in seen and memory.died_at is None and not psutil.pid_exists(key[1]):
                memory.died_at = now_ts
                memory.row = _dead(memory.row, memory.row.exit_reason or "exited")
            if memory.died_at is not None and now_ts - memory.died_at > DEAD_WORKER_SECONDS:
                del self._workers[key]
                continue
            row = memory.row
            if pattern is not None and not pattern.search(
                f"{row.executor} {row.pid} {row.title} {row.task or ''}"
            ):
                continue
            rows.append(row)
        rows.sort(key=lambda r: (not r.alive, r.executor, r.pid))
        return rows

    def _event_rows(self, pattern: re.Pattern[str] | None) -> Iterable[EventRow]:
        store = self.store
        if self._last_event_id == 0:
            fresh = store.events(limit=self.events_limit)
            self._events.extend(_event_row(e) for e in reversed(fresh))
        else:
            # Only the newest events_limit are kept: reading more is wasted work
            # (a busy run writes about 1,000 events a second).
            fresh = store.events(after_id=self._last_event_id, limit=self.events_limit)
            if len(fresh) == self.events_limit:
                # Far behind (a burst of fast tasks): start again from the newest.
                self._events.clear()
                fresh = list(reversed(store.events(limit=self.events_limit)))
            self._events.extend(_event_row(e) for e in fresh)
        if self._events:
            self._last_event_id = self._events[-1].id
        rows = reversed(self._events)
        if pattern is None:
            return list(rows)
        return [
            r
            for r in rows
            if pattern.search(_filter_text(r.key, r.to_state, r.actor, r.reason or ""))
        ]

    def _timeline_rows(
        self, in_flight: Sequence[TaskRecord]
    ) -> tuple[tuple[_TimelineRow, ...], bool]:
        """The latest tries that started, and every running one: only the columns a bar needs.

        Returns the rows and whether more tries started than were read (then
        the timeline adds marks for the others, see _timeline_marks).
        Store.recently_started builds whole TaskRecords (command and env decoded
        from JSON), 120 of them on every refresh of a busy run, for six fields.
        """
        rows = self.store.conn.execute(
            "SELECT id, dag_id, task_id, run_id, map_index, try_number, state, executor, "
            "worker, hostname, start_date, end_date FROM task_instances "
            "WHERE start_date IS NOT NULL ORDER BY start_date DESC LIMIT ?",
            (self.timeline_limit,),
        ).fetchall()
        cut = len(rows) >= self.timeline_limit
        if cut:
            # A try running for longer than the latest tries took to start is not
            # among them (a busy run): its bar comes from what is in flight.
            read = {row[0] for row in rows}
            rows += [
                (
                    r.id, r.dag_id, r.task_id, r.run_id, r.map_index, r.try_number, str(r.state),
                    r.executor, r.worker, r.hostname, r.start_date, r.end_date,
                )
                for r in in_flight
                if r.state == TaskState.RUNNING and r.start_date and r.id not in read
            ]  # fmt: skip
        found = []
        for id_, dag, task, run, index, number, state, executor, worker, host, start, end in rows:
            started = parse_time(start)
            if started is None:
                continue
            found.append(
                _TimelineRow(
                    id=id_,
                    key=TaskKey(dag, task, run, index, number),
                    state=state,
                    executor=executor,
                    lane=worker or host or executor,
                    started=started,
                    ended=parse_time(end) if state != TaskState.RUNNING else None,
                    filter_text=_filter_text(
                        TaskKey(dag, task, run, index, number), state, executor, worker or ""
                    ),
                )
            )
        return tuple(found), cut

    def _timeline_marks(self, now_ts: float) -> Iterable[TimelineMark]:
        """The tries that ended in the throughput window, by lane, second and state."""
        for (second, lane, state), count in self._activity.items():
            yield TimelineMark(lane=lane, second=second - now_ts, state=state, count=count)

    def _timeline(
        self, rows: Sequence[_TimelineRow], now_ts: float, pattern: re.Pattern[str] | None
    ) -> Iterable[TimelineBar]:
        for row in rows:
            if pattern is not None and not pattern.search(row.filter_text):
                continue
            yield TimelineBar(
                id=row.id,
                key=row.key,
                lane=row.lane,
                start=row.started - now_ts,
                end=(row.ended - now_ts) if row.ended is not None else None,
                state=row.state,
            )

    # ---- reads for single screens ------------------------------------------------------
    def older_events(self, before_id: int, limit: int = 100) -> list[EventRow]:
        """A page of history older than ``before_id``, newest first (never all of it)."""
        with self._lock:
            return [_event_row(e) for e in self.store.events(before_id=before_id, limit=limit)]

    def task_detail(self, ti_id: int, log_bytes: int = 16_000) -> TaskDetail | None:
        """Every field, the audit history of every try, the tries and the log tail."""
        with self._lock:
            store = self.store
            record = store.get_by_id(ti_id)
            if record is None:
                return None
            tries = tuple(store.tries(record))
            history: list[EventRow] = []
            for attempt in tries:
                history.extend(_event_row(e) for e in store.events(ti_id=attempt.id, limit=200))
            history.sort(key=lambda e: e.id)
            upstream = tuple(
                row[0]
                for row in store.conn.execute(
                    "SELECT upstream_task_id FROM dependencies WHERE dag_id = ? AND run_id = ? AND task_id = ? "
                    "ORDER BY upstream_task_id",
                    (record.dag_id, record.run_id, record.task_id),
                )
            )
        text, source, _size = read_task_log(self.executors, record, log_bytes)
        return TaskDetail(
            record=record,
            history=tuple(history),
            tries=tries,
            log_tail=text,
            log_source=source,
            upstream=upstream,
        )

    def record(self, ti_id: int) -> TaskRecord | None:
        with self._lock:
            return self.store.get_by_id(ti_id)


def _dead(row: WorkerRow, reason: str) -> WorkerRow:
    return WorkerRow(
        executor=row.executor,
        pid=row.pid,
        title=row.title,
        busy=False,
        task=None,
        cpu_percent=None,
        rss=None,
        tasks_done=row.tasks_done,
        alive=False,
        exit_reason=reason,
    )


def _last_nonempty(text: str) -> str:
    for line in reversed(text.splitlines()):
        if line.strip():
            return clean_line(line)
    return ""


def home_relative(path: str | None, home: Path | None) -> str:
    """A path shown under $EXECCONSOLE_HOME when it lives there (shorter, and stable in screenshots)."""
    if not path:
        return ""
    if home is not None:
        try:
            return "$EXECCONSOLE_HOME/" + str(Path(path).relative_to(home))
        except ValueError:
            pass
    return path
