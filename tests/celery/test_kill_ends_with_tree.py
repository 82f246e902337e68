"""A killed Celery try is reported ended only once its whole process tree is gone.

Celery records a terminated task as REVOKED the moment it signals the pool
process, while the worker is still stopping the try's tree (SIGTERM, then
SIGKILL after a grace period). Taken as the try's end, that let the engine
start the next try (a retry with --downstream, a clear) beside the one still
dying. These tries ignore SIGTERM, so their trees outlive the first signal by
the whole grace period: the end must be reported after it, by the worker.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

import psutil
import pytest

from console import actions
from executors.state import TaskState
from tests.celery.conftest import Cluster, Driver, wait_for
from tests.celery.test_engine_celery import (
    Engines,
    drive,
    idle,
    rows,
    submit,
    trace_lines,
    tries_by_task,
)
from tests.helpers import processes_with_env_marker

pytestmark = pytest.mark.celery


def _stubborn(ticks: Path, tag: str) -> str:
    """A shell loop that ignores SIGTERM (its children too) and writes a tick every 0.1 s."""
    return f'trap "" TERM; while true; do echo "{tag}" >> {ticks}; sleep 0.1; done'


def test_a_killed_try_is_reported_failed_only_once_its_tree_is_gone(cluster: Cluster) -> None:
    executor = cluster.executor()
    ticks = cluster.root / f"ticks-{uuid.uuid4().hex[:8]}"
    workload = cluster.workload(_stubborn(ticks, "tick"))
    # This try's own marker (the cluster's, extended): finds its processes and only them.
    marker = f"{cluster.marker}-{uuid.uuid4().hex}"
    workload.env["EXECCONSOLE_TEST_MARKER"] = marker
    driver = Driver(executor)
    executor.queue_workload(workload)
    driver.until_started(workload.key)
    driver.until(lambda: len(trace_lines(ticks)) >= 2, "the try to tick")
    try:
        assert executor.kill(workload.key)
        driver.until_finished(workload.key)
        # At the moment the end is reported, nothing of the try may run any more.
        still = processes_with_env_marker(marker)
        assert still == [], [p.info for p in still]
        assert driver.state(workload.key) is TaskState.FAILED
        report = driver.report(workload.key)
        assert (report.reason or "").startswith("killed on request"), report.reason
        # The worker's own report: how the tree ended, not Celery's "revoked".
        assert "revoked" not in (report.reason or ""), report.reason
        assert report.signal is not None, report
    finally:
        for process in processes_with_env_marker(marker):
            with contextlib.suppress(psutil.Error):
                process.kill()


def test_retry_with_downstream_starts_the_new_try_after_the_killed_one_has_ended(
    cluster: Cluster, engines: Engines, tmp_path: Path
) -> None:
    trace = tmp_path / "trace"
    engine = engines.build(cluster)
    # B's first try ticks until killed (and ignores SIGTERM); later tries just say they started.
    b_command = (
        f'if [ $EXECCONSOLE_TRY_NUMBER -ge 2 ]; then echo "B $EXECCONSOLE_TRY_NUMBER start" '
        f">> {trace}; exit 0; fi; " + _stubborn(trace, "B $EXECCONSOLE_TRY_NUMBER tick")
    ).replace('"', '\\"')
    submit(
        engine,
        f"""
        id = "wf"
        [[task]]
        id = "A"
        shell = true
        command = "true"
        [[task]]
        id = "B"
        upstream = ["A"]
        shell = true
        command = "{b_command}"
        """,
    )
    store = engine.store
    drive(engine, lambda: len(trace_lines(trace)) >= 2, "B's first try to tick")

    actions.retry(store, ["wf/A"], downstream=True)
    drive(engine, idle(engine), "the retried run to finish")

    found = tries_by_task(engines.home, "wf")
    assert [t["state"] for t in found["A"]] == ["success", "success"], found["A"]
    first, second = found["B"]
    assert first["state"] in ("failed", "up_for_retry"), first
    assert second["state"] == "success", second
    assert rows(
        engines.home,
        "SELECT count(*) FROM task_instances WHERE state IN ('scheduled','queued','running')",
    ) == [(0,)]
    # Whatever the engine was told, read the trace only once B's first tree is
    # really gone: lines it wrote late are what this test looks for.
    group = first["pid"]
    wait_for(lambda: not _group_alive(group), "B's first try's process group to be gone")
    ran = trace_lines(trace)
    assert ran.count("B 2 start") == 1, ran
    first_try = [n for n, line in enumerate(ran) if line == "B 1 tick"]
    # Every line of the killed try was written before the new try started.
    assert first_try and max(first_try) < ran.index("B 2 start"), ran


def _group_alive(pgid: int) -> bool:
    """Whether any live process of process group ``pgid`` is left (zombies do not count)."""
    for process in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.Error):
            continue
    return False
