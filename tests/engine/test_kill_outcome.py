"""A kill the executor could not carry out is reported as such, and the try is not marked killed."""

from __future__ import annotations

from pathlib import Path

from console import actions
from executors.local import LocalExecutor
from executors.task_key import TaskKey
from tests.engine.conftest import drive
from tests.engine.test_engine import states, submit


class CutOffLocalExecutor(LocalExecutor):
    """A LocalExecutor whose kills cannot get through, as a broker-backed executor's during an outage."""

    def kill(self, key: TaskKey) -> bool:
        return False


def test_a_kill_that_could_not_reach_the_try_is_rejected_and_the_try_ends_as_it_would(
    make_engine, tmp_path: Path
) -> None:
    engine = make_engine(parallelism=2, executor=f"local:{__name__}:CutOffLocalExecutor")
    release = tmp_path / "release"
    submit(
        engine,
        f"""
        id = "wf"
        [[task]]
        id = "nap"
        command = ["sh", "-c", "while [ ! -e {release} ]; do sleep 0.05; done"]
        """,
    )
    drive(engine, lambda: states(engine) == {"nap": "running"})
    requested = actions.kill(engine.store, ["wf/nap"])
    engine.store_tick()
    outcome = engine.store.get_request(requested.request_id)
    assert outcome is not None and outcome.status == "rejected"
    assert "could not kill wf/nap" in (outcome.result or "")
    release.touch()
    drive(engine, lambda: states(engine) == {"nap": "success"})
    (record,) = engine.store.list_tasks(dag_id="wf")
    assert record.reason is None  # not "killed by operator"


def test_a_stored_priority_request_out_of_range_is_rejected_and_the_engine_goes_on(
    make_engine,
) -> None:
    engine = make_engine(parallelism=1)
    engine.paused = True  # keep the task waiting, so it can be reprioritised
    submit(
        engine,
        """
        id = "wf"
        [[task]]
        id = "a"
        command = ["true"]
        """,
    )
    (record,) = engine.store.list_tasks(dag_id="wf")
    # As a request written by an older version, before input was checked.
    request_id = engine.store.add_request("priority", {"ids": [record.id], "priority": 10**25})
    engine.store_tick()
    outcome = engine.store.get_request(request_id)
    assert outcome is not None and outcome.status == "rejected"
    assert "priority must be from" in (outcome.result or "")
    engine.paused = False
    drive(engine, lambda: states(engine) == {"a": "success"})
