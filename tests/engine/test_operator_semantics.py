"""Retry and mark as an Airflow user expects them, across fan-ins: the real LocalExecutor and store.

An upstream counts by its latest try. A task comes back from upstream_failed
only when none of its upstreams has failed, a superseded try never runs again,
and one try of a task runs at a time whatever the operator presses.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from console import actions
from executors.state import TaskState
from store import InvalidRequest
from tests.engine.conftest import drive, idle
from tests.engine.test_engine import states, submit


def diamond(trace: Path, *, b: str = "false", c: str = "false") -> str:
    """a -> (b, c) -> d -> e; every task appends its id to ``trace`` when it runs."""
    return f"""
        id = "wf"
        [[task]]
        id = "a"
        command = ["sh", "-c", "echo a >> {trace}"]
        [[task]]
        id = "b"
        upstream = ["a"]
        command = ["sh", "-c", "echo b >> {trace}; {b}"]
        [[task]]
        id = "c"
        upstream = ["a"]
        command = ["sh", "-c", "echo c >> {trace}; {c}"]
        [[task]]
        id = "d"
        upstream = ["b", "c"]
        command = ["sh", "-c", "echo d >> {trace}"]
        [[task]]
        id = "e"
        upstream = ["d"]
        command = ["sh", "-c", "echo e >> {trace}"]
        """


def runs_of(trace: Path, task: str) -> int:
    return trace.read_text().split().count(task) if trace.exists() else 0


def test_a_fan_in_stays_upstream_failed_while_another_of_its_upstreams_has_failed(
    make_engine, tmp_path: Path
) -> None:
    engine = make_engine()
    trace = tmp_path / "trace"
    submit(engine, diamond(trace))
    drive(engine, idle(engine))
    assert states(engine) == {
        "a": "success",
        "b": "failed",
        "c": "failed",
        "d": "upstream_failed",
        "e": "upstream_failed",
    }

    actions.mark(engine.store, ["wf/b"], "success")
    # c has still failed: d and e can never run, and the run must end, not wait for good.
    drive(engine, lambda: engine.store.pending_requests() == [] and idle(engine)(), timeout=30)
    assert states(engine)["d"] == "upstream_failed"
    assert states(engine)["e"] == "upstream_failed"
    assert engine.store.resolve("wf/d").reason == "upstream c failed"

    actions.mark(engine.store, ["wf/c"], "success")
    drive(engine, lambda: states(engine)["e"] == "success")
    assert runs_of(trace, "d") == 1 and runs_of(trace, "e") == 1


def test_retrying_a_task_whose_upstream_failed_gives_a_try_that_is_upstream_failed_at_once(
    make_engine, tmp_path: Path
) -> None:
    engine = make_engine()
    trace = tmp_path / "trace"
    submit(engine, diamond(trace, c="true"))
    drive(engine, idle(engine))
    assert states(engine)["d"] == "upstream_failed"

    actions.retry(engine.store, ["wf/d"])
    drive(engine, lambda: engine.store.pending_requests() == [] and idle(engine)(), timeout=30)
    retried = engine.store.resolve("wf/d")
    assert (retried.try_number, retried.state, retried.reason) == (
        2,
        TaskState.UPSTREAM_FAILED,
        "upstream b failed",
    )
    assert states(engine)["e"] == "upstream_failed"
    history = [
        (event.from_state, event.to_state)
        for event in reversed(engine.store.events(ti_id=retried.id))
    ]
    assert history == [(None, "scheduled"), ("scheduled", "upstream_failed")]

    # Once b succeeds, the latest try of d runs, and only that one: the
    # superseded d#1 (upstream_failed too) must not come back beside it.
    actions.mark(engine.store, ["wf/b"], "success")
    drive(engine, lambda: states(engine)["e"] == "success")
    assert runs_of(trace, "d") == 1
    assert [(t.try_number, str(t.state)) for t in engine.store.tries(retried)] == [
        (1, "upstream_failed"),
        (2, "success"),
    ]


def test_retrying_a_succeeded_upstream_makes_a_waiting_fan_in_wait_for_the_new_try(
    make_engine, tmp_path: Path
) -> None:
    engine = make_engine()
    trace = tmp_path / "trace"
    gate = tmp_path / "gate"
    submit(
        engine,
        f"""
        id = "wf"
        [[task]]
        id = "b"
        command = ["true"]
        [[task]]
        id = "c"
        command = ["sh", "-c", "while [ ! -e {gate} ]; do sleep 0.05; done"]
        [[task]]
        id = "d"
        upstream = ["b", "c"]
        command = ["sh", "-c", "echo d >> {trace}"]
        """,
    )
    drive(engine, lambda: states(engine) == {"b": "success", "c": "running", "d": "scheduled"})

    actions.retry(engine.store, ["wf/b"])
    drive(
        engine,
        lambda: engine.store.resolve("wf/b").try_number == 2 and states(engine)["b"] == "success",
    )
    # b has succeeded twice, yet d still waits for c (which runs until the gate opens).
    waiting = engine.store.resolve("wf/d")
    assert (waiting.state, waiting.pending_upstreams) == (TaskState.SCHEDULED, 1)
    assert runs_of(trace, "d") == 0

    gate.touch()
    drive(engine, idle(engine))
    assert states(engine) == {"b": "success", "c": "success", "d": "success"}
    assert runs_of(trace, "d") == 1


def test_two_retries_of_one_try_in_one_tick_start_one_new_try(make_engine) -> None:
    engine = make_engine()
    submit(
        engine,
        """
        id = "wf"
        [[task]]
        id = "f"
        command = ["sh", "-c", "test $EXECCONSOLE_TRY_NUMBER -ge 2"]
        """,
    )
    drive(engine, idle(engine))
    # Both checked against the store before the engine saw either (a key pressed twice).
    first = actions.retry(engine.store, ["wf/f"])
    second = actions.retry(engine.store, ["wf/f"])
    drive(engine, lambda: engine.store.pending_requests() == [] and idle(engine)())
    tries = engine.store.tries(engine.store.resolve("wf/f"))
    assert [(t.try_number, str(t.state)) for t in tries] == [(1, "failed"), (2, "success")]
    assert engine.store.get_request(first.request_id).status == "done"  # type: ignore[union-attr]
    assert engine.store.get_request(second.request_id).status == "done"  # type: ignore[union-attr]


def test_a_superseded_try_can_be_neither_retried_nor_marked(make_engine) -> None:
    engine = make_engine()
    run_id = submit(
        engine,
        """
        id = "wf"
        [[task]]
        id = "f"
        command = ["sh", "-c", "test $EXECCONSOLE_TRY_NUMBER -ge 2"]
        """,
    )
    drive(engine, idle(engine))
    actions.retry(engine.store, ["wf/f"])
    drive(engine, lambda: engine.store.pending_requests() == [] and idle(engine)())
    old = f"wf/f/{run_id}#1"
    with pytest.raises(InvalidRequest, match="not its task's latest try"):
        actions.retry(engine.store, [old])
    with pytest.raises(InvalidRequest, match="not its task's latest try"):
        actions.mark(engine.store, [old], "success")

    # A request stored without that check (an older client) is refused by the engine too.
    first_try = engine.store.resolve(old)
    request_id = engine.store.add_request("retry", {"ids": [first_try.id]})
    drive(engine, lambda: engine.store.pending_requests() == [])
    outcome = engine.store.get_request(request_id)
    assert outcome is not None and outcome.status == "rejected"
    assert "not its task's latest try" in (outcome.result or "")
    assert [t.try_number for t in engine.store.tries(first_try)] == [1, 2]
