"""After a crash: account for every try a dead engine left queued or running.

Each executor that can adopt is asked about its own tries (by token, pid and
claim files, or by its remote task ids); what it cannot find is failed into
the task's retry policy. A try is never handed out twice: only tries the
executor proves never started go back to scheduled with the same try number.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from executors.base import Adoption, AdoptionOutcome, AdoptionRecord
from executors.state import TaskState
from executors.workload import TaskReport
from store import Batch

if TYPE_CHECKING:
    from console.engine import Engine

log = logging.getLogger(__name__)

ACTOR = "engine:recovery"
FINISHED_UNSEEN = "ended while no engine was running; outcome read from its worker's record"


def recover_in_flight(engine: Engine, batch: Batch) -> int:
    """Adopt, requeue or fail every queued/running try in the store. Returns how many."""
    records = engine.store.in_flight()
    if not records:
        return 0
    now = engine.clock()
    by_executor: dict[str, list] = {}
    for record in records:
        by_executor.setdefault(record.executor, []).append(record)
    for name, group in by_executor.items():
        executor = engine.executors.get(name)
        if executor is None:
            for record in group:
                engine.finish(
                    batch,
                    record,
                    TaskState.FAILED,
                    TaskReport(reason=f"lost: executor {name!r} is not configured in this engine"),
                    now,
                    actor=ACTOR,
                )
            continue
        adoption_records = [
            AdoptionRecord(
                key=record.key,
                state=record.state,
                token=record.token,
                pid=record.pid,
                pid_create_time=record.pid_create_time,
                hostname=record.hostname,
                log_path=record.log_path,
                timeout=record.timeout,
                started_at=record.start_date,
            )
            for record in group
        ]
        if executor.supports_adoption:
            outcomes = executor.adopt(adoption_records)
        else:
            outcomes = {}
        for record in group:
            outcome = outcomes.get(record.key, Adoption(AdoptionOutcome.LOST))
            _apply_outcome(engine, batch, executor, record, outcome, now)
    tries = "try" if len(records) == 1 else "tries"
    engine.note(f"recovered {len(records)} {tries} left in flight by a previous engine")
    return len(records)


def _apply_outcome(engine, batch, executor, record, outcome: Adoption, now) -> None:  # type: ignore[no-untyped-def]
    from console.engine import InFlight

    if outcome.outcome == AdoptionOutcome.ADOPTED:
        flight = InFlight(record, executor, time.monotonic())
        report = outcome.report
        if record.state == TaskState.QUEUED and report is not None and report.pid is not None:
            fields = engine._running_fields(report, now)
            batch.transition(
                record,
                TaskState.RUNNING,
                actor=ACTOR,
                reason="adopted after engine restart",
                **fields,
            )
            flight.record = replace(record, state=TaskState.RUNNING, **fields)
        else:
            batch.note(record, ACTOR, "adopted after engine restart")
        if flight.record.state == TaskState.RUNNING:
            # Its clock runs from its start, not from the adoption (timeouts count from it).
            flight.started_at = time.monotonic() - _seconds_since(flight.record.start_date, now)
        engine.in_flight[record.key] = flight
    elif outcome.outcome == AdoptionOutcome.NEVER_STARTED:
        batch.transition(
            record,
            TaskState.SCHEDULED,
            actor=ACTOR,
            token=None,
            queued_at=None,
            reason="never started before the engine stopped; handed out again",
        )
    elif outcome.outcome == AdoptionOutcome.FINISHED:
        report = outcome.report or TaskReport()
        if record.state == TaskState.QUEUED:
            fields = engine._running_fields(report, now)
            batch.transition(
                record,
                TaskState.RUNNING,
                actor=ACTOR,
                reason="started while no engine was running (found on restart)",
                **fields,
            )
            record = replace(record, state=TaskState.RUNNING, **fields)
        state = (
            TaskState.SUCCESS
            if report.exit_code == 0 and report.signal is None and not report.reason
            else TaskState.FAILED
        )
        if not report.reason:
            # Every step of the audit log says why; this one's outcome comes
            # from the record its worker kept, not from a report to an engine.
            report = replace(report, reason=FINISHED_UNSEEN)
        engine.finish(batch, record, state, report, now, actor=ACTOR)
    else:
        report = outcome.report or TaskReport(
            reason="lost: the engine stopped and the try could not be found afterwards"
        )
        engine.finish(batch, record, TaskState.FAILED, report, now, actor=ACTOR)


def _seconds_since(iso: str | None, now: datetime) -> float:
    """How long before ``now`` ``iso`` was (0 when unknown or later)."""
    if not iso:
        return 0.0
    try:
        then = datetime.fromisoformat(iso)
    except ValueError:
        return 0.0
    return max(now.timestamp() - then.timestamp(), 0.0)
