"""Operator actions, shared by the headless commands and the console's keys.

Each action checks its input against the store first, so bad input fails at
once with one line (and nothing written), then writes one request that the
engine owning the store carries out on its next tick.
"""

from __future__ import annotations

import math
import os
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

import pendulum

from executors.state import TaskState
from executors.task_key import ID_RULE, TaskKey, is_valid_id
from store import InvalidRequest, Store, TaskRecord, TaskSubmission
from store.records import RequestRecord

KILLABLE = {TaskState.SCHEDULED, TaskState.QUEUED, TaskState.RUNNING}
RETRYABLE = {TaskState.FAILED, TaskState.UPSTREAM_FAILED, TaskState.SUCCESS}
MARKABLE = {
    TaskState.SCHEDULED,
    TaskState.FAILED,
    TaskState.UPSTREAM_FAILED,
    TaskState.SUCCESS,
    TaskState.UP_FOR_RETRY,
}
REPRIORITISABLE = {TaskState.SCHEDULED, TaskState.QUEUED}


# ---- what each action asks of a try's state -----------------------------------------
# One line each, naming the try and what to do: the action refuses with it, and the
# console shows the same line before it asks anything (and greys the key out for a
# try it knows to be in such a state). ``key`` is shown as given; ``state`` is a
# TaskState or its name. The engine checks again when it carries a request out
# (console/operator_requests.py): the state may have moved on meanwhile.


def kill_refusal(key: object, state: str) -> str | None:
    """Why a try in ``state`` cannot be killed (None: it can)."""
    if state in KILLABLE:
        return None
    return f"{key} is {state}: only scheduled, queued or running tasks can be killed"


def retry_refusal(key: object, state: str, *, retry_delay: bool | None) -> str | None:
    """Why a try in ``state`` cannot be retried (None: it can).

    ``retry_delay``: whether a scheduled try is waiting out a retry delay (then
    a retry starts it now, as in Airflow); None when that is not known here.
    """
    if state == TaskState.SCHEDULED and retry_delay is not False:
        return None
    if state in RETRYABLE:
        return None
    return f"{key} is {state}: only failed, upstream_failed or success tasks can be retried" + (
        " (kill it first)" if state in KILLABLE else ""
    )


def mark_refusal(key: object, state: str, wanted: str) -> str | None:
    """Why a try in ``state`` cannot be marked ``wanted`` (None: it can)."""
    if state in MARKABLE:
        return None
    return f"{key} is {state}: kill it before marking it {wanted}"


def already_marked(key: object, state: str, wanted: str) -> str | None:
    """The line for marking a try with the state it has already (None: it has another)."""
    if state != wanted:
        return None
    return f"{key} is already {state}: nothing to change"


def priority_refusal(key: object, state: str) -> str | None:
    """Why a try in ``state`` cannot be given another priority (None: it can)."""
    if state in REPRIORITISABLE:
        return None
    return f"{key} is {state}: only waiting tasks can be reprioritised"


def latest_refusal(store: Store, record: TaskRecord) -> str | None:
    """Why ``record`` cannot be retried or marked: a later try of its task superseded it.

    Retrying one would run a second try beside the current one; marking one
    would decide downstream tasks by a try that no longer counts.
    """
    latest = store.tries(record)[-1]
    if latest.try_number == record.try_number:
        return None
    return (
        f"{record.key} is not its task's latest try ({latest.key} is {latest.state}): "
        "act on the latest one (the key without #try)"
    )


def _refuse(refusal: str | None) -> None:
    if refusal is not None:
        raise InvalidRequest(refusal)


@dataclass(frozen=True)
class Requested:
    """A request written to the store."""

    request_id: int
    kind: str
    keys: list[str]


# Parallelism beyond this is no limit in practice; 0 says so plainly.
PARALLELISM_MAX = 2**31 - 1


def resolve_all(store: Store, keys: Sequence[str | TaskKey]) -> list[TaskRecord]:
    """Every key resolved to its try, each try once, or UnknownTask for the first that matches nothing.

    Two keys may name one try (``adhoc/a`` twice, or ``adhoc/a`` and its full
    key): the request names it once, so its outcome does too.
    """
    if not keys:
        raise InvalidRequest("name at least one task key (dag/task[/run][#try])")
    records: dict[int, TaskRecord] = {}
    for key in keys:
        record = store.resolve(key)
        records.setdefault(record.id, record)
    return list(records.values())


def check_priority(priority: int, label: str = "priority") -> None:
    """InvalidRequest unless ``priority`` is within the bounds every task's priority has."""
    from console.workflow import PRIORITY_MAX, PRIORITY_MIN

    if isinstance(priority, bool) or not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        raise InvalidRequest(
            f"{label} must be an integer from {PRIORITY_MIN} to {PRIORITY_MAX}, not {priority}"
        )


def _check_latest(store: Store, records: list[TaskRecord]) -> None:
    """InvalidRequest for a try that a later try of its task has superseded (``latest_refusal``)."""
    for record in records:
        _refuse(latest_refusal(store, record))


def _request(store: Store, kind: str, records: list[TaskRecord], **payload: object) -> Requested:
    request_id = store.add_request(kind, {"ids": [r.id for r in records], **payload})
    return Requested(request_id, kind, [str(r.key) for r in records])


def kill(store: Store, keys: Sequence[str | TaskKey]) -> Requested:
    records = resolve_all(store, keys)
    for record in records:
        _refuse(kill_refusal(record.key, record.state))
    return _request(store, "kill", records)


def cancel_run(store: Store, run: str) -> Requested:
    """Ask the engine to stop a whole run: ``dag/run``, or ``dag`` for its newest run."""
    dag_id, _, run_id = run.partition("/")
    if not dag_id or (run_id == "" and run.endswith("/")):
        raise InvalidRequest(f"{run!r} is not a run: give dag/run, or a dag for its newest run")
    found = store.run(dag_id, run_id or None)
    if found is None:
        raise InvalidRequest(
            f"no run {run!r}: see `execconsole runs list`"
            + ("" if run_id else f" (workflow {dag_id!r} has no runs)")
        )
    if found.finished:
        raise InvalidRequest(
            f"run {found.dag_id}/{found.run_id} has finished ({found.state}): nothing to cancel"
        )
    request_id = store.add_request("cancel", {"dag_id": found.dag_id, "run_id": found.run_id})
    return Requested(request_id, "cancel", [f"{found.dag_id}/{found.run_id}"])


def retry(store: Store, keys: Sequence[str | TaskKey], *, downstream: bool = False) -> Requested:
    """Run finished tasks again; a task waiting out its retry delay starts its next try now.

    With ``downstream``, Airflow's "clear with downstream": every task below
    the given ones in their run runs again after them, in dependency order
    (see ``RequestHandler._retry_with_downstream`` for what happens to each).
    """
    records = resolve_all(store, keys)
    for record in records:
        # A try waiting out a retry delay may be retried: as in Airflow, that clears the wait.
        _refuse(retry_refusal(record.key, record.state, retry_delay=bool(record.not_before)))
    _check_latest(store, records)
    if downstream:
        return _request(store, "retry", records, downstream=True)
    return _request(store, "retry", records)


def mark(store: Store, keys: Sequence[str | TaskKey], state: str) -> Requested:
    try:
        wanted = TaskState(state)
    except ValueError:
        wanted = None
    if wanted not in (TaskState.SUCCESS, TaskState.FAILED):
        raise InvalidRequest(f"--state must be success or failed, not {state!r}")
    records = resolve_all(store, keys)
    for record in records:
        _refuse(mark_refusal(record.key, record.state, state))
    _check_latest(store, records)
    return _request(store, "mark", records, state=str(wanted))


def set_priority(store: Store, keys: Sequence[str | TaskKey], priority: int) -> Requested:
    check_priority(priority)
    records = resolve_all(store, keys)
    for record in records:
        _refuse(priority_refusal(record.key, record.state))
    return _request(store, "priority", records, priority=priority)


def pause(store: Store) -> Requested:
    return Requested(store.add_request("pause", {}), "pause", [])


def resume(store: Store) -> Requested:
    return Requested(store.add_request("resume", {}), "resume", [])


def set_parallelism(store: Store, value: int, executor: str | None = None) -> Requested:
    if value < 0:
        raise InvalidRequest(f"parallelism must be 0 (unlimited) or more, not {value}")
    if value > PARALLELISM_MAX:
        raise InvalidRequest(
            f"parallelism must be at most {PARALLELISM_MAX}, not {value}; 0 means no limit"
        )
    return Requested(
        store.add_request("parallelism", {"value": value, "executor": executor}), "parallelism", []
    )


def wait_for(store: Store, request_id: int, timeout: float) -> RequestRecord | None:
    """The request once carried out or rejected; None if still pending after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        request = store.get_request(request_id)
        if request is not None and request.status != "pending":
            return request
        if time.monotonic() >= deadline:
            return request if request and request.status != "pending" else None
        time.sleep(0.05)


_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")


def new_run_id(prefix: str = "manual") -> str:
    """A run id that sorts by time and does not collide: manual__20261121T183000_ab12."""
    stamp = pendulum.now("UTC").format("YYYYMMDD[T]HHmmss")
    return f"{prefix}__{stamp}_{secrets.token_hex(3)}"


def default_task_id(command: Sequence[str]) -> str:
    """A task id from the command's program name, e.g. ``sleep``."""
    program = command[0].rsplit("/", 1)[-1] if command else "task"
    cleaned = _UNSAFE.sub("_", program).strip("_.-") or "task"
    return cleaned[:40]


def submit_command(
    store: Store,
    command: list[str],
    *,
    executor: str,
    configured_executors: Sequence[str],
    dag_id: str = "adhoc",
    task_id: str | None = None,
    priority: int = 1,
    queue: str = "default",
    retries: int = 0,
    retry_delay: float = 0.0,
    timeout: float | None = None,
    shell: bool = False,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
) -> TaskKey:
    """Store one ad-hoc task as its own run; checks everything before writing.

    The bounds on priority, retries, retry_delay and timeout are a workflow
    file's (console/workflow.py). ``cwd``, when given, must be a directory here.
    """
    from console.durations import TIMEOUT_MIN
    from console.workflow import RETRIES_MAX, SECONDS_MAX

    if not command or not all(part for part in command):
        raise InvalidRequest(
            "the command is empty: give it after --, e.g. `execconsole submit -- sleep 1`"
        )
    if executor not in configured_executors:
        raise InvalidRequest(
            f"executor {executor!r} is not configured: choose one of {', '.join(configured_executors)}"
        )
    if task_id is None:
        task_id = default_task_id(command)
    for label, value in (("--dag", dag_id), ("--task", task_id), ("--queue", queue)):
        if not is_valid_id(value):
            raise InvalidRequest(f"{label} {value!r} is not a valid id; use {ID_RULE}")
    check_priority(priority, "--priority")
    if not 0 <= retries <= RETRIES_MAX:
        raise InvalidRequest(f"--retries must be from 0 to {RETRIES_MAX}, not {retries}")
    if not (math.isfinite(retry_delay) and 0 <= retry_delay <= SECONDS_MAX):
        raise InvalidRequest(
            f"--retry-delay must be from 0 to {SECONDS_MAX:.0f} seconds (a year), "
            f"not {retry_delay:g}"
        )
    if timeout is not None and not (math.isfinite(timeout) and 0 < timeout <= SECONDS_MAX):
        raise InvalidRequest(
            f"--timeout must be more than 0 and at most {SECONDS_MAX:.0f} seconds (a year), "
            f"not {timeout:g}; leave it out for no timeout"
        )
    if timeout is not None and timeout < TIMEOUT_MIN:
        raise InvalidRequest(
            f"--timeout must be at least 1ms ({TIMEOUT_MIN:g} seconds), not {timeout:g}; "
            "leave it out for no timeout"
        )
    if cwd is not None:
        if not os.path.exists(cwd):
            raise InvalidRequest(f"--cwd {cwd!r} does not exist: give the directory to run in")
        if not os.path.isdir(cwd):
            raise InvalidRequest(f"--cwd {cwd!r} is not a directory: give the directory to run in")
    submission = TaskSubmission(
        task_id=task_id,
        command=[" ".join(command)] if shell else list(command),
        executor=executor,
        shell=shell,
        env=env or {},
        cwd=cwd,
        priority=priority,
        queue=queue,
        retries=retries,
        retry_delay=retry_delay,
        timeout=timeout,
    )
    (key,) = store.submit(dag_id, new_run_id(), [submission], source="submit")
    return key


def submit_workflow(
    store: Store, spec: object, *, default_executor: str, run_id: str | None = None
) -> tuple[str, list[TaskKey]]:
    """Store every task of a validated workflow as one run; returns (run_id, keys)."""
    from console.workflow import WorkflowSpec, topological_order

    assert isinstance(spec, WorkflowSpec)
    run_id = run_id or new_run_id()
    # The submissions share the spec's lists and tables: a TaskSpec is never
    # changed once parsed and the store only reads them, and copying them took
    # a third of this loop (10,000 tasks: 21 ms -> 13 ms).
    submissions = [
        TaskSubmission(
            task_id=task.id,
            command=task.command,
            executor=task.executor or default_executor,
            shell=task.shell,
            env=task.env,
            cwd=task.cwd,
            priority=task.priority,
            queue=task.queue,
            retries=task.retries,
            retry_delay=task.retry_delay,
            timeout=task.timeout,
            upstream=task.upstream,
        )
        for task in topological_order(spec)
    ]
    keys = store.submit(spec.dag_id, run_id, submissions, source=spec.source)
    return run_id, keys
