"""Which workflow runs the console has shown at work have since finished, each said once.

An operator watching a run wants to see it end at a glance: the console
notifies "nightly/run_3 finished: 28 succeeded, 2 failed". Plain Python (no
Textual): the console calls ``finished`` on its poll worker thread, after each
snapshot, and shows what it returns.

A run counts as shown at work once a snapshot has one of its tries running or
queued, or an event of one starting, and the store confirms it has tasks left;
a run that had finished before the console saw it is never announced. Ad-hoc
tasks (``execconsole submit``, the n form) are runs of their own, one task
each: their rows say when they end, and are not announced.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from console.cli.output import plural
from console.snapshot import Snapshot
from store.runs import RunSummary

RunId = tuple[str, str]  # (dag_id, run_id)

CHECK_SECONDS = 1.0  # a run out of sight is looked up in the store at most this often
AD_HOC_SOURCE = "submit"  # RunSummary.source of an ad-hoc task's run
IN_FLIGHT = frozenset({"scheduled", "queued", "running"})
# More runs than this finishing between two refreshes are said in one line.
NAMED_AT_ONCE = 3


class RunWatch:
    """Runs seen at work, looked up until they finish.

    Args:
        lookup: a run's summary from the store (None: no such run, e.g. removed).
        clock: monotonic seconds, for spacing out the look-ups.
    """

    def __init__(
        self,
        lookup: Callable[[str, str], RunSummary | None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lookup = lookup
        self.clock = clock
        self.open: dict[RunId, float] = {}  # run -> when it was last looked up
        self.closed: set[RunId] = set()  # finished (or never watched) until seen at work again

    def finished(self, snapshot: Snapshot) -> list[RunSummary]:
        """The runs seen at work before that have finished now, each once."""
        now = self.clock()
        in_view = {(r.key.dag_id, r.key.run_id) for r in snapshot.running}
        in_view |= {(r.key.dag_id, r.key.run_id) for r in snapshot.queued}
        starting = {
            (e.key.dag_id, e.key.run_id) for e in snapshot.events if e.to_state in IN_FLIGHT
        }
        for run in in_view:
            # A try in flight right now: the run is at work (again, after a retry).
            self.closed.discard(run)
            self.open.setdefault(run, now)
        for run in starting - in_view - self.closed - self.open.keys():
            # Only an event says so, perhaps an old one: ask the store.
            summary = self.lookup(*run)
            if summary is None or summary.finished or summary.source == AD_HOC_SOURCE:
                self.closed.add(run)
            else:
                self.open[run] = now
        done = []
        for run, checked in list(self.open.items()):
            if run in in_view or now - checked < CHECK_SECONDS:
                continue
            summary = self.lookup(*run)
            if summary is None or summary.source == AD_HOC_SOURCE:
                del self.open[run]
                self.closed.add(run)
            elif summary.finished:
                del self.open[run]
                self.closed.add(run)
                done.append(summary)
            else:
                self.open[run] = now
        return done


def finished_text(runs: Sequence[RunSummary]) -> tuple[str, bool]:
    """The notification for runs that finished: its message, and whether any run failed.

    ``nightly/run_3 finished: 28 succeeded, 2 failed``, as ``execconsole run``
    ends; a few at once one per line, more than NAMED_AT_ONCE in one line.
    """
    failed = any(run.state == "failed" for run in runs)
    if len(runs) > NAMED_AT_ONCE:
        bad = sum(1 for run in runs if run.state == "failed")
        return (
            f"{plural(len(runs), 'run')} finished: {len(runs) - bad:,} succeeded, "
            f"{bad:,} failed (`execconsole runs list`)",
            failed,
        )
    return "\n".join(_one_run(run) for run in runs), failed


def _one_run(run: RunSummary) -> str:
    counts = run.counts
    parts = [f"{counts.get('success', 0):,} succeeded"]
    parts += [
        f"{counts[state]:,} {state}" for state in ("failed", "upstream_failed") if counts.get(state)
    ]
    if run.tasks == counts.get("success", 0):
        parts = ["the task succeeded" if run.tasks == 1 else f"all {run.tasks:,} succeeded"]
    return f"{run.dag_id}/{run.run_id} finished: {', '.join(parts)}"
