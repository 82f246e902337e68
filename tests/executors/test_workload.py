"""Workloads and reports cross process boundaries: pickled to LocalExecutor workers, JSON to Celery."""

from __future__ import annotations

import pickle

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
