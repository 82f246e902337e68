"""Carry out operator requests that other processes wrote to the store.

``execconsole tasks kill`` (or a key in an attached console) validates its
input and writes a request row; the engine owning the store picks it up on its
next tick and carries it out here, inside that tick's transaction. The state
may have moved on since the request was checked, so everything is checked
again: a request that no longer applies is marked rejected with the reason.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from executors.state import TaskState
from store import Batch, TaskRecord
from store.records import RequestRecord
from store.runs import RunSummary
from store.store import KILL_ACTOR, RESTART_ACTOR

if TYPE_CHECKING:
    from console.engine import Engine

log = logging.getLogger(__name__)

OPERATOR = "operator"
RETRYABLE = {TaskState.FAILED, TaskState.UPSTREAM_FAILED, TaskState.SUCCESS, TaskState.UP_FOR_RETRY}
MARKABLE = {
    TaskState.SCHEDULED,
    TaskState.FAILED,
    TaskState.UPSTREAM_FAILED,
    TaskState.SUCCESS,
    TaskState.UP_FOR_RETRY,
}


class Rejected(Exception):
    """The request cannot apply now; the message says why."""


@dataclass(frozen=True)
class Done:
    """A request carried out: the text for people, and ``details`` (JSON) kept with the request."""

    text: str
    details: dict[str, Any]

    def __str__(self) -> str:
        return self.text


class RequestHandler:
    """Applies pending requests to the engine and the store batch."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def handle_pending(self, batch: Batch) -> None:
        for request in self.engine.store.pending_requests():
            try:
                result = self.apply(batch, request)
            except Rejected as why:
                batch.finish_request(request.id, "rejected", str(why))
                self.engine.note(f"request {request.id} ({request.kind}) rejected: {why}")
            except Exception as error:  # a bad request row must not stop the engine
                log.exception("request %s failed", request.id)
                batch.finish_request(request.id, "rejected", f"internal error: {error}")
            else:
                details = result.details if isinstance(result, Done) else None
                batch.finish_request(request.id, "done", str(result), details=details)
                self.engine.note(str(result))

    def apply(self, batch: Batch, request: RequestRecord) -> str | Done:
        handler = getattr(self, f"_do_{request.kind}", None)
        if handler is None:
            raise Rejected(f"unknown request kind {request.kind!r}")
        engine = self.engine
        if (
            request.kind == "parallelism"
            and engine.keep_parallelism
            and engine.started_at is not None
            and request.at < engine.started_at
        ):
            # Left by an operator for whichever engine came next; this one was
            # started with --parallelism, which is the later word.
            raise Rejected("it was made before this engine started with --parallelism, which wins")
        result = handler(batch, request.payload)
        return result if isinstance(result, Done) else str(result)

    # ---- helpers -----------------------------------------------------------
    def _current(self, ti_id: int) -> TaskRecord:
        for flight in self.engine.in_flight.values():
            if flight.record.id == ti_id:
                return flight.record
        record = self.engine.store.get_by_id(ti_id)
        if record is None:
            raise Rejected(f"task instance {ti_id} no longer exists")
        return record

    def _each(self, payload: dict[str, Any]) -> list[TaskRecord]:
        return [self._current(int(ti_id)) for ti_id in payload.get("ids", [])]

    def _check_latest(self, record: TaskRecord) -> None:
        """Rejected unless ``record`` is its task's latest try.

        A retry or a mark acts on a task through its latest try: retrying a
        superseded one would run a second try beside the current one, and
        marking one would release (or fail) downstream tasks for a try that
        no longer counts.
        """
        latest = self.engine.store.tries(record)[-1]
        if latest.try_number != record.try_number:
            raise Rejected(
                f"{record.key} is not its task's latest try ({latest.key} is {latest.state}): "
                "act on the latest one"
            )

    def _fail_unstarted(self, batch: Batch, record: TaskRecord, reason: str) -> None:
        """End a try that never started, for good: failed, and no retry follows."""
        batch.transition(
            record,
            TaskState.FAILED,
            actor=OPERATOR,
            reason=reason,
            no_retry=1,
            end_date=self.engine.clock().to_iso8601_string(),
        )

    # ---- request kinds -------------------------------------------------------
    def _kill_for_good(self, batch: Batch, record: TaskRecord, reason: str) -> bool:
        """Kill an in-flight try that no retry follows (its whole process tree).

        False, changing nothing, when its executor could not (it lost sight of
        the try, or cannot reach its broker): the try must not be recorded as
        killed when it ends. Otherwise the kill goes into the audit log too,
        for the next engine should this one die before the try has ended.
        """
        flight = self.engine.in_flight[record.key]
        flight.no_retry = True
        flight.kill_reason = reason
        if not flight.executor.kill(record.key):
            flight.no_retry = False
            flight.kill_reason = None
            return False
        batch.note(record, KILL_ACTOR, reason)
        return True

    def _do_kill(self, batch: Batch, payload: dict[str, Any]) -> str:
        done: list[str] = []
        failed: list[str] = []
        for record in self._each(payload):
            flight = self.engine.in_flight.get(record.key)
            if record.state == TaskState.SCHEDULED:
                self._fail_unstarted(batch, record, "killed by operator before it started")
            elif flight is None:
                raise Rejected(
                    f"{record.key} is {record.state}; only scheduled, queued or running tasks can be killed"
                )
            elif flight.executor.dequeue(record.key):
                self.engine.in_flight.pop(record.key, None)
                self._fail_unstarted(batch, record, "killed by operator before it started")
            elif flight.executor.supports_kill:
                if not self._kill_for_good(batch, record, "killed by operator"):
                    failed.append(str(record.key))
                    continue
            else:
                raise Rejected(f"executor {flight.executor.executor_name!r} cannot kill tasks")
            done.append(str(record.key))
        if failed:
            name = "its executor" if len(failed) == 1 else "their executors"
            killed = f"killed {', '.join(done)}; " if done else ""
            raise Rejected(
                f"{killed}could not kill {', '.join(failed)}: {name} could not reach it now "
                "(see the engine's notes); try again"
            )
        return f"killed {', '.join(done)}"

    def _do_cancel(self, batch: Batch, payload: dict[str, Any]) -> str:
        """Stop a whole run: kill its running tries, fail the ones not started, nothing retried.

        Only tries with nothing left to wait for are ended here: those running
        or handed out, and those ready to start (or waiting out a retry
        delay). The tasks after them are failed by the store as
        upstream_failed once their upstream has failed, as after any failure,
        so each task's history gets exactly one ending.
        """
        dag_id, run_id = str(payload["dag_id"]), str(payload["run_id"])
        engine = self.engine
        reason = f"cancelled by operator with its run {dag_id}/{run_id}"
        ended_now = 0
        killing: list[str] = []
        failed: list[str] = []
        flights = [
            flight
            for flight in engine.in_flight.values()
            if flight.record.dag_id == dag_id and flight.record.run_id == run_id
        ]
        # Everything not started is taken back first: a kill frees a worker,
        # which would otherwise start the next of the run's tries waiting for it.
        started = []
        for flight in flights:
            record = flight.record
            if not flight.executor.dequeue(record.key):
                started.append(flight)
                continue
            engine.in_flight.pop(record.key, None)
            self._fail_unstarted(batch, record, reason + " before it started")
            ended_now += 1
        for flight in started:
            record = flight.record
            if not flight.executor.supports_kill:
                failed.append(str(record.key))
                continue
            if self._kill_for_good(batch, record, f"killed: {reason}"):
                killing.append(str(record.key))
            else:
                failed.append(str(record.key))
        for record in engine.store.ready_in_run(dag_id, run_id):
            if record.key in engine.in_flight:
                continue
            self._fail_unstarted(batch, record, reason + " before it started")
            ended_now += 1
        parts = []
        if killing:
            parts.append(f"killing {len(killing)} running")
        if ended_now:
            parts.append(f"{ended_now} not started failed")
        if not parts and not failed:
            raise Rejected(f"run {dag_id}/{run_id} has nothing left to cancel")
        summary = f"cancelling {dag_id}/{run_id}: {', '.join(parts) or 'nothing stopped'}"
        if failed:
            raise Rejected(
                f"{summary}; could not kill {', '.join(failed)}: their executor could not "
                "reach them now (see the engine's notes); cancel again"
            )
        return summary + "; the tasks after them end as upstream_failed"

    def _do_retry(self, batch: Batch, payload: dict[str, Any]) -> Done:
        roots = self._each(payload)
        if payload.get("downstream"):
            return self._retry_with_downstream(batch, roots)
        done = [str(record.key) for record in roots if self._retry_one(batch, record)]
        return Done(
            f"retrying {', '.join(done) or 'nothing (next tries already scheduled)'}",
            {"retried": done, "cleared": []},
        )

    def _check_retryable(self, record: TaskRecord) -> None:
        """Rejected unless ``record`` may be retried: finished and latest, or waiting out a retry delay."""
        if record.state == TaskState.SCHEDULED and record.not_before:
            return
        if record.state not in RETRYABLE:
            raise Rejected(f"{record.key} is {record.state}; only finished tasks can be retried")
        if record.state != TaskState.UP_FOR_RETRY:
            self._check_latest(record)

    def _retry_one(self, batch: Batch, record: TaskRecord) -> bool:
        """Retry one given try; False when there is nothing to do (its next try exists already)."""
        if record.state == TaskState.SCHEDULED and record.not_before:
            # Its next try waits out a retry delay: it becomes ready now, with
            # the whole retry budget again, as a new try from the operator gets.
            batch.transition(
                record,
                TaskState.SCHEDULED,
                actor=OPERATOR,
                reason=f"retry delay cleared by operator (was until {record.not_before})",
                not_before=None,
                retry_base=record.try_number - 1,
            )
            return True
        self._check_retryable(record)
        if record.state == TaskState.UP_FOR_RETRY:
            return False  # its next try is scheduled already
        if any(earlier.id == record.id for earlier, *_rest in batch.new_tries):
            return False  # retried already in this tick (a key pressed twice)
        batch.new_try(record, actor=OPERATOR, reason="retried by operator", fresh_retries=True)
        batch.revive_downstream(record)
        return True

    def _retry_with_downstream(self, batch: Batch, roots: list[TaskRecord]) -> Done:
        """Airflow's "clear with downstream": retry ``roots``, and run every task below them again.

        Each task downstream of a given one (in its run, transitively) ends
        up with one try that waits for its upstreams: a finished one gets a
        new try; a running one is killed, and its new try follows when it
        has ended (so two never run side by side); one handed out but not
        started is taken back; one not started waits again (a retry delay
        is dropped). Everything is checked before anything is changed.
        """
        for record in roots:
            self._check_retryable(record)
        engine = self.engine
        runs: dict[tuple[str, str], list[TaskRecord]] = defaultdict(list)
        for record in roots:
            runs[(record.dag_id, record.run_id)].append(record)
        plan: list[tuple[TaskRecord, str, str]] = []  # (try, what to do, why), upstreams first
        for (dag_id, run_id), given in runs.items():
            by_task = {(record.task_id, record.map_index): record for record in given}
            why = f"cleared by operator (retry {', '.join(sorted({r.task_id for r in given}))} with downstream)"
            order = engine.store.with_downstream(dag_id, run_id, {r.task_id for r in given})
            for latest in engine.store.latest_tries_of(dag_id, run_id, order):
                root = by_task.get((latest.task_id, latest.map_index))
                if root is not None:
                    plan.append((root, "root", why))
                    continue
                flight = engine.in_flight.get(latest.key)
                record = flight.record if flight is not None else latest
                plan.append((record, self._clear_action(batch, record), why))
        # Taken back first: a kill frees a worker, which would start a try taken back next.
        failed: list[str] = []
        for index, (record, action, why) in enumerate(plan):
            if action != "take_back":
                continue
            flight = engine.in_flight[record.key]
            if flight.executor.dequeue(record.key):
                engine.in_flight.pop(record.key, None)
                plan[index] = (record, "given_back", why)
            else:
                plan[index] = (record, "kill", why)  # a worker has it already
        for index, (record, action, why) in enumerate(plan):
            if action != "kill":
                continue
            if self._kill_to_restart(record, why):
                # In the audit log, where the next engine finds it should this
                # one die before the try has ended: the new try is not lost.
                batch.note(record, RESTART_ACTOR, f"{why} while it ran")
            else:
                failed.append(str(record.key))
                plan[index] = (record, "not_killed", why)
        retried: list[str] = []
        cleared: list[dict[str, str]] = []
        for record, action, why in plan:
            if action == "root":
                if self._retry_one(batch, record):
                    retried.append(str(record.key))
                continue
            if action == "new_try":
                batch.new_try(record, actor=OPERATOR, reason=why, fresh_retries=True)
            elif action in ("wait", "given_back"):
                # Cleared as much as a new try: the whole retry budget again.
                fields: dict[str, Any] = {"not_before": None, "retry_base": record.try_number - 1}
                if action == "given_back":
                    fields.update(token=None, queued_at=None)
                batch.transition(
                    record,
                    TaskState.SCHEDULED,
                    actor=OPERATOR,
                    reason=f"{why}: waits for its upstreams again",
                    **fields,
                )
                batch.recount_upstreams(record)
            if action != "not_killed":
                cleared.append(
                    {
                        "key": str(record.key),
                        "state": str(record.state),
                        "action": {"given_back": "wait"}.get(action, action),
                    }
                )
        text = _cleared_text(retried, cleared)
        if failed:
            name = "its executor" if len(failed) == 1 else "their executors"
            raise Rejected(
                f"{text}; could not kill {', '.join(failed)}: {name} could not reach it now "
                "(see the engine's notes): it runs on, and what it comes to counts"
            )
        return Done(text, {"retried": retried, "cleared": cleared})

    def _clear_action(self, batch: Batch, record: TaskRecord) -> str:
        """What clearing a downstream task's latest try takes: new_try, wait, take_back or kill."""
        if record.state in (
            TaskState.SUCCESS,
            TaskState.FAILED,
            TaskState.UPSTREAM_FAILED,
            TaskState.UP_FOR_RETRY,  # its next try is in this tick's batch; a second is not made
        ):
            return "new_try"
        if record.state == TaskState.SCHEDULED:
            return "wait"
        flight = self.engine.in_flight.get(record.key)
        if flight is None:
            # It ended in this tick (its ending is in the batch, not yet in the store).
            if any(t.record.id == record.id and t.to_state.is_finished for t in batch.transitions):
                return "new_try"
            raise Rejected(
                f"{record.key} is {record.state} but this engine does not hold it: "
                "wait for it to end, then retry again"
            )
        if record.state != TaskState.RUNNING:
            return "take_back"  # or killed, if a worker has started it meanwhile
        if not flight.executor.supports_kill:
            raise Rejected(
                f"{record.key} is running on executor {flight.executor.executor_name!r}, "
                "which cannot kill tasks: wait for it to end, then retry with --downstream"
            )
        return "kill"

    def _kill_to_restart(self, record: TaskRecord, why: str) -> bool:
        """Kill an in-flight try so that a new try follows when it has ended (Airflow's "restarting")."""
        flight = self.engine.in_flight[record.key]
        if not flight.executor.supports_kill:
            return False
        flight.restart = f"{why} while it ran"
        flight.no_retry = False  # a kill asked for earlier is overtaken: it runs again
        if flight.kill_reason:
            return True  # being killed already (a timeout, an earlier kill): it ends soon
        flight.kill_reason = f"killed: {why}"
        if flight.executor.kill(record.key):
            return True
        flight.restart = None
        flight.kill_reason = None
        return False

    def _do_mark(self, batch: Batch, payload: dict[str, Any]) -> str:
        state = TaskState(payload["state"])
        if state not in (TaskState.SUCCESS, TaskState.FAILED):
            raise Rejected(f"tasks can be marked success or failed, not {state}")
        done = []
        for record in self._each(payload):
            if record.state not in MARKABLE:
                raise Rejected(f"{record.key} is {record.state}; kill it before marking it")
            self._check_latest(record)
            if record.state == state:
                continue
            batch.transition(
                record,
                state,
                actor=OPERATOR,
                reason=f"marked {state} by operator",
                no_retry=1,
                end_date=record.end_date or self.engine.clock().to_iso8601_string(),
            )
            if state == TaskState.SUCCESS:
                batch.revive_downstream(record)
            done.append(str(record.key))
        return f"marked {state}: {', '.join(done) or 'nothing to change'}"

    def _do_priority(self, batch: Batch, payload: dict[str, Any]) -> str:
        from console.workflow import PRIORITY_MAX, PRIORITY_MIN

        priority = int(payload["priority"])
        if not PRIORITY_MIN <= priority <= PRIORITY_MAX:
            # Stored before input was checked: writing it would fail the whole tick, every tick.
            raise Rejected(
                f"priority must be from {PRIORITY_MIN} to {PRIORITY_MAX}, not {priority}"
            )
        done = []
        for record in self._each(payload):
            if record.state.is_finished or record.state == TaskState.RUNNING:
                raise Rejected(
                    f"{record.key} is {record.state}; only waiting tasks can be reprioritised"
                )
            batch.update(record, priority=priority)
            flight = self.engine.in_flight.get(record.key)
            if flight is not None:
                flight.executor.change_priority(record.key, priority)
                flight.record = replace(flight.record, priority=priority)
            done.append(str(record.key))
        return f"priority {priority} for {', '.join(done)}"

    def _do_pause(self, batch: Batch, payload: dict[str, Any]) -> str:
        self.engine.paused = True
        batch.set_setting("paused", True)
        for executor in self.engine.executors.values():
            self.engine.return_backlog(executor, batch)
        return "dispatch paused: running tasks go on, nothing new starts"

    def _do_resume(self, batch: Batch, payload: dict[str, Any]) -> str:
        self.engine.paused = False
        batch.set_setting("paused", False)
        return "dispatch resumed"

    def _do_parallelism(self, batch: Batch, payload: dict[str, Any]) -> str:
        value = int(payload["value"])
        if value < 0:
            raise Rejected(f"parallelism must be 0 (unlimited) or more, not {value}")
        name = payload.get("executor") or next(iter(self.engine.executors))
        executor = self.engine.executors.get(name)
        if executor is None:
            raise Rejected(f"no executor named {name!r} is configured here")
        if not executor.supports_live_scaling:
            raise Rejected(f"executor {name!r} cannot change parallelism while running")
        executor.set_parallelism(value)
        batch.set_setting(f"parallelism.{name}", value)
        return f"parallelism of {name} set to {value or 'unlimited'}"

    def _do_forget(self, batch: Batch, payload: dict[str, Any]) -> str:
        before = str(payload["before"])
        found = self.engine.store.finished_runs_before(before, dag_id=payload.get("dag"))
        batch.forget([(run.dag_id, run.run_id) for run in found], requests_before=before)
        return forgotten_text(found, before)


def _cleared_text(retried: list[str], cleared: list[dict[str, str]]) -> str:
    """What a retry with downstream did, for people (``cleared`` as in its JSON outcome)."""
    parts = [f"retrying {', '.join(retried) or 'nothing (next tries already scheduled)'}"]
    if not cleared:
        return parts[0] + "; nothing downstream to clear"
    for action, label in (
        ("new_try", "new tries downstream for {}"),
        ("kill", "killing {} (a new try follows when it has ended)"),
        ("wait", "waiting for their upstreams again: {}"),
    ):
        keys = [entry["key"] for entry in cleared if entry["action"] == action]
        if keys:
            parts.append(label.format(", ".join(keys)))
    return "; ".join(parts)


def forgotten_text(found: list[RunSummary], before: str) -> str:
    """What removing ``found`` (finished runs whose last try ended before ``before``) did."""
    if not found:
        return f"no finished run ended before {before}: nothing removed"
    tries = sum(run.tries for run in found)
    runs = "run" if len(found) == 1 else "runs"
    return f"removed {len(found)} finished {runs} ({tries} task instances, their events and logs) that ended before {before}"
