"""Waiting for tasks to end, for scripts: ``submit --wait`` and ``tasks wait``.

A task *instance* (dag, task, run, map index) has ended when its latest try
is success, failed or upstream_failed. A try that failed into its retry
policy is up_for_retry with its next try already stored (the engine writes
both in one transaction), so "latest try finished" never fires between tries.

Waiting only reads the store, at a pace that slows from 0.1 s to 1 s: a short
task is seen at once and a long one costs a read a second. It needs no engine
to start, but says once when none owns the store, because then nothing will
happen until one does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from executors.state import TaskState
from store.records import TaskRecord
from store.store import Store

ENDED = frozenset({TaskState.SUCCESS, TaskState.FAILED, TaskState.UPSTREAM_FAILED})

_FIRST_POLL = 0.1
_LONGEST_POLL = 1.0


class EngineWatch:
    """Notes, once each, that no engine owns the store and that one has taken it since.

    For every command that waits on the engine (``tasks wait``, ``submit
    --wait``, ``tasks logs --follow``): without an engine nothing they wait for
    will happen, and they would otherwise wait in silence.
    """

    CHECK_EVERY = 2.0  # seconds between looks at the lease

    def __init__(
        self,
        store: Store,
        note: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.note = note
        self.clock = clock
        self._next_check = 0.0
        self._said_no_engine = False

    def check(self) -> None:
        """Look at the lease (at most every CHECK_EVERY seconds) and note what changed."""
        now = self.clock()
        if now < self._next_check:
            return
        self._next_check = now + self.CHECK_EVERY
        owner = self.store.lease_owner()
        if owner is None and not self._said_no_engine:
            self.note(
                "no engine owns this store: waiting for `execconsole scheduler` "
                "or `execconsole console` to run it"
            )
            self._said_no_engine = True
        elif owner is not None and self._said_no_engine:
            self.note(f"engine pid {owner['pid']} on {owner['hostname']} has taken the store")
            self._said_no_engine = False


@dataclass(slots=True)
class WaitOutcome:
    """Each waited task's latest try when the wait stopped, and whether all had ended."""

    latest: list[TaskRecord]
    timed_out: bool

    @property
    def unfinished(self) -> list[TaskRecord]:
        return [record for record in self.latest if record.state not in ENDED]

    @property
    def failed(self) -> list[TaskRecord]:
        return [
            record
            for record in self.latest
            if record.state in ENDED and record.state != TaskState.SUCCESS
        ]


def latest_try(store: Store, record: TaskRecord) -> TaskRecord:
    """The newest try of ``record``'s task instance (``record`` itself if it is the newest)."""
    tries = store.tries(record)
    return tries[-1] if tries else record


def wait_for_tasks(
    store: Store,
    records: Sequence[TaskRecord],
    *,
    timeout: float | None = None,
    note: Callable[[str], None] = lambda _message: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> WaitOutcome:
    """Poll until every given task instance has ended, or ``timeout`` seconds pass.

    ``note`` hears, once each, that no engine owns the store and that one
    took it since.
    """
    latest = [latest_try(store, record) for record in records]
    started = clock()
    pause = _FIRST_POLL
    engine_watch = EngineWatch(store, note, clock)
    while True:
        latest = [
            record if record.state in ENDED else latest_try(store, record) for record in latest
        ]
        if all(record.state in ENDED for record in latest):
            return WaitOutcome(latest, timed_out=False)
        now = clock()
        if timeout is not None and now - started >= timeout:
            return WaitOutcome(latest, timed_out=True)
        engine_watch.check()
        if timeout is not None:
            pause = min(pause, max(0.0, timeout - (now - started)))
        sleep(pause)
        pause = min(pause * 1.5, _LONGEST_POLL) or _FIRST_POLL
