"""read_meta: what a Celery result-backend entry says about a try.

The executor reads raw ``celery-task-meta-<token>`` values in bulk and turns
each into a TaskState and a TaskReport here. Decoding is plain JSON: nothing
read from Redis is ever unpickled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from executors.state import TaskState
from executors.workload import TaskReport

RUNNING = "RUNNING"
"""Custom Celery state a worker publishes once the try's process has started."""

KEY_PREFIX_MISMATCH = "KeyPrefixMismatch"
"""The exception a worker raises for a try sent by an executor with another key_prefix."""

# Celery states that mean "not started yet" as far as the engine cares.
WAITING_STATES = frozenset({"PENDING", "RECEIVED", "RETRY"})


@dataclass(frozen=True, slots=True)
class MetaReading:
    """None for ``state`` while the try waits; RUNNING, SUCCESS or FAILED once known."""

    state: TaskState | None
    report: TaskReport | None = None
    refused: bool = False
    """A worker refused the try before starting it (its key_prefix differs)."""
    revoked: bool = False
    """Celery's REVOKED: written when Celery *signals* a running try (or drops an
    expired message), so for a try a worker has claimed it is no ending by
    itself; the worker's own outcome, stored once the tree is gone, is."""
    worker_lost: bool = False
    """Celery's FAILURE (WorkerLostError): written the moment Celery reaps a dead
    pool process, while the try's tree may still be dying (guard.py): no ending
    by itself either; the claim's FINISHED record (worker_hooks.py) or the
    lease's expiry is."""


def succeeded(report: TaskReport) -> bool:
    """A report counts as success only when the process exited 0 and nothing else went wrong."""
    return report.exit_code == 0 and report.signal is None and not report.reason


def read_meta(raw: bytes | str) -> MetaReading:
    """Decode one result-backend value; unreadable values read as a failed try."""
    try:
        meta = json.loads(raw)
        status = meta["status"]
    except (ValueError, TypeError, KeyError) as error:
        return MetaReading(
            TaskState.FAILED, TaskReport(reason=f"unreadable Celery result: {error}")
        )
    result = meta.get("result")
    if status in WAITING_STATES:
        return MetaReading(None)
    if status == RUNNING or status == "STARTED":
        report = TaskReport.from_json(result) if isinstance(result, dict) else TaskReport()
        return MetaReading(TaskState.RUNNING, report)
    if status == "SUCCESS":
        if not isinstance(result, dict):
            return MetaReading(
                TaskState.FAILED, TaskReport(reason=f"unexpected Celery result {result!r:.80}")
            )
        report = TaskReport.from_json(result)
        return MetaReading(TaskState.SUCCESS if succeeded(report) else TaskState.FAILED, report)
    if status == "REVOKED":
        return MetaReading(TaskState.FAILED, TaskReport(reason="revoked in Celery"), revoked=True)
    kind = result.get("exc_type") if isinstance(result, dict) else None
    return MetaReading(
        TaskState.FAILED,
        TaskReport(reason=failure_reason(status, result)),
        refused=kind == KEY_PREFIX_MISMATCH,
        worker_lost=kind == "WorkerLostError",
    )


def failure_reason(status: str, result: Any) -> str:
    """One line from Celery's exception record, e.g. ``worker process lost: ...``."""
    if not isinstance(result, dict):
        return f"Celery reported {status}"
    kind = result.get("exc_type", "error")
    message = result.get("exc_message", "")
    if isinstance(message, list | tuple):
        message = " ".join(str(part) for part in message)
    message = str(message).strip()
    if kind == "TryLost":
        return message or "worker lost"
    if kind == KEY_PREFIX_MISMATCH:
        return message or "refused by its worker: key_prefix differs"
    if kind == "WorkerLostError":
        return f"worker process lost: {message or 'it exited while running the try'}"
    return (
        f"Celery {status.lower()}: {kind}: {message}"
        if message
        else f"Celery {status.lower()}: {kind}"
    )
