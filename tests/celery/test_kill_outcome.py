"""A kill the celery executor cannot carry out (Redis is down) is rejected, and says why.

The engine rejects a kill request when its executor's ``kill`` returns False,
pointing the operator to the engine's notes; the celery executor puts the
reason there (which Redis, what failed). The try is not marked killed: once
Redis is back it ends as it would have. Real engine and store, real Redis
(stopped and started again) and a real worker.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from console import actions
from tests.celery.conftest import TEST_SETTINGS, Cluster
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


def test_a_kill_during_a_redis_outage_is_rejected_with_the_reason_and_the_try_ends_as_it_would(
    private_cluster: Cluster,
    engines: Engines,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cluster = private_cluster
    # Longer than the worker's reconnect after the outage, so the running try's
    # lease is renewed before the executor could call its worker lost.
    monkeypatch.setitem(TEST_SETTINGS, "lease_seconds", 5.0)
    cluster.start_worker("steady", "default", concurrency=1)
    trace = tmp_path / "trace"
    release = tmp_path / "release"
    engine = engines.build(cluster)
    submit(
        engine,
        f"""
        id = "wf"
        [[task]]
        id = "nap"
        shell = true
        command = "{trace_command(trace, hold_until(release))}"
        """,
    )
    store = engine.store
    drive(engine, lambda: store.count_by_state(dag_id="wf")["running"] == 1, "the try to run")

    cluster.redis.stop(keep_data=True)
    drive(
        engine,
        lambda: engine.gauges()["executor.celery.broker_ok"] == 0,
        "the executor to notice that Redis is gone",
    )
    requested = actions.kill(store, ["wf/nap"])

    def answered() -> bool:
        found = store.get_request(requested.request_id)
        return found is not None and found.status != "pending"

    drive(engine, answered, "the engine to answer the kill request")
    outcome = store.get_request(requested.request_id)
    assert outcome is not None and outcome.status == "rejected", outcome
    assert "could not kill wf/nap" in (outcome.result or "")
    # What the rejection points to: the engine's notes say which Redis and what failed.
    (note,) = [m for m in engine.messages if "could not kill wf/nap" in m and "Redis" in m]
    assert f"Redis at {cluster.redis.url} unreachable while killing a try" in note, note

    cluster.redis.start()
    release.touch()
    drive(engine, idle(engine), "the try to end once Redis is back", timeout=120)
    ((state, reason),) = rows(engines.home, "SELECT state, reason FROM task_instances")
    assert (state, reason) == ("success", None)  # not "killed by operator"
    assert trace_lines(trace) == ["nap 1"]
