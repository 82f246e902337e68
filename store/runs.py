"""Workflow runs as a whole: what each run came to, and removing finished ones.

A run's state is read from the latest try of each of its tasks (earlier
tries were retried and no longer decide anything):

    queued   nothing has started yet and something waits
    running  something has started and something is not finished
    failed   every task is finished and at least one failed (or its upstream did)
    success  every task succeeded

Removing a run deletes its task instances, their audit events, its task
edges and the run itself in one transaction, and only ever a run whose
every try is finished (checked inside that transaction). Its log folder is
removed by the caller once that transaction has committed (``forget_logs``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from executors.state import FINISHED_STATES, TaskState

UNFINISHED = tuple(str(state) for state in TaskState if state not in FINISHED_STATES)
RUN_STATES = ("queued", "running", "failed", "success")

# The latest try of each task of one run, counted by state. With max() in the
# select list SQLite takes a bare column (state) from the row holding the max,
# which walks the run's index once: a third sooner than asking, row by row,
# whether a later try exists.
_LATEST_TRY_COUNTS = """
    SELECT state, count(*) FROM (
        SELECT state, max(try_number) FROM task_instances
        WHERE dag_id = ? AND run_id = ? GROUP BY task_id, map_index)
    GROUP BY state
"""
_RUN_SPAN = """
    SELECT count(*), min(start_date), max(end_date) FROM task_instances
    WHERE dag_id = ? AND run_id = ?
"""
_UNFINISHED_CLAUSE = f"state IN ({', '.join(repr(state) for state in UNFINISHED)})"


@dataclass(frozen=True)
class RunSummary:
    """One submitted run of a workflow and what it came to."""

    dag_id: str
    run_id: str
    source: str | None
    submitted_at: str
    counts: dict[str, int] = field(default_factory=dict)
    """Tasks by the state of their latest try."""
    tries: int = 0
    started_at: str | None = None
    ended_at: str | None = None
    """When its last try ended; None while anything is unfinished."""

    @property
    def tasks(self) -> int:
        return sum(self.counts.values())

    @property
    def finished(self) -> bool:
        return not any(self.counts.get(state) for state in UNFINISHED)

    @property
    def state(self) -> str:
        if not self.finished:
            started = self.started_at is not None
            return "running" if started else "queued"
        failed = self.counts.get("failed", 0) + self.counts.get("upstream_failed", 0)
        return "failed" if failed else "success"

    def to_json(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "state": self.state,
            "source": self.source,
            "submitted_at": self.submitted_at,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "tasks": self.tasks,
            "tries": self.tries,
            "counts": {state: count for state, count in self.counts.items() if count},
        }


def latest_try_counts(conn: sqlite3.Connection, dag_id: str, run_id: str) -> dict[str, int]:
    """A run's tasks by the state of their latest try (every state present, zeros included)."""
    counts = {str(state): 0 for state in TaskState}
    counts.update(dict(conn.execute(_LATEST_TRY_COUNTS, (dag_id, run_id)).fetchall()))
    return counts


# Each try of the given ids and up that is not a task's first, with the try it
# superseded (the one before it: try numbers have no holes). Walks the ids from
# the primary key, then one probe of the unique key per later try.
_SUPERSEDED_SINCE = """
    SELECT earlier.id, earlier.state FROM task_instances AS later
    JOIN task_instances AS earlier ON earlier.dag_id = later.dag_id
        AND earlier.task_id = later.task_id AND earlier.run_id = later.run_id
        AND earlier.map_index = later.map_index AND earlier.try_number = later.try_number - 1
    WHERE later.id > ? AND later.try_number > 1
"""
FINISHED = tuple(str(state) for state in FINISHED_STATES)


class LatestTryCounts:
    """Every task in the store by the state of its latest try, kept up to date cheaply.

    ``count_by_state`` counts tries: a task retried three times is counted
    four times, so "2 failed" may be one task that failed twice. Grouping by
    task for its latest try (as ``latest_try_counts`` does for one run) reads
    every row of the store, too much for a console's refresh. This counts the
    other way: the tries per state, minus the tries a later try superseded.

    - An ``up_for_retry`` try is always superseded (the engine inserts its next
      try in the same commit): all of them are.
    - Any other superseded try (an operator's retry or clear of a finished
      try) is found once, when the try after it appears: only the tries added
      since the last call are read (by id), and only those not a task's first
      lead to a probe. Their ids are kept and their states read again on each
      call (an operator may mark an old try), by primary key: a few rows.
    - If rows went away (``runs clean``) the count no longer adds up, and it
      starts again from the first row, once.

    A superseded try that has not finished (a running try killed by a clear
    ends up_for_retry first) still counts where it is: it is work going on.
    """

    def __init__(self) -> None:
        self._after = 0  # the highest id read
        self._rows = 0  # rows up to it
        # Superseded tries that were not up_for_retry when found: id -> state now.
        self._superseded: dict[int, str] = {}

    def count(self, conn: sqlite3.Connection, tries: dict[str, int]) -> dict[str, int]:
        """Tasks by the state of their latest try, from ``tries`` (``count_by_state``, read in
        the same transaction); ``up_for_retry`` holds the tries retried, whatever their state."""
        total = sum(tries.values())
        added, top = conn.execute(
            "SELECT count(*), max(id) FROM task_instances WHERE id > ?", (self._after,)
        ).fetchone()
        if self._rows + added != total:  # rows were removed: start again
            self._after, self._rows, self._superseded = 0, 0, {}
            added, top = conn.execute(
                "SELECT count(*), max(id) FROM task_instances WHERE id > 0"
            ).fetchone()
        if added:
            for ti_id, state in conn.execute(_SUPERSEDED_SINCE, (self._after,)):
                if state != "up_for_retry":
                    self._superseded[ti_id] = state
            self._after, self._rows = top, self._rows + added
        if self._superseded:
            self._superseded = self._states_now(conn, list(self._superseded))
        latest = dict(tries)
        retried = latest.get("up_for_retry", 0)
        for state in self._superseded.values():
            if state in FINISHED and state != "up_for_retry":  # up_for_retry: counted above
                latest[state] -= 1
                retried += 1
        latest["up_for_retry"] = retried
        return latest

    @staticmethod
    def _states_now(conn: sqlite3.Connection, ids: list[int]) -> dict[int, str]:
        states: dict[int, str] = {}
        for start in range(0, len(ids), 500):  # within SQLite's limit on parameters
            chunk = ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            states.update(
                conn.execute(
                    f"SELECT id, state FROM task_instances WHERE id IN ({marks})", chunk
                ).fetchall()
            )
        return states  # a try removed since (runs clean) is left out


def summarise(
    conn: sqlite3.Connection, dag_id: str, run_id: str, source: str | None, submitted_at: str
) -> RunSummary:
    counts = latest_try_counts(conn, dag_id, run_id)
    tries, started_at, ended_at = conn.execute(_RUN_SPAN, (dag_id, run_id)).fetchone()
    if any(counts[state] for state in UNFINISHED):
        ended_at = None  # an earlier try's end is not the run's
    return RunSummary(dag_id, run_id, source, submitted_at, counts, tries, started_at, ended_at)


def list_runs(
    conn: sqlite3.Connection,
    *,
    dag_id: str | None = None,
    states: Sequence[str] | None = None,
    limit: int | None = None,
) -> list[RunSummary]:
    """Runs, newest first; ``states`` filters on the run's state (see the module's docstring)."""
    sql = "SELECT dag_id, run_id, source, submitted_at FROM dag_runs"
    params: list[Any] = []
    if dag_id is not None:
        sql += " WHERE dag_id = ?"
        params.append(dag_id)
    sql += " ORDER BY submitted_at DESC, rowid DESC"
    found: list[RunSummary] = []
    for row in conn.execute(sql, params).fetchall():
        summary = summarise(conn, *row)
        if states and summary.state not in states:
            continue
        found.append(summary)
        if limit is not None and len(found) >= limit:
            break
    return found


def find_run(conn: sqlite3.Connection, dag_id: str, run_id: str | None = None) -> RunSummary | None:
    """One run by its ids, or the workflow's newest run when ``run_id`` is None."""
    sql = "SELECT dag_id, run_id, source, submitted_at FROM dag_runs WHERE dag_id = ?"
    params: list[Any] = [dag_id]
    if run_id is not None:
        sql += " AND run_id = ?"
        params.append(run_id)
    row = conn.execute(sql + " ORDER BY submitted_at DESC, rowid DESC LIMIT 1", params).fetchone()
    return summarise(conn, *row) if row is not None else None


def finished_runs_before(
    conn: sqlite3.Connection, before: str, *, dag_id: str | None = None
) -> list[RunSummary]:
    """Runs whose every try is finished, and whose last activity came before ``before``.

    Last activity: the latest try's end, or the submission for a run that
    never ran (every task marked by an operator, say). A run submitted long
    ago but retried since is kept until its retry is as old.
    """
    sql = (
        "SELECT r.dag_id, r.run_id, r.source, r.submitted_at FROM dag_runs r "
        "WHERE r.submitted_at < ? AND NOT EXISTS (SELECT 1 FROM task_instances t "
        f"WHERE t.dag_id = r.dag_id AND t.run_id = r.run_id AND t.{_UNFINISHED_CLAUSE}) "
        "AND coalesce((SELECT max(t.end_date) FROM task_instances t "
        "WHERE t.dag_id = r.dag_id AND t.run_id = r.run_id), '') < ?"
    )
    params: list[Any] = [before, before]
    if dag_id is not None:
        sql += " AND r.dag_id = ?"
        params.append(dag_id)
    sql += " ORDER BY r.submitted_at, r.rowid"
    return [summarise(conn, *row) for row in conn.execute(sql, params).fetchall()]


def delete_finished_runs(
    conn: sqlite3.Connection, runs: Sequence[tuple[str, str]]
) -> list[tuple[str, str]]:
    """Delete the given runs that are still wholly finished; returns those deleted.

    Call inside a write transaction: a run that an operator retried since it
    was chosen has an unfinished try again, and is kept.
    """
    deleted = []
    for dag_id, run_id in runs:
        unfinished = conn.execute(
            f"SELECT 1 FROM task_instances WHERE dag_id = ? AND run_id = ? AND {_UNFINISHED_CLAUSE} LIMIT 1",
            (dag_id, run_id),
        ).fetchone()
        if unfinished:
            continue
        conn.execute(
            "DELETE FROM events WHERE ti_id IN "
            "(SELECT id FROM task_instances WHERE dag_id = ? AND run_id = ?)",
            (dag_id, run_id),
        )
        conn.execute("DELETE FROM task_instances WHERE dag_id = ? AND run_id = ?", (dag_id, run_id))
        conn.execute("DELETE FROM dependencies WHERE dag_id = ? AND run_id = ?", (dag_id, run_id))
        conn.execute("DELETE FROM dag_runs WHERE dag_id = ? AND run_id = ?", (dag_id, run_id))
        deleted.append((dag_id, run_id))
    return deleted


def delete_requests_before(conn: sqlite3.Connection, before: str) -> int:
    """Forget operator requests carried out (or rejected) before ``before``; pending ones stay."""
    cursor = conn.execute(
        "DELETE FROM requests WHERE status != 'pending' AND coalesce(done_at, at) < ?", (before,)
    )
    return cursor.rowcount


def forget_logs(logs_dir: Path, runs: Sequence[tuple[str, str]]) -> None:
    """Remove the log folders of deleted runs (``<logs>/<dag>/<run>/``), and emptied dag folders."""
    import shutil

    for dag_id, run_id in runs:
        if dag_id in (".", "..") or run_id in (".", ".."):
            continue  # such ids never name a folder of their own
        run_dir = logs_dir / dag_id / run_id
        shutil.rmtree(run_dir, ignore_errors=True)
        try:
            run_dir.parent.rmdir()  # only if no other run of the dag has logs left
        except OSError:
            pass
