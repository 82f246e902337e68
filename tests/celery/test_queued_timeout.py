"""A Celery try stuck in queued follows [core] queued_timeout and queued_retry_limit.

As on every executor, a try queued past ``queued_timeout`` is taken back and
handed out again, at most ``queued_retry_limit`` times, then failed as stuck.
On Celery "taken back" means its claim is revoked while it waits in Redis, so
the worker that eventually reads the old message drops it: the try runs once,
from its newest message, or not at all. Real engine and store (built through
the product's config), real Redis and workers.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kombu.transport.redis import PRIORITY_STEPS, Channel

from tests.celery.conftest import DEADLINE, Cluster
from tests.celery.test_engine_celery import (
    Engines,
    drive,
    hold_until,
    idle,
    rows,
    submit,
    trace_command,
    trace_lines,
)

pytestmark = pytest.mark.celery


def queued_settings(monkeypatch: pytest.MonkeyPatch, timeout: float, limit: int) -> None:
    """Set the engine's [core] options the way an operator does, through the environment."""
    monkeypatch.setenv("EXECCONSOLE__CORE__QUEUED_TIMEOUT", str(timeout))
    monkeypatch.setenv("EXECCONSOLE__CORE__QUEUED_RETRY_LIMIT", str(limit))


def reasons(home: Path, task: str) -> list[tuple[str, str, str | None]]:
    """Every state change of ``task``'s tries, in order: (from, to, reason)."""
    return [
        (str(from_state), str(to_state), reason)
        for from_state, to_state, reason in rows(
            home,
            "SELECT e.from_state, e.to_state, e.reason FROM events e "
            "JOIN task_instances t ON t.id = e.ti_id WHERE t.task_id = ? ORDER BY e.id",
            (task,),
        )
    ]


def waiting_in(cluster: Cluster, queue: str) -> int:
    client = cluster.redis.client()
    try:
        return sum(
            int(client.llen(queue if step == 0 else f"{queue}{Channel.sep}{step}"))
            for step in PRIORITY_STEPS
        )
    finally:
        client.close()


def test_a_try_nobody_takes_is_handed_out_queued_retry_limit_times_then_failed_and_never_runs(
    private_cluster: Cluster, engines: Engines, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = private_cluster
    queued_settings(monkeypatch, timeout=0.5, limit=2)
    trace = tmp_path / "trace"
    engine = engines.build(cluster)
    assert (engine.queued_timeout, engine.queued_retry_limit) == (0.5, 2)
    submit(
        engine,
        f"""
        id = "stuck"
        [[task]]
        id = "orphan"
        queue = "nobody"
        retries = 3
        shell = true
        command = "{trace_command(trace)}"
        """,
    )
    drive(engine, idle(engine), "the stuck try to be given up")

    ((try_number, state, requeues, reason),) = rows(
        engines.home,
        "SELECT try_number, state, requeues, reason FROM task_instances WHERE task_id = 'orphan'",
    )
    # The limit, not the task's retries, decides: the same try, handed out three times.
    assert (try_number, state, requeues) == (1, "failed", 2)
    # No worker answers: every reason says what the engine did, and why the try waited.
    why = "queue 'nobody' has no consumer (no Celery worker answered)"
    assert reason == f"stuck in queued: handed out 3 times and never started, giving up; {why}"
    assert reasons(engines.home, "orphan") == [
        ("None", "scheduled", None),
        ("scheduled", "queued", None),
        ("queued", "scheduled", f"queued for over 0.5s; handed out again (1 of 2); {why}"),
        ("scheduled", "queued", None),
        ("queued", "scheduled", f"queued for over 0.5s; handed out again (2 of 2); {why}"),
        ("scheduled", "queued", None),
        ("queued", "failed", reason),
    ]
    # One message per hand-out, each revoked and then removed from the queue:
    # nothing waits there for a worker (nor counts as waiting in `celery inspect`).
    drive(engine, lambda: waiting_in(cluster, "nobody") == 0, "the revoked messages to go")

    # A worker for the queue shows up at last: a try sent after the stuck one
    # runs, and the stuck one never does.
    cluster.start_worker("late", "nobody", concurrency=1)
    submit(
        engine,
        f"""
        id = "later"
        [[task]]
        id = "sentinel"
        queue = "nobody"
        shell = true
        command = "{trace_command(trace)}"
        """,
    )
    drive(engine, idle(engine), "the try sent after the stuck one to run")
    assert trace_lines(trace) == ["sentinel 1"]


def test_a_try_taken_back_from_a_busy_queue_runs_once_when_the_pool_frees_up(
    cluster: Cluster, engines: Engines, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Generous: only the waiting try should time out, never the blockers on their way to start.
    queued_settings(monkeypatch, timeout=1.0, limit=5)
    trace = tmp_path / "trace"
    gate = tmp_path / "gate"
    engine = engines.build(cluster, parallelism=0)
    blockers = ["block1", "block2"]
    submit(
        engine,
        'id = "busy"\n'
        + "".join(
            f"""
            [[task]]
            id = "{task}"
            queue = "alpha"
            priority = 9
            shell = true
            command = "{trace_command(trace, hold_until(gate))}"
            """
            for task in blockers
        )
        + f"""
        [[task]]
        id = "waiter"
        queue = "alpha"
        shell = true
        command = "{trace_command(trace)}"
        """,
    )

    def waiter_requeued() -> bool:
        found = rows(engines.home, "SELECT requeues FROM task_instances WHERE task_id = 'waiter'")
        return bool(found) and found[0][0] >= 1

    # alpha has two pool processes, both held by the blockers: the waiter sits in Redis.
    drive(engine, waiter_requeued, "the waiting try to be taken back", timeout=DEADLINE)
    gate.touch()
    drive(engine, idle(engine), "every try to finish")

    states = dict(rows(engines.home, "SELECT task_id, state FROM task_instances"))
    assert states == {"block1": "success", "block2": "success", "waiter": "success"}
    # Handed out more than once, run once: the revoked messages were dropped.
    assert sorted(trace_lines(trace)) == ["block1 1", "block2 1", "waiter 1"]
