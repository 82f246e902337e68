"""Store: the SQLite file that is the single source of truth.

Who writes what:
- other processes (``submit``, ``tasks kill`` ...) write only submissions and
  operator requests, each in one ``BEGIN IMMEDIATE`` transaction;
- the engine that holds the lease writes everything else, batched: one
  transaction per tick (``Batch`` + ``commit``), never one per task.

Every state change of a try is appended to ``events`` in the same transaction
that makes it, so the audit log and the task rows can never disagree.
"""

from __future__ import annotations

import heapq
import json
import os
import socket
import sqlite3
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from executors.state import FINISHED_STATES, TaskState
from executors.task_key import PartialKey, TaskKey, parse_key
from store.connection import immediate, open_connection
from store.errors import StoreError, StoreOwned, UnknownTask
from store.records import TASK_COLUMNS, TASK_SELECT, EventRecord, RequestRecord, TaskRecord
from store.runs import (
    RunSummary,
    delete_finished_runs,
    delete_requests_before,
    find_run,
    finished_runs_before,
    latest_try_counts,
    list_runs,
)
from store.schema import apply_migrations

if TYPE_CHECKING:
    import pendulum

# pendulum and psutil are imported where they are used, not here: a command
# that only reads the store (``tasks list``) then starts ~40 ms sooner.
Clock = Callable[[], "pendulum.DateTime"]

ENGINE_LEASE = "engine"
LEASE_STALE_SECONDS = 15.0
# The actors of the audit line an operator's kill writes on the try it kills:
# to end it for good (kill, run cancel) or to run it again (a clear,
# "restarting"). The kill itself lives in the engine (its signals, its grace);
# should that engine die before the try has ended, the next one reads the line
# and carries the kill out as asked, instead of retrying or forgetting it.
KILL_ACTOR = "operator:kill"
RESTART_ACTOR = "operator:restart"
# Columns the engine may set through Batch.transition.
_WRITABLE = frozenset(TASK_COLUMNS) - {
    "id",
    "dag_id",
    "task_id",
    "run_id",
    "map_index",
    "try_number",
    "state",
}
# What every submitted row sets, and the columns it sets only when a task's
# value differs from the schema's default (store/schema.py; a test checks they
# agree). Binding 34 parameters a row, most of them NULL or a default, took
# two thirds of the INSERT of a 10,000-task run: 245 ms against 75 (measured).
_SUBMIT_ALWAYS = ("dag_id", "task_id", "run_id", "state", "command", "executor", "submitted_at")
SUBMIT_DEFAULTS: dict[str, Any] = {
    "shell": 0,
    "env": "{}",
    "cwd": None,
    "priority": 1,
    "queue": "default",
    "retries": 0,
    "retry_delay": 0.0,
    "timeout": None,
    "pending_upstreams": 0,
}


_COLUMN = {name: index for index, name in enumerate(TASK_COLUMNS)}
_STATE, _COMMAND, _SHELL, _ENV, _NO_RETRY = (
    _COLUMN[name] for name in ("state", "command", "shell", "env", "no_retry")
)
if [f.name for f in fields(TaskRecord)] != TASK_COLUMNS:  # record_from_row relies on it
    raise ImportError("TaskRecord's fields must be TASK_COLUMNS, in that order")


_STATES = {str(state): state for state in TaskState}  # a dict lookup, not Enum.__call__

# Transitions whose event has consequences beyond the row (downstream tasks).
_CONSEQUENTIAL = frozenset({TaskState.SUCCESS, TaskState.FAILED, TaskState.UPSTREAM_FAILED})


def record_from_row(row: Sequence[Any]) -> TaskRecord:
    """``TaskRecord.from_row``, positionally: about 4x faster, and every read of
    the engine (each tick's ready tries) goes through it."""
    values = list(row)
    state = values[_STATE]
    values[_STATE] = _STATES.get(state) or TaskState(state)
    values[_COMMAND] = json.loads(values[_COMMAND])
    values[_SHELL] = bool(values[_SHELL])
    env = values[_ENV]
    values[_ENV] = {} if env == "{}" else json.loads(env)
    values[_NO_RETRY] = bool(values[_NO_RETRY])
    return TaskRecord(*values)


def utc_now() -> pendulum.DateTime:
    import pendulum

    return pendulum.now("UTC")


def iso(moment: pendulum.DateTime) -> str:
    return moment.to_iso8601_string()


@dataclass(slots=True)
class TaskSubmission:
    """One task of a submission: what the workflow file or ``submit`` said."""

    task_id: str
    command: list[str]
    executor: str
    shell: bool = False
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    priority: int = 1
    queue: str = "default"
    retries: int = 0
    retry_delay: float = 0.0
    timeout: float | None = None
    upstream: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Transition:
    record: TaskRecord
    to_state: TaskState
    actor: str
    reason: str | None
    fields: dict[str, Any]


_UPDATE_SQL: dict[tuple[str, ...], str] = {}
"""Row updates by the fields they set: a few shapes, each built once."""

_RELEASE_ONE_UPSTREAM = (
    "UPDATE task_instances SET pending_upstreams = pending_upstreams - 1 "
    "WHERE dag_id = ? AND run_id = ? AND task_id = ? AND state = 'scheduled' "
    "AND pending_upstreams > 0 RETURNING pending_upstreams"
)
"""A waiting task's upstream succeeded; returns what it still waits for (SQLite >= 3.35)."""

_UNFINISHED_STATES = ("scheduled", "queued", "running")
_NEXT_EXECUTOR = (
    "SELECT executor FROM task_instances WHERE state = ? AND executor > ? ORDER BY executor LIMIT 1"
)
_COUNT_FOR_EXECUTOR = "SELECT count(*) FROM task_instances WHERE state = ? AND executor = ?"
_ANY_FOR_EXECUTOR = "SELECT 1 FROM task_instances WHERE state = ? AND executor = ? LIMIT 1"

_EVENT_INSERT = (
    "INSERT INTO events (ti_id, at, from_state, to_state, actor, reason) VALUES (?, ?, ?, ?, ?, ?)"
)


class _TickWriter:
    """One commit's row updates and audit events, sent to SQLite in bulk.

    Consecutive updates with the same statement (every "queued" of a tick,
    every "success") go through one ``executemany``, and the events through
    another, instead of two ``execute`` calls a transition: the binding and
    stepping then happen in C. Before any other statement the caller flushes,
    so SQLite still sees every write in the order the engine made it.
    """

    __slots__ = ("conn", "_sql", "_rows", "_events")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._sql = ""
        self._rows: list[tuple[Any, ...]] = []
        self._events: list[tuple[Any, ...]] = []

    def update(self, sql: str, params: tuple[Any, ...]) -> None:
        if sql != self._sql:
            self._flush_updates()
            self._sql = sql
        self._rows.append(params)

    def event(self, params: tuple[Any, ...]) -> None:
        self._events.append(params)

    def _flush_updates(self) -> None:
        if self._rows:
            self.conn.executemany(self._sql, self._rows)
            self._rows = []

    def flush(self) -> None:
        self._flush_updates()
        if self._events:
            self.conn.executemany(_EVENT_INSERT, self._events)
            self._events = []


@dataclass(slots=True)
class Batch:
    """The engine's writes for one tick, committed together by ``Store.commit``."""

    transitions: list[_Transition] = field(default_factory=list)
    new_tries: list[tuple[TaskRecord, str | None, str, str | None, bool]] = field(
        default_factory=list
    )
    revive: list[TaskRecord] = field(default_factory=list)
    wait_again: list[TaskRecord] = field(default_factory=list)
    requests_done: list[tuple[int, str, str | None, dict[str, Any] | None]] = field(
        default_factory=list
    )
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[tuple[TaskRecord, str, str]] = field(default_factory=list)
    renew_lease: bool = False
    forget_runs: list[tuple[str, str]] = field(default_factory=list)
    """Finished runs to delete (see store/runs.py); ones that are no longer finished stay."""
    forget_requests_before: str | None = None
    made_ready: int = 0
    """Set by ``Store.commit``: waiting tries whose last upstream succeeded in it."""
    forgotten: list[tuple[str, str]] = field(default_factory=list)
    """Set by ``Store.commit``: the runs of ``forget_runs`` it deleted (their logs are the caller's)."""

    def transition(
        self,
        record: TaskRecord,
        to_state: TaskState,
        *,
        actor: str,
        reason: str | None = None,
        clear_reason: bool = False,
        **fields: Any,
    ) -> None:
        """Move a try to ``to_state``, setting ``fields`` on its row and logging an event.

        ``reason`` goes into the event and onto the row; with none given, the
        row keeps its earlier reason unless ``clear_reason``.
        """
        unknown = set(fields) - _WRITABLE
        if unknown:
            raise ValueError(f"cannot set {sorted(unknown)} on a task instance")
        if reason is not None:
            fields.setdefault("reason", reason)
        elif clear_reason:
            fields["reason"] = None
        self.transitions.append(_Transition(record, to_state, actor, reason, fields))

    def update(self, record: TaskRecord, **fields: Any) -> None:
        """Set fields without a state change (no event)."""
        self.transition(record, record.state, actor="", **fields)

    def new_try(
        self,
        record: TaskRecord,
        *,
        actor: str,
        not_before: str | None = None,
        reason: str | None = None,
        fresh_retries: bool = False,
    ) -> None:
        """Schedule the next try of ``record``'s task instance.

        ``fresh_retries``: the new try gets the task's whole retry budget again
        (an operator's retry or clear, as in Airflow), instead of what is left of it.
        """
        self.new_tries.append((record, not_before, actor, reason, fresh_retries))

    def revive_downstream(self, record: TaskRecord) -> None:
        """Give tasks that failed only because of ``record``'s task another chance."""
        self.revive.append(record)

    def recount_upstreams(self, record: TaskRecord) -> None:
        """Make a scheduled try wait again for every upstream whose latest try has not succeeded.

        Counted once this batch's new tries are in, so a try cleared with its
        upstreams waits for their new tries; an upstream that has failed makes
        it upstream_failed, as its trigger rule would.
        """
        self.wait_again.append(record)

    def note(self, record: TaskRecord, actor: str, message: str) -> None:
        """An audit line that changes nothing (e.g. the executor gave up on a stuck key)."""
        self.notes.append((record, actor, message))

    def finish_request(
        self,
        request_id: int,
        status: str,
        result: str | None,
        *,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Record a request's outcome; ``details`` (JSON) go into its payload as ``outcome``."""
        self.requests_done.append((request_id, status, result, details))

    def set_setting(self, key: str, value: Any) -> None:
        self.settings[key] = value

    def forget(
        self, finished: Sequence[tuple[str, str]], requests_before: str | None = None
    ) -> None:
        """Delete these finished runs (and operator requests done before ``requests_before``)."""
        self.forget_runs.extend(finished)
        if requests_before is not None:
            self.forget_requests_before = requests_before

    def __bool__(self) -> bool:
        return bool(
            self.transitions
            or self.new_tries
            or self.revive
            or self.wait_again
            or self.requests_done
            or self.settings
            or self.notes
            or self.renew_lease
            or self.forget_runs
            or self.forget_requests_before
        )


def _submission_rows(
    dag_id: str, run_id: str, tasks: Sequence[TaskSubmission], now: str
) -> list[tuple[tuple[str, ...], list[tuple[Any, ...]]]]:
    """The rows of a run's tasks, as consecutive runs of rows that set the same columns.

    Runs, not groups: ids follow the order of ``tasks``, and dispatch breaks
    ties between equal priorities by id.
    """
    scheduled = str(TaskState.SCHEDULED)
    defaults = tuple(SUBMIT_DEFAULTS.values())
    all_defaults = (False,) * len(defaults)
    runs: list[tuple[tuple[str, ...], list[tuple[Any, ...]]]] = []
    last_shape: tuple[bool, ...] | None = None
    for task in tasks:
        optional = (
            int(task.shell),
            json.dumps(task.env) if task.env else "{}",  # most tasks set none
            task.cwd,
            task.priority,
            task.queue,
            task.retries,
            task.retry_delay,
            task.timeout,
            len(set(task.upstream)),
        )
        if optional == defaults:  # the common case, compared in one step
            shape = all_defaults
        else:
            shape = tuple(
                value != default for value, default in zip(optional, defaults, strict=True)
            )
        if shape != last_shape:
            columns = _SUBMIT_ALWAYS + tuple(
                name for name, differs in zip(SUBMIT_DEFAULTS, shape, strict=True) if differs
            )
            runs.append((columns, []))
            last_shape = shape
        row: tuple[Any, ...] = (
            dag_id,
            task.task_id,
            run_id,
            scheduled,
            json.dumps(task.command),
            task.executor,
            now,
        )
        if shape is not all_defaults:
            row += tuple(value for value, differs in zip(optional, shape, strict=True) if differs)
        runs[-1][1].append(row)
    return runs


# A try is its task instance's latest when no later try exists. Asked row by
# row, each question is one probe of the ti_instance index (which covers every
# column it reads), so a listing driven by the state index or by id order with
# a limit stays as fast as without it; grouping by task instance for max()
# (store/runs.py) would read every row of the store first.
_NO_LATER_TRY = (
    "NOT EXISTS (SELECT 1 FROM task_instances AS later"
    " WHERE later.dag_id = task_instances.dag_id AND later.run_id = task_instances.run_id"
    " AND later.task_id = task_instances.task_id AND later.map_index = task_instances.map_index"
    " AND later.try_number > task_instances.try_number)"
)


class Store:
    """The store file at ``path``; created (mode 0600) and migrated on first open."""

    def __init__(self, path: str | os.PathLike[str], clock: Clock = utc_now) -> None:
        self.path = Path(path).expanduser()
        self.clock = clock
        self.conn = open_connection(self.path)
        try:
            apply_migrations(self.conn)
        except sqlite3.DatabaseError as error:
            self.conn.close()
            raise StoreError(
                f"store {self.path} is not an execconsole store ({error}): use another --store"
            ) from None
        self.hostname = socket.gethostname()
        self._runs_with_edges: dict[tuple[str, str], bool] = {}
        self.commit_listeners: list[Callable[[Batch], None]] = []
        """Called with each batch once ``commit`` has made it durable (e.g. a run's progress tally)."""
        # sqlite3 connections sit in a reference cycle (their statement cache
        # refers back to them), so dropping one closes nothing until the cyclic
        # collector runs, and the console script skips the collection Python's
        # own exit would make (console.cli.main.console_script). So a store
        # closes its connection when it is dropped, and at the latest at exit:
        # the last connection to close folds the write-ahead log into the
        # store file and removes it, so a finished command leaves one file.
        self._closer = weakref.finalize(self, self.conn.close)

    def close(self) -> None:
        self._closer()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def now(self) -> str:
        return iso(self.clock())

    # ---- submissions (any process) ----------------------------------------
    def submit(
        self,
        dag_id: str,
        run_id: str,
        tasks: Sequence[TaskSubmission],
        *,
        source: str | None = None,
        actor: str = "submit",
    ) -> list[TaskKey]:
        """Store a run's tasks (try 1, state scheduled) in one transaction.

        Raises:
            StoreError: the run exists already.
        """
        now = self.now()
        runs = _submission_rows(dag_id, run_id, tasks, now)
        with immediate(self.conn) as conn:
            exists = conn.execute(
                "SELECT 1 FROM dag_runs WHERE dag_id = ? AND run_id = ?", (dag_id, run_id)
            ).fetchone()
            if exists:
                raise StoreError(f"run {dag_id}/{run_id} exists already: choose another run id")
            conn.execute(
                "INSERT INTO dag_runs (dag_id, run_id, source, submitted_at) VALUES (?, ?, ?, ?)",
                (dag_id, run_id, source, now),
            )
            first_id = conn.execute(
                "SELECT coalesce(max(id), 0) + 1 FROM task_instances"
            ).fetchone()[0]
            for columns, rows in runs:
                conn.executemany(
                    f"INSERT INTO task_instances ({', '.join(columns)}) "
                    f"VALUES ({', '.join('?' for _ in columns)})",
                    rows,
                )
            conn.executemany(
                "INSERT OR IGNORE INTO dependencies (dag_id, run_id, task_id, upstream_task_id) VALUES (?, ?, ?, ?)",
                [(dag_id, run_id, task.task_id, up) for task in tasks for up in task.upstream],
            )
            conn.execute(
                "INSERT INTO events (ti_id, at, from_state, to_state, actor, reason) "
                "SELECT id, ?, NULL, state, ?, NULL FROM task_instances WHERE id >= ? AND dag_id = ? AND run_id = ?",
                (now, actor, first_id, dag_id, run_id),
            )
        return [TaskKey(dag_id, task.task_id, run_id) for task in tasks]

    # ---- reads -------------------------------------------------------------
    def _records(self, sql: str, params: Sequence[Any] = ()) -> list[TaskRecord]:
        return [record_from_row(row) for row in self.conn.execute(sql, params)]

    def get_by_id(self, ti_id: int) -> TaskRecord | None:
        found = self._records(f"{TASK_SELECT} WHERE id = ?", (ti_id,))
        return found[0] if found else None

    def get(self, key: TaskKey) -> TaskRecord | None:
        found = self._records(
            f"{TASK_SELECT} WHERE dag_id = ? AND task_id = ? AND run_id = ? AND map_index = ? AND try_number = ?",
            tuple(key),
        )
        return found[0] if found else None

    def resolve(self, key: str | PartialKey | TaskKey) -> TaskRecord:
        """Find the try an operator means; a partial key means the latest run and try.

        Raises:
            UnknownTask: nothing matches (the message says what was looked for).
        """
        if isinstance(key, TaskKey):
            record = self.get(key)
            if record is None:
                raise UnknownTask(f"no task instance {key}: see `execconsole tasks list`")
            return record
        partial = parse_key(key) if isinstance(key, str) else key
        sql = f"{TASK_SELECT} WHERE dag_id = ? AND task_id = ? AND map_index = ?"
        params: list[Any] = [partial.dag_id, partial.task_id, partial.map_index]
        if partial.run_id is not None:
            sql += " AND run_id = ?"
            params.append(partial.run_id)
        elif partial.try_number is not None:
            # dag/task#N: try N of the run that dag/task alone resolves to (its
            # newest try's run), so the two forms never name different runs.
            sql += (
                " AND run_id = (SELECT run_id FROM task_instances"
                " WHERE dag_id = ? AND task_id = ? AND map_index = ? ORDER BY id DESC LIMIT 1)"
            )
            params += [partial.dag_id, partial.task_id, partial.map_index]
        if partial.try_number is not None:
            sql += " AND try_number = ?"
            params.append(partial.try_number)
        found = self._records(sql + " ORDER BY id DESC LIMIT 1", params)
        if not found:
            older = ""
            if partial.run_id is None and partial.try_number is not None:
                older = " in the task's latest run (for another run: dag/task/run#try)"
            raise UnknownTask(
                f"no task instance matches {key}{older}: see `execconsole tasks list`"
            )
        return found[0]

    def kill_asked(self, record: TaskRecord) -> tuple[str, str] | None:
        """The operator's kill of this try in its audit log: (``KILL_ACTOR`` or
        ``RESTART_ACTOR``, why), the latest if several; None if there is none."""
        row = self.conn.execute(
            "SELECT actor, reason FROM events WHERE ti_id = ? AND actor IN (?, ?)"
            " ORDER BY id DESC LIMIT 1",
            (record.id, KILL_ACTOR, RESTART_ACTOR),
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def tries(self, record: TaskRecord) -> list[TaskRecord]:
        """Every try of the record's task instance, oldest first."""
        return self._records(
            f"{TASK_SELECT} WHERE dag_id = ? AND run_id = ? AND task_id = ? AND map_index = ? ORDER BY try_number",
            (record.dag_id, record.run_id, record.task_id, record.map_index),
        )

    def list_tasks(
        self,
        *,
        states: Iterable[TaskState | str] | None = None,
        dag_id: str | None = None,
        run_id: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = False,
        latest_only: bool = False,
    ) -> list[TaskRecord]:
        """Tries matching the filters; ``latest_only`` drops tries a later try superseded.

        With ``latest_only``, ``states`` filters on each task's latest try.
        """
        clauses, params = self._filters(states, dag_id, run_id)
        if latest_only:
            clauses.append(_NO_LATER_TRY)
        sql = TASK_SELECT + (f" WHERE {' AND '.join(clauses)}" if clauses else "")
        sql += " ORDER BY id DESC" if newest_first else " ORDER BY id"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params += [limit, offset]
        return self._records(sql, params)

    @staticmethod
    def _filters(
        states: Iterable[TaskState | str] | None, dag_id: str | None, run_id: str | None
    ) -> tuple[list[str], list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if states is not None:
            wanted = [str(TaskState(s)) for s in states]
            clauses.append(f"state IN ({', '.join('?' for _ in wanted)})")
            params += wanted
        if dag_id is not None:
            clauses.append("dag_id = ?")
            params.append(dag_id)
        if run_id is not None:
            clauses.append("run_id = ?")
            params.append(run_id)
        return clauses, params

    def count_by_state(
        self, *, dag_id: str | None = None, run_id: str | None = None
    ) -> dict[str, int]:
        clauses, params = self._filters(None, dag_id, run_id)
        sql = "SELECT state, count(*) FROM task_instances"
        sql += f" WHERE {' AND '.join(clauses)}" if clauses else ""
        counts = {str(state): 0 for state in TaskState}
        for state, count in self.conn.execute(sql + " GROUP BY state", params):
            counts[state] = count
        return counts

    def ready(self, executor: str, limit: int, now: str | None = None) -> list[TaskRecord]:
        """Scheduled tries of ``executor`` whose upstreams succeeded, best first."""
        if limit <= 0:
            return []
        return self._records(
            f"{TASK_SELECT} WHERE state = 'scheduled' AND executor = ? AND pending_upstreams = 0 "
            "AND (not_before IS NULL OR not_before <= ?) ORDER BY priority DESC, id LIMIT ?",
            (executor, now or self.now(), limit),
        )

    def waiting(self, limit: int, executor: str | None = None) -> list[TaskRecord]:
        """Scheduled tries in dispatch order (ready first), for the Queued panel."""
        sql = f"{TASK_SELECT} WHERE state = 'scheduled'"
        params: list[Any] = []
        if executor is not None:
            sql += " AND executor = ?"
            params.append(executor)
        sql += " ORDER BY pending_upstreams > 0, priority DESC, id LIMIT ?"
        return self._records(sql, [*params, limit])

    def in_flight(self, executor: str | None = None) -> list[TaskRecord]:
        """Tries handed to an executor and not yet finished (queued or running)."""
        sql = f"{TASK_SELECT} WHERE state IN ('queued', 'running')"
        params: list[Any] = []
        if executor is not None:
            sql += " AND executor = ?"
            params.append(executor)
        return self._records(sql + " ORDER BY id", params)

    def unfinished_count(self, *, dag_id: str | None = None, run_id: str | None = None) -> int:
        clauses, params = self._filters(["scheduled", "queued", "running"], dag_id, run_id)
        row = self.conn.execute(
            f"SELECT count(*) FROM task_instances WHERE {' AND '.join(clauses)}", params
        ).fetchone()
        return int(row[0])

    def has_unfinished(self, executors: Iterable[str]) -> bool:
        """Whether any try of these executors is scheduled, queued or running (a few index probes)."""
        return any(
            self.conn.execute(_ANY_FOR_EXECUTOR, (state, executor)).fetchone() is not None
            for executor in executors
            for state in _UNFINISHED_STATES
        )

    def unfinished_by_executor(self, *, besides: Iterable[str] = ()) -> dict[str, int]:
        """Tries scheduled, queued or running, by the executor they are for.

        ``besides``: executors left out. Their tries are not even walked: the
        executors with unfinished tries are found by skipping from one to the
        next along the ``ti_ready`` index (a few lookups, however long the
        queue), and only the others' tries are counted. The engine asks this
        of the executors it does not host, with 100,000 tries of its own queued.
        """
        skip = set(besides)
        counts: dict[str, int] = {}
        for state in _UNFINISHED_STATES:
            executor = ""
            while True:
                row = self.conn.execute(_NEXT_EXECUTOR, (state, executor)).fetchone()
                if row is None:
                    break
                executor = row[0]
                if executor in skip:
                    continue
                (count,) = self.conn.execute(_COUNT_FOR_EXECUTOR, (state, executor)).fetchone()
                counts[executor] = counts.get(executor, 0) + count
        return counts

    def events(
        self,
        *,
        ti_id: int | None = None,
        limit: int = 100,
        before_id: int | None = None,
        after_id: int | None = None,
    ) -> list[EventRecord]:
        """Audit-log lines, newest first (or oldest first after ``after_id``)."""
        sql = (
            "SELECT e.id, e.ti_id, t.dag_id, t.task_id, t.run_id, t.map_index, t.try_number, e.at, "
            "e.from_state, e.to_state, e.actor, e.reason, t.duration, t.exit_code "
            "FROM events e JOIN task_instances t ON t.id = e.ti_id"
        )
        clauses: list[str] = []
        params: list[Any] = []
        if ti_id is not None:
            clauses.append("e.ti_id = ?")
            params.append(ti_id)
        if before_id is not None:
            clauses.append("e.id < ?")
            params.append(before_id)
        if after_id is not None:
            clauses.append("e.id > ?")
            params.append(after_id)
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY e.id " + ("ASC" if after_id is not None else "DESC") + " LIMIT ?"
        params.append(limit)
        result = []
        for row in self.conn.execute(sql, params):
            finished = row[9] in {str(s) for s in FINISHED_STATES}
            result.append(
                EventRecord(
                    id=row[0],
                    ti_id=row[1],
                    key=TaskKey(row[2], row[3], row[4], row[5], row[6]),
                    at=row[7],
                    from_state=row[8],
                    to_state=row[9],
                    actor=row[10],
                    reason=row[11],
                    duration=row[12] if finished else None,
                    exit_code=row[13] if finished else None,
                )
            )
        return result

    def finished_since(self, since_iso: str) -> list[str]:
        """End times of tries finished since ``since_iso`` (for throughput)."""
        return [
            row[0]
            for row in self.conn.execute(
                "SELECT end_date FROM task_instances WHERE end_date >= ? AND state IN "
                "('success', 'failed', 'up_for_retry') ORDER BY end_date",
                (since_iso,),
            )
        ]

    def recently_started(self, limit: int) -> list[TaskRecord]:
        """The latest tries that started (for the timeline)."""
        return self._records(
            f"{TASK_SELECT} WHERE start_date IS NOT NULL ORDER BY start_date DESC LIMIT ?", (limit,)
        )

    # ---- engine writes -------------------------------------------------------
    def commit(self, batch: Batch) -> None:
        """Apply one tick's writes in one transaction."""
        if not batch:
            return
        now = self.now()
        with immediate(self.conn) as conn:
            writer = _TickWriter(conn)
            transitions = batch.transitions
            index = 0
            while index < len(transitions):
                transition = transitions[index]
                following = transitions[index + 1] if index + 1 < len(transitions) else None
                if (
                    following is not None
                    and following.record.id == transition.record.id
                    and transition.to_state not in _CONSEQUENTIAL
                ):
                    # A try that started and ended within one tick: one UPDATE of
                    # its row instead of two, both events still logged in order.
                    self._update_row(
                        writer,
                        transition.record.id,
                        following.to_state,
                        {**transition.fields, **following.fields},
                    )
                    batch.made_ready += self._log_transition(writer, transition, now)
                    batch.made_ready += self._log_transition(writer, following, now)
                    index += 2
                    continue
                self._update_row(
                    writer, transition.record.id, transition.to_state, transition.fields
                )
                batch.made_ready += self._log_transition(writer, transition, now)
                index += 1
            writer.flush()
            for record, not_before, actor, reason, fresh in batch.new_tries:
                self._insert_next_try(conn, record, not_before, actor, reason, now, fresh)
            for record in batch.wait_again:
                self._recount_upstreams(conn, record, now)
            for record in batch.revive:
                self._revive_downstream(conn, record, now)
            for record, actor, message in batch.notes:
                conn.execute(
                    "INSERT INTO events (ti_id, at, from_state, to_state, actor, reason) VALUES (?, ?, ?, ?, ?, ?)",
                    (record.id, now, str(record.state), str(record.state), actor, message),
                )
            for request_id, status, result, details in batch.requests_done:
                conn.execute(
                    "UPDATE requests SET status = ?, result = ?, done_at = ? WHERE id = ?",
                    (status, result, now, request_id),
                )
                if details is not None:
                    self._add_outcome(conn, request_id, details)
            for key, value in batch.settings.items():
                conn.execute(
                    "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (key, json.dumps(value)),
                )
            if batch.renew_lease:
                conn.execute(
                    "UPDATE lease SET heartbeat = ? WHERE name = ? AND pid = ? AND hostname = ?",
                    (self.clock().timestamp(), ENGINE_LEASE, os.getpid(), self.hostname),
                )
            if batch.forget_runs:
                batch.forgotten = delete_finished_runs(conn, batch.forget_runs)
            if batch.forget_requests_before is not None:
                delete_requests_before(conn, batch.forget_requests_before)
        for listener in self.commit_listeners:
            listener(batch)

    @staticmethod
    def _update_row(
        writer: _TickWriter, ti_id: int, to_state: TaskState, fields: dict[str, Any]
    ) -> None:
        names = tuple(fields)
        sql = _UPDATE_SQL.get(names)
        if sql is None:
            assignments = ", ".join(["state = ?"] + [f"{name} = ?" for name in names])
            sql = _UPDATE_SQL[names] = f"UPDATE task_instances SET {assignments} WHERE id = ?"
        if "command" in fields or "env" in fields:
            fields = {
                name: json.dumps(value) if name in ("command", "env") else value
                for name, value in fields.items()
            }
        writer.update(sql, (str(to_state), *fields.values(), ti_id))

    def _log_transition(self, writer: _TickWriter, transition: _Transition, now: str) -> int:
        """The transition's audit event and its consequences downstream (the row is updated).

        Returns how many waiting tries this one's success made ready (their last upstream).
        """
        record, to_state = transition.record, transition.to_state
        if to_state == record.state and not transition.reason:
            return 0
        writer.event(
            (record.id, now, str(record.state), str(to_state), transition.actor, transition.reason)
        )
        if to_state == TaskState.SUCCESS and record.state != TaskState.SUCCESS:
            downstream = self._downstream_ids(
                writer.conn, record.dag_id, record.run_id, record.task_id
            )
            if downstream:
                writer.flush()
                # One statement a downstream task (usually one or two), each
                # saying what is left to wait for: the engine asks for another
                # tick at once only when some try became ready.
                made_ready = 0
                for task_id in downstream:
                    for (pending,) in writer.conn.execute(
                        _RELEASE_ONE_UPSTREAM, (record.dag_id, record.run_id, task_id)
                    ):
                        made_ready += pending == 0
                return made_ready
        elif to_state in (TaskState.FAILED, TaskState.UPSTREAM_FAILED):
            writer.flush()
            self._fail_downstream(writer.conn, record, now)
        return 0

    def _downstream_ids(
        self, conn: sqlite3.Connection, dag_id: str, run_id: str, task_id: str
    ) -> list[str]:
        """Task ids that depend on ``task_id`` in that run (one index lookup).

        Looked up first, on their own: folded into the UPDATE as an ``IN``
        subquery, SQLite drives the statement from the run's scheduled rows
        instead, which made every finished try cost time in proportion to the
        tasks still waiting (quadratic over a large run). A run's edges are
        written with its tasks and never change, so a run without any is
        remembered and not asked about again.
        """
        run = (dag_id, run_id)
        has_edges = self._runs_with_edges.get(run)
        if has_edges is None:
            has_edges = self._runs_with_edges[run] = (
                conn.execute(
                    "SELECT 1 FROM dependencies WHERE dag_id = ? AND run_id = ? LIMIT 1", run
                ).fetchone()
                is not None
            )
        if not has_edges:
            return []
        return [
            row[0]
            for row in conn.execute(
                "SELECT task_id FROM dependencies INDEXED BY dependencies_downstream "
                "WHERE dag_id = ? AND run_id = ? AND upstream_task_id = ?",
                (dag_id, run_id, task_id),
            )
        ]

    def _downstream_rows(
        self, conn: sqlite3.Connection, dag_id: str, run_id: str, task_id: str, state: str
    ) -> list[TaskRecord]:
        rows: list[TaskRecord] = []
        for downstream_id in self._downstream_ids(conn, dag_id, run_id, task_id):
            rows += self._records_on(
                conn,
                # No ORDER BY here: it would steer SQLite to the (dag_id, state) index.
                f"{TASK_SELECT} WHERE dag_id = ? AND run_id = ? AND task_id = ? AND state = ?",
                (dag_id, run_id, downstream_id, state),
            )
        rows.sort(key=lambda row: row.id)
        return rows

    @staticmethod
    def _records_on(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> list[TaskRecord]:
        return [record_from_row(row) for row in conn.execute(sql, params)]

    def _walk_downstream(
        self, conn: sqlite3.Connection, record: TaskRecord, state: str
    ) -> Iterator[tuple[TaskRecord, TaskRecord]]:
        """``(upstream, row)`` for every task in ``state`` downstream of ``record``, transitively.

        The caller changes each row before the walk goes on from it, so a row
        is reached once even when several paths lead to it.
        """
        frontier = [record]
        while frontier:
            upstream = frontier.pop()
            for row in self._downstream_rows(
                conn, upstream.dag_id, upstream.run_id, upstream.task_id, state
            ):
                yield upstream, row
                frontier.append(row)

    def _fail_downstream(self, conn: sqlite3.Connection, record: TaskRecord, now: str) -> None:
        """Mark every scheduled task downstream of ``record`` upstream_failed, transitively."""
        for upstream, row in self._walk_downstream(conn, record, "scheduled"):
            self._block(conn, row.id, upstream.task_id, now)

    @staticmethod
    def _block(conn: sqlite3.Connection, ti_id: int, failed_upstream: str, now: str) -> bool:
        """A scheduled try that can never start, ``failed_upstream`` having failed:
        upstream_failed at once, with its event, as Airflow's trigger rule would
        mark it (left scheduled, it would keep its run from ending).

        Returns False, writing nothing, when the try is no longer scheduled.
        """
        reason = f"upstream {failed_upstream} failed"
        cursor = conn.execute(
            "UPDATE task_instances SET state = 'upstream_failed', reason = ?, end_date = ? "
            "WHERE id = ? AND state = 'scheduled'",
            (reason, now, ti_id),
        )
        if not cursor.rowcount:
            return False
        conn.execute(
            "INSERT INTO events (ti_id, at, from_state, to_state, actor, reason) VALUES (?, ?, 'scheduled', 'upstream_failed', 'engine', ?)",
            (ti_id, now, reason),
        )
        return True

    def _revive_downstream(self, conn: sqlite3.Connection, record: TaskRecord, now: str) -> None:
        """Put upstream_failed tasks downstream of ``record`` back to scheduled, transitively.

        Only a task's latest try comes back (an older one was superseded by a
        retry and must never run beside it), and only when none of its other
        upstreams has failed: as Airflow's trigger rule would decide again,
        it then stays upstream_failed, and so does everything below it, which
        would otherwise wait for good and keep the run from ending.
        """
        frontier = [record]
        while frontier:
            upstream = frontier.pop()
            for row in self._downstream_rows(
                conn, upstream.dag_id, upstream.run_id, upstream.task_id, "upstream_failed"
            ):
                if not self._is_latest_try(conn, row):
                    continue
                pending, failed = self._upstream_outcome(conn, row.dag_id, row.run_id, row.task_id)
                if failed is not None:
                    # Still blocked, now by another upstream: say which one.
                    conn.execute(
                        "UPDATE task_instances SET reason = ? WHERE id = ?",
                        (f"upstream {failed} failed", row.id),
                    )
                    continue
                conn.execute(
                    "UPDATE task_instances SET state = 'scheduled', reason = NULL, end_date = NULL, pending_upstreams = ? WHERE id = ?",
                    (pending, row.id),
                )
                conn.execute(
                    "INSERT INTO events (ti_id, at, from_state, to_state, actor, reason) VALUES (?, ?, 'upstream_failed', 'scheduled', 'operator', ?)",
                    (row.id, now, f"upstream {upstream.task_id} given another chance"),
                )
                frontier.append(row)

    def _recount_upstreams(self, conn: sqlite3.Connection, record: TaskRecord, now: str) -> None:
        """Set a scheduled try's upstreams left to wait for from their latest tries (``Batch.recount_upstreams``)."""
        pending, failed = self._upstream_outcome(conn, record.dag_id, record.run_id, record.task_id)
        if failed is None:
            conn.execute(
                "UPDATE task_instances SET pending_upstreams = ? WHERE id = ? AND state = 'scheduled'",
                (pending, record.id),
            )
            return
        if self._block(conn, record.id, failed, now):
            self._fail_downstream(conn, record, now)

    @staticmethod
    def _add_outcome(conn: sqlite3.Connection, request_id: int, details: dict[str, Any]) -> None:
        """Keep what a request did, as JSON, in its payload under ``outcome``."""
        row = conn.execute("SELECT payload FROM requests WHERE id = ?", (request_id,)).fetchone()
        if row is None:
            return
        payload = json.loads(row[0])
        payload["outcome"] = details
        conn.execute(
            "UPDATE requests SET payload = ? WHERE id = ?", (json.dumps(payload), request_id)
        )

    @staticmethod
    def _is_latest_try(conn: sqlite3.Connection, record: TaskRecord) -> bool:
        latest = conn.execute(
            "SELECT max(try_number) FROM task_instances WHERE dag_id = ? AND run_id = ? AND task_id = ? AND map_index = ?",
            (record.dag_id, record.run_id, record.task_id, record.map_index),
        ).fetchone()[0]
        return bool(latest == record.try_number)

    @staticmethod
    def _upstream_outcome(
        conn: sqlite3.Connection, dag_id: str, run_id: str, task_id: str
    ) -> tuple[int, str | None]:
        """How many of a task's upstreams have not succeeded, and one that failed (or None).

        Each upstream counts by its latest try: an upstream retried after it
        succeeded is waited for again, and one whose latest try failed blocks.
        """
        pending = 0
        failed: str | None = None
        for upstream_id, state in conn.execute(
            "SELECT d.upstream_task_id, (SELECT u.state FROM task_instances u WHERE u.dag_id = d.dag_id "
            "AND u.run_id = d.run_id AND u.task_id = d.upstream_task_id ORDER BY u.try_number DESC LIMIT 1) "
            "FROM dependencies d WHERE d.dag_id = ? AND d.run_id = ? AND d.task_id = ? ORDER BY d.upstream_task_id",
            (dag_id, run_id, task_id),
        ):
            if state != TaskState.SUCCESS:
                pending += 1
            if failed is None and state in (TaskState.FAILED, TaskState.UPSTREAM_FAILED):
                failed = upstream_id
        return pending, failed

    def _insert_next_try(
        self,
        conn: sqlite3.Connection,
        record: TaskRecord,
        not_before: str | None,
        actor: str,
        reason: str | None,
        now: str,
        fresh_retries: bool = False,
    ) -> None:
        latest, latest_state = conn.execute(
            "SELECT try_number, state FROM task_instances WHERE dag_id = ? AND run_id = ? AND task_id = ? AND map_index = ? "
            "ORDER BY try_number DESC LIMIT 1",
            (record.dag_id, record.run_id, record.task_id, record.map_index),
        ).fetchone()
        if latest != record.try_number:
            # A later try exists already (two retries of one try in one tick, or
            # a retry of a superseded try): a second one would run beside it.
            return
        if latest_state == TaskState.SUCCESS:
            # Tasks still waiting below counted this one as done when it
            # succeeded; they wait for the new try now, as for any upstream.
            for task_id in self._downstream_ids(conn, record.dag_id, record.run_id, record.task_id):
                conn.execute(
                    "UPDATE task_instances SET pending_upstreams = pending_upstreams + 1 "
                    "WHERE dag_id = ? AND run_id = ? AND task_id = ? AND state = 'scheduled'",
                    (record.dag_id, record.run_id, task_id),
                )
        pending, failed = self._upstream_outcome(conn, record.dag_id, record.run_id, record.task_id)
        cursor = conn.execute(
            "INSERT INTO task_instances (dag_id, task_id, run_id, map_index, try_number, state, command, shell, env, "
            "cwd, priority, queue, executor, retries, retry_delay, timeout, pending_upstreams, not_before, submitted_at, "
            "retry_base) VALUES (?, ?, ?, ?, ?, 'scheduled', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.dag_id,
                record.task_id,
                record.run_id,
                record.map_index,
                latest + 1,
                json.dumps(record.command),
                int(record.shell),
                json.dumps(record.env),
                record.cwd,
                record.priority,
                record.queue,
                record.executor,
                record.retries,
                record.retry_delay,
                record.timeout,
                pending,
                not_before,
                now,
                latest if fresh_retries else record.retry_base,
            ),
        )
        conn.execute(
            "INSERT INTO events (ti_id, at, from_state, to_state, actor, reason) VALUES (?, ?, NULL, 'scheduled', ?, ?)",
            (
                cursor.lastrowid,
                now,
                actor,
                reason or f"try {latest + 1} after try {record.try_number}",
            ),
        )
        if failed is not None:
            assert cursor.lastrowid is not None
            self._block(conn, cursor.lastrowid, failed, now)
            self._fail_downstream(conn, record, now)  # anything still waiting on it

    # ---- runs --------------------------------------------------------------------
    def runs(
        self,
        *,
        dag_id: str | None = None,
        states: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[RunSummary]:
        """Submitted runs and what each came to, newest first (see store/runs.py)."""
        return list_runs(self.conn, dag_id=dag_id, states=states, limit=limit)

    def run(self, dag_id: str, run_id: str | None = None) -> RunSummary | None:
        """One run and what it came to; the workflow's newest run when ``run_id`` is None."""
        return find_run(self.conn, dag_id, run_id)

    def ready_in_run(self, dag_id: str, run_id: str) -> list[TaskRecord]:
        """A run's scheduled tries with no upstream left to wait for (ready, or waiting out a retry delay)."""
        return self._records(
            f"{TASK_SELECT} WHERE dag_id = ? AND state = 'scheduled' AND run_id = ? "
            "AND pending_upstreams = 0 ORDER BY id",
            (dag_id, run_id),
        )

    def latest_tries(
        self, dag_id: str, run_id: str, states: Iterable[TaskState | str]
    ) -> list[TaskRecord]:
        """The latest try of each task of a run, when it is in one of ``states``."""
        wanted = [str(TaskState(state)) for state in states]
        return self._records(
            f"{TASK_SELECT} WHERE id IN (SELECT id FROM (SELECT id, max(try_number) "
            "FROM task_instances WHERE dag_id = ? AND run_id = ? GROUP BY task_id, map_index)) "
            f"AND state IN ({', '.join('?' for _ in wanted)}) ORDER BY id",
            [dag_id, run_id, *wanted],
        )

    def with_downstream(self, dag_id: str, run_id: str, task_ids: Iterable[str]) -> list[str]:
        """``task_ids`` and every task downstream of them in a run, transitively: each once, upstreams first.

        What Airflow's "clear with downstream" reaches. Ties (tasks neither
        of which depends on the other) go by task id, so the order is stable.
        """
        children: dict[str, list[str]] = {}
        for task_id, upstream in self.conn.execute(
            "SELECT task_id, upstream_task_id FROM dependencies WHERE dag_id = ? AND run_id = ?",
            (dag_id, run_id),
        ):
            children.setdefault(upstream, []).append(task_id)
        reached = set(task_ids)
        frontier = list(reached)
        while frontier:
            for child in children.get(frontier.pop(), ()):
                if child not in reached:
                    reached.add(child)
                    frontier.append(child)
        waiting_for = dict.fromkeys(reached, 0)
        for upstream, downstream in children.items():
            if upstream in reached:
                for child in downstream:
                    waiting_for[child] += 1
        ready = sorted(task for task, count in waiting_for.items() if count == 0)
        order: list[str] = []
        while ready:
            task = heapq.heappop(ready)
            order.append(task)
            for child in children.get(task, ()):
                waiting_for[child] -= 1
                if waiting_for[child] == 0:
                    heapq.heappush(ready, child)
        return order

    def latest_tries_of(
        self, dag_id: str, run_id: str, task_ids: Iterable[str]
    ) -> list[TaskRecord]:
        """The latest try of each of these tasks in a run, in the order of ``task_ids``."""
        found: list[TaskRecord] = []
        for task_id in task_ids:
            found += self._records(
                f"{TASK_SELECT} WHERE dag_id = ? AND run_id = ? AND task_id = ? AND {_NO_LATER_TRY} "
                "ORDER BY map_index",
                (dag_id, run_id, task_id),
            )
        return found

    def run_progress(self, dag_id: str, run_id: str) -> dict[str, int]:
        """A run's tasks by the state of their latest try, and ``retried``: its tries beyond one a task."""
        counts = latest_try_counts(self.conn, dag_id, run_id)
        (tries,) = self.conn.execute(
            "SELECT count(*) FROM task_instances WHERE dag_id = ? AND run_id = ?", (dag_id, run_id)
        ).fetchone()
        counts["retried"] = tries - sum(counts.values())
        return counts

    def finished_runs_before(self, before: str, *, dag_id: str | None = None) -> list[RunSummary]:
        """Finished runs whose last try ended before ``before`` (an ISO-8601 UTC time)."""
        return finished_runs_before(self.conn, before, dag_id=dag_id)

    # ---- operator requests (any process) -------------------------------------
    def add_request(self, kind: str, payload: dict[str, Any]) -> int:
        with immediate(self.conn) as conn:
            cursor = conn.execute(
                "INSERT INTO requests (at, kind, payload, requested_by) VALUES (?, ?, ?, ?)",
                (self.now(), kind, json.dumps(payload), f"pid {os.getpid()} on {self.hostname}"),
            )
            return int(cursor.lastrowid or 0)

    def pending_requests(self, limit: int = 100) -> list[RequestRecord]:
        return self._requests("WHERE status = 'pending' ORDER BY id LIMIT ?", (limit,))

    def get_request(self, request_id: int) -> RequestRecord | None:
        found = self._requests("WHERE id = ?", (request_id,))
        return found[0] if found else None

    def _requests(self, where: str, params: Sequence[Any]) -> list[RequestRecord]:
        rows = self.conn.execute(
            f"SELECT id, at, kind, payload, status, result, done_at, requested_by FROM requests {where}",
            params,
        )
        return [
            RequestRecord(
                row[0], row[1], row[2], json.loads(row[3]), row[4], row[5], row[6], row[7]
            )
            for row in rows
        ]

    # ---- settings ----------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        return {
            key: json.loads(value)
            for key, value in self.conn.execute("SELECT key, value FROM settings")
        }

    def get_setting(self, key: str, default: Any = None) -> Any:
        row = self.conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    # ---- the engine lease ----------------------------------------------------
    def lease_owner(self) -> dict[str, Any] | None:
        """The live engine holding the store, or None when the lease is free or stale."""
        row = self.conn.execute(
            "SELECT pid, hostname, acquired_at, heartbeat FROM lease WHERE name = ?",
            (ENGINE_LEASE,),
        ).fetchone()
        if row is None:
            return None
        owner = {"pid": row[0], "hostname": row[1], "acquired_at": row[2], "heartbeat": row[3]}
        return None if self._lease_is_stale(owner) else owner

    def _lease_is_stale(self, owner: dict[str, Any]) -> bool:
        if owner["hostname"] == self.hostname:
            # Same machine: the pid tells for sure whether the owner lives.
            # A heartbeat far older than the stale limit means the pid was reused.
            import psutil

            try:
                # A zombie is dead: killed, and not yet reaped by a parent that
                # may never wait for it. Only its pid lives on.
                if psutil.Process(owner["pid"]).status() == psutil.STATUS_ZOMBIE:
                    return True
            except psutil.NoSuchProcess:
                return True
            except psutil.AccessDenied:
                pass  # it lives; whether it is ours to judge is the heartbeat's question
            return self.clock().timestamp() - owner["heartbeat"] > LEASE_STALE_SECONDS * 8
        return self.clock().timestamp() - owner["heartbeat"] > LEASE_STALE_SECONDS

    def acquire_lease(self) -> None:
        """Become the store's engine.

        Raises:
            StoreOwned: another live engine holds the lease (the message names it).
        """
        with immediate(self.conn) as conn:
            row = conn.execute(
                "SELECT pid, hostname, acquired_at, heartbeat FROM lease WHERE name = ?",
                (ENGINE_LEASE,),
            ).fetchone()
            if row is not None:
                owner = {
                    "pid": row[0],
                    "hostname": row[1],
                    "acquired_at": row[2],
                    "heartbeat": row[3],
                }
                mine = owner["pid"] == os.getpid() and owner["hostname"] == self.hostname
                if not mine and not self._lease_is_stale(owner):
                    raise StoreOwned(
                        f"store {self.path} is owned by the engine with pid {owner['pid']} on {owner['hostname']} "
                        f"(since {owner['acquired_at']}): stop it first, or attach with `execconsole console`"
                    )
            conn.execute(
                "INSERT INTO lease (name, pid, hostname, acquired_at, heartbeat) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET pid = excluded.pid, hostname = excluded.hostname, "
                "acquired_at = excluded.acquired_at, heartbeat = excluded.heartbeat",
                (ENGINE_LEASE, os.getpid(), self.hostname, self.now(), self.clock().timestamp()),
            )

    def release_lease(self) -> None:
        with immediate(self.conn) as conn:
            conn.execute(
                "DELETE FROM lease WHERE name = ? AND pid = ? AND hostname = ?",
                (ENGINE_LEASE, os.getpid(), self.hostname),
            )
