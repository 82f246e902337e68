"""Task instance states, with Airflow's names."""

from __future__ import annotations

from enum import StrEnum


class TaskState(StrEnum):
    """The life of one try of one task.

    scheduled      waiting in the store for its upstreams and a free slot
    queued         handed to an executor, not yet started
    running        its process has started
    success        exited 0 (or marked so by an operator)
    failed         exited non-zero, was killed, timed out or was lost; no retries left
    up_for_retry   failed, and a later try has been scheduled
    upstream_failed an upstream task failed for good, so this one never runs
    """

    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    UP_FOR_RETRY = "up_for_retry"
    UPSTREAM_FAILED = "upstream_failed"

    @property
    def is_finished(self) -> bool:
        """True for states a try never leaves by itself."""
        return self in FINISHED_STATES


FINISHED_STATES = frozenset(
    {TaskState.SUCCESS, TaskState.FAILED, TaskState.UP_FOR_RETRY, TaskState.UPSTREAM_FAILED}
)
