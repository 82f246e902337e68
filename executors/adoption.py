"""Adoption: what became of tries a dead engine left in flight, read from the claim journals.

After an engine is killed and restarted, each try it had handed out is in
one of four conditions, decided from its claim record (executors/claims.py):
never taken (its token is revoked, and it is handed out again), finished
while nobody watched (its outcome is in the record), still running (watched
through its pid as an ``AdoptedTry`` until it ends), or lost. Shared by every
executor that keeps claim journals on this machine (Local, Sequential).
"""

from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from executors.base import Adoption, AdoptionOutcome, AdoptionRecord
from executors.claims import CLAIMED, FINISHED, REVOKED, STARTED, ClaimBook
from executors.log_spool import reclaim_spool, writer_name
from executors.process_trees import process_tree, same_process_alive, signal_each
from executors.reasons import signal_name
from executors.state import TaskState
from executors.supervisor import HOSTNAME, now_iso, process_create_time, signal_group
from executors.task_key import TaskKey
from executors.workload import TaskReport

log = logging.getLogger(__name__)

LOST_WHILE_DOWN = "lost: task ended while the engine was down, exit status unknown"
# Adopted and watched by pid, it ended; only its parent, the worker that died
# with the old engine, could have learnt how.
LOST_AFTER_ADOPTION = (
    "lost: its worker died with the engine, so how it ended is unknown "
    "(it ended after the restarted engine adopted it)"
)


def outcome_state(report: TaskReport) -> TaskState:
    """SUCCESS only for exit code 0 with nothing to explain; otherwise FAILED."""
    if report.reason is None and report.exit_code == 0 and report.signal is None:
        return TaskState.SUCCESS
    return TaskState.FAILED


PID_CLOCK_SLACK = 5.0
"""How far a process's create time may sit from its try's started_at (wall clock)
and still be taken for it: /proc start times count from a boot time rounded to
the second, and the wall clock may have been stepped since boot. For the pid to
be reused within that window, the machine would have to run through its whole
pid space (32,768 here) in ten seconds."""


def read_claim(claims: ClaimBook, token: str) -> dict[str, Any] | None:
    """A claim record, with the create time of its process filled in when it was left out.

    A worker records only the pid during a try's quiet start. The process
    running under that pid counts as the try's own if it was created around
    the try's start; any other gets a create time of -1, which matches no
    process, so a reused pid is never signalled or watched as the try's.
    """
    record = claims.read(token)
    if (
        record is None
        or record.get("state") != STARTED
        or not record.get("pid")
        or record.get("pid_create_time") is not None
    ):
        return record
    created = process_create_time(record["pid"])
    started = record.get("started_at")
    matches = False
    if created is not None and started:
        try:
            started_epoch = datetime.fromisoformat(started).timestamp()
        except ValueError:
            started_epoch = None
        matches = started_epoch is not None and abs(created - started_epoch) <= PID_CLOCK_SLACK
    record["pid_create_time"] = created if matches else -1.0
    return record


@dataclass(slots=True)
class AdoptedTry:
    """A try another engine's worker started, watched through its pid and claim record."""

    key: TaskKey
    token: str
    pid: int | None
    create_time: float | None
    worker_pid: int | None = None  # set while the claim says claimed-but-not-started
    gone_since: float | None = None
    kill_requested: bool = False
    timeout: float | None = None  # the try's own, in seconds
    deadline: float | None = None  # monotonic: when its timeout runs out
    timed_out: bool = False
    escalate_at: float | None = None  # monotonic: SIGKILL what is left of a timed-out tree

    FINISH_RECORD_GRACE: ClassVar[float] = 2.0
    """After the process has gone, how long the old worker may take to write the outcome."""

    def set_deadline(self, timeout: float | None, started_at: str | None) -> None:
        """Count the try's timeout from when it started, not from when it was adopted.

        The supervisor that would have enforced it may have died with the
        engine; the adopting executor enforces it (``enforce_timeout``).
        """
        if not timeout:
            return
        ran = 0.0
        if started_at:
            try:
                ran = max(time.time() - datetime.fromisoformat(started_at).timestamp(), 0.0)
            except ValueError:
                ran = 0.0
        self.timeout = timeout
        self.deadline = time.monotonic() + max(timeout - ran, 0.0)

    def enforce_timeout(self, now: float, grace: float) -> bool:
        """SIGTERM an overdue try's process tree, SIGKILL it ``grace`` seconds later; never waits.

        True when this call found the try overdue and sent the first signal.
        """
        if self.deadline is None or self.pid is None or now < self.deadline:
            return False
        if self.kill_requested and not self.timed_out:
            return False  # an operator's kill is under way
        first = not self.timed_out
        if first:
            self.timed_out = self.kill_requested = True
            signum = signal.SIGTERM
            self.escalate_at = now + grace
        elif self.escalate_at is not None and now >= self.escalate_at:
            signum = signal.SIGKILL
            self.escalate_at = None
        else:
            return False
        tree = process_tree(self.pid, self.create_time)
        if tree:  # None: the pid is someone else's now; []: gone
            signal_group(self.pid, signum)
            signal_each(tree, signum)
        return first

    def poll(self, claims: ClaimBook, now: float) -> tuple[TaskState, TaskReport] | None:
        """None while the try still runs; otherwise its final state and report."""
        if self.pid is None:
            record = read_claim(claims, self.token) or {}
            if record.get("state") == STARTED and record.get("pid"):
                self.pid, self.create_time = record["pid"], record.get("pid_create_time")
                self.worker_pid = None
            elif record.get("state") == CLAIMED and same_process_alive(self.worker_pid, None):
                return None
        if self.pid is not None and same_process_alive(self.pid, self.create_time):
            return None
        record = read_claim(claims, self.token) or {}
        if record.get("state") == FINISHED:
            report = TaskReport.from_json(record)
            if self.timed_out:
                report.reason = f"timed out after {self.timeout:g}s"
                return TaskState.FAILED, report
            if self.kill_requested:
                report.reason = killed_reason(report)
                return TaskState.FAILED, report
            return outcome_state(report), report
        if self.gone_since is None:
            self.gone_since = now
        if now - self.gone_since < self.FINISH_RECORD_GRACE:
            return None
        if self.timed_out:
            reason: str | None = f"timed out after {self.timeout:g}s"
        elif self.kill_requested:
            reason = "killed by operator (exit status unknown)"
        else:
            reason = None
        return TaskState.FAILED, TaskReport(
            pid=self.pid,
            pid_create_time=self.create_time,
            hostname=HOSTNAME,
            ended_at=now_iso(),
            reason=reason or LOST_AFTER_ADOPTION,
        )


def poll_adopted(
    adopted: dict[TaskKey, AdoptedTry],
    claims: ClaimBook,
    now: float,
    grace: float,
    executor_name: str,
) -> list[tuple[TaskKey, TaskState, TaskReport]]:
    """Enforce adopted tries' timeouts; take out of ``adopted`` and return those that ended."""
    ended = []
    for key, watched in list(adopted.items()):
        if watched.enforce_timeout(now, grace):
            log.info(
                "%s: adopted try %s ran past its timeout of %gs: killing it",
                executor_name,
                key,
                watched.timeout,
            )
        outcome = watched.poll(claims, now)
        if outcome is not None:
            del adopted[key]
            ended.append((key, *outcome))
    return ended


def killed_reason(report: TaskReport) -> str:
    """The reason for a try an operator killed, keeping how it actually ended."""
    if report.signal:
        return f"killed by operator ({signal_name(report.signal)})"
    if report.exit_code is not None:
        return f"killed by operator (then exited with code {report.exit_code})"
    return "killed by operator"


def adopt_from_claims(
    claims: ClaimBook, records: list[AdoptionRecord]
) -> tuple[dict[TaskKey, Adoption], dict[TaskKey, AdoptedTry]]:
    """Decide, from the claim files, what became of tries a dead engine left in flight.

    Returns the outcome of every record, and the tries to watch from now on.
    """
    outcomes: dict[TaskKey, Adoption] = {}
    watched: dict[TaskKey, AdoptedTry] = {}
    for record in records:
        if not record.token:
            outcomes[record.key] = Adoption(
                AdoptionOutcome.LOST, TaskReport(reason="lost: no claim token was recorded")
            )
            continue
        claim = read_claim(claims, record.token)
        if claim is None:
            if claims.revoke(record.token, why="engine restarted before any worker took it"):
                outcomes[record.key] = Adoption(AdoptionOutcome.NEVER_STARTED)
                continue
            claim = read_claim(claims, record.token) or {}  # a worker claimed it just now
        state = claim.get("state")
        if (
            state in (CLAIMED, STARTED)
            and record.log_path
            and claim.get("hostname") in (None, HOSTNAME)
            and claim.get("worker_pid")
            and not same_process_alive(claim["worker_pid"], None)
        ):
            # Its worker died with the engine: what the try wrote is in the worker's spool.
            reclaim_spool(record.log_path, writer_name(claim["worker_pid"]))
        if state == REVOKED:
            outcomes[record.key] = Adoption(AdoptionOutcome.NEVER_STARTED)
        elif state == FINISHED:
            outcomes[record.key] = Adoption(AdoptionOutcome.FINISHED, TaskReport.from_json(claim))
        elif claim.get("hostname") not in (None, HOSTNAME):
            outcomes[record.key] = Adoption(
                AdoptionOutcome.LOST,
                TaskReport(reason=f"lost: it ran on {claim['hostname']}, not on this machine"),
            )
        elif state == STARTED and same_process_alive(
            claim.get("pid"), claim.get("pid_create_time")
        ):
            report = TaskReport.from_json(claim)
            watched[record.key] = AdoptedTry(
                record.key, record.token, report.pid, report.pid_create_time
            )
            watched[record.key].set_deadline(record.timeout, report.started_at or record.started_at)
            outcomes[record.key] = Adoption(AdoptionOutcome.ADOPTED, report)
        elif state == CLAIMED and same_process_alive(claim.get("worker_pid"), None):
            # Its worker outlived the engine and is about to start it.
            watched[record.key] = AdoptedTry(
                record.key, record.token, None, None, worker_pid=claim.get("worker_pid")
            )
            watched[record.key].set_deadline(record.timeout, None)
            outcomes[record.key] = Adoption(AdoptionOutcome.ADOPTED)
        else:
            final = read_claim(claims, record.token) or {}
            if final.get("state") == FINISHED:  # it ended while we looked
                outcomes[record.key] = Adoption(
                    AdoptionOutcome.FINISHED, TaskReport.from_json(final)
                )
            else:
                outcomes[record.key] = Adoption(
                    AdoptionOutcome.LOST, TaskReport(hostname=HOSTNAME, reason=LOST_WHILE_DOWN)
                )
    return outcomes, watched
