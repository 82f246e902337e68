"""Workloads and reports cross process boundaries: pickled to LocalExecutor workers, JSON to Celery."""

from __future__ import annotations

import pickle

from executors.local_worker import (
    Dispatch,
    Finished,
    Refused,
    Retire,
    Started,
    decode_order,
    decode_result,
    encode,
)
from executors.task_key import TaskKey
from executors.workload import TaskReport, Workload


def a_workload() -> Workload:
    return Workload(
        key=TaskKey("d", "t", "r1", 3, 2),
        command=["sh", "-c", "echo hi"],
        log_path="/tmp/logs/d/r1/t.3.2.log",
        token="0" * 32,
        env={"A": "1"},
        cwd="/tmp",
        timeout=2.5,
        shell=False,
        priority=7,
        queue="fast",
    )


def test_a_workload_survives_pickling_and_json_unchanged() -> None:
    workload = a_workload()
    assert pickle.loads(pickle.dumps(workload, protocol=pickle.HIGHEST_PROTOCOL)) == workload
    assert Workload.from_json(workload.to_json()) == workload


def test_a_report_survives_pickling_and_json_unchanged() -> None:
    report = TaskReport(
        pid=42,
        pid_create_time=1.5,
        hostname="h",
        worker="local:9",
        started_at="2026-11-21T10:00:00Z",
        ended_at="2026-11-21T10:00:01Z",
        exit_code=None,
        signal=9,
        reason="killed by SIGKILL — possibly out of memory",
    )
    assert pickle.loads(pickle.dumps(report, protocol=pickle.HIGHEST_PROTOCOL)) == report
    assert TaskReport.from_json(report.to_json()) == report


def test_every_queue_message_crosses_the_wire_unchanged() -> None:
    """LocalExecutor messages travel as tuples of builtins and come back as the same objects."""
    workload = a_workload()
    report = TaskReport(pid=5, pid_create_time=1.5, hostname="h", worker="w", exit_code=0)
    messages = [
        Dispatch(1, workload),
        Retire(2),
        Started(3, 99, report),
        Finished(4, 99, report),
        Refused(5, 99, "revoked"),
    ]
    for message in messages[:2]:
        assert decode_order(encode(message)) == message
    for message in messages[2:]:
        decoded = decode_result(encode(message))
        assert type(decoded) is type(message) and decoded == message
    assert isinstance(decode_order(encode(messages[0])).workload.key, TaskKey)
