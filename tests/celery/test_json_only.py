"""Only JSON crosses Redis: a pickled message is refused and never runs."""

from __future__ import annotations

import uuid

import pytest

from executors.celery.app import TASK_NAME, make_app
from executors.celery.settings import CelerySettings
from executors.celery.task_meta import read_meta
from executors.state import TaskState
from tests.celery.conftest import Cluster, lines, wait_for

pytestmark = pytest.mark.celery


def test_a_pickled_task_message_is_refused_by_the_worker(cluster: Cluster) -> None:
    runs = cluster.root / f"pickle-{uuid.uuid4().hex[:6]}.txt"
    workload = cluster.workload(f"echo ran >> {runs}", queue="beta")
    app = make_app(CelerySettings.load(cluster.options), role="client")
    try:
        app.send_task(
            TASK_NAME,
            args=[workload.to_json()],
            task_id=workload.token,
            queue="beta",
            serializer="pickle",
        )
    finally:
        app.close()
    beta = next(w for w in cluster.workers if w.nodename == "beta@test")

    wait_for(
        lambda: "pickle" in beta.log() and "untrusted" in beta.log(), "the worker to refuse it"
    )
    client = cluster.redis.client()
    assert client.llen("beta") == 0
    assert client.get(f"celery-task-meta-{workload.token}") is None
    assert client.get(f"execconsole:claim:{workload.token}") is None
    assert lines(runs) == []


def test_a_result_that_is_not_json_reads_as_a_failure_never_as_data() -> None:
    import pickle

    reading = read_meta(pickle.dumps({"status": "SUCCESS", "result": {"exit_code": 0}}))
    assert reading.state is TaskState.FAILED
    assert reading.report is not None and "unreadable" in (reading.report.reason or "")


def test_the_app_accepts_json_alone_in_both_directions(cluster: Cluster) -> None:
    app = make_app(CelerySettings.load(cluster.options), role="client")
    assert app.conf.accept_content == ["json"]
    assert app.conf.result_accept_content == ["json"]
    assert app.conf.task_serializer == app.conf.result_serializer == "json"
