"""A run's tasks by the state of their latest try, followed commit by commit.

``Store.run_progress`` answers the same question exactly, but by reading every
row of the run: 80 ms for a run of 100,000 tasks here, a cost that grows with
the run and that a progress bar would pay again and again. The engine that
hosts the run makes every change to it, through ``Store.commit``; a tally fed
those commits moves its counts as the tries move, at a cost per transition
and not per row.

It follows only what it can follow exactly: a try changing state, and the
next try the retry policy schedules after an ``up_for_retry``. Anything whose
effect on the run is decided inside SQLite (a failure marking tasks below it
``upstream_failed``, an operator's request, a revived or re-counted task, a
retry that is not the engine's own) makes it ``stale``: its owner counts
exactly again (``RunWatch`` does, at its budgeted pace) and hands the result
to ``reset``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from executors.state import TaskState

if TYPE_CHECKING:
    from store import Batch

_CASCADING = frozenset({TaskState.FAILED, TaskState.UPSTREAM_FAILED})
"""A try ending so changes the tasks below it in SQL, where the tally cannot see."""


class RunTally:
    """Counts by latest-try state of one run (plus ``retried``), kept up to date from commits."""

    __slots__ = ("dag_id", "run_id", "counts", "stale")

    def __init__(self, dag_id: str, run_id: str, counts: dict[str, int]) -> None:
        self.dag_id = dag_id
        self.run_id = run_id
        self.counts: dict[str, int] = {}
        self.stale = False
        self.reset(counts)

    def reset(self, counts: dict[str, int]) -> None:
        """Start again from an exact count (``Store.run_progress``)."""
        self.counts = {str(state): 0 for state in TaskState} | {"retried": 0} | dict(counts)
        self.stale = False

    def follow(self, batch: Batch) -> None:
        """Move the counts by what ``batch`` did to this run (a ``Store.commit_listeners`` entry)."""
        if batch.revive or batch.wait_again or batch.requests_done:
            self.stale = True
        counts = self.counts
        dag_id, run_id = self.dag_id, self.run_id
        for transition in batch.transitions:
            record = transition.record
            if record.run_id != run_id or record.dag_id != dag_id:
                continue
            to_state = transition.to_state
            if to_state == record.state:
                continue  # fields only
            counts[record.state] -= 1
            counts[to_state] += 1
            if to_state in _CASCADING:
                self.stale = True
        for record, _not_before, actor, _reason, _fresh in batch.new_tries:
            if record.run_id != run_id or record.dag_id != dag_id:
                continue
            if actor != "engine":
                self.stale = True  # an operator's retry or clear: what it supersedes varies
                continue
            # The retry policy's next try: the up_for_retry one it follows is superseded.
            counts[TaskState.UP_FOR_RETRY] -= 1
            counts[TaskState.SCHEDULED] += 1
            counts["retried"] += 1
        if any(value < 0 for value in counts.values()):
            self.stale = True
