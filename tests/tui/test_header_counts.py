"""The header's figures: each word one meaning, and the state counts add up to the tasks.

A 30-task run as the demo leaves it after an operator's retry with downstream
of the task that timed out: 28 tasks succeeded (two of them on a second try),
``hangs`` failed twice and ``publish``, below it, was upstream_failed twice.
Per try that read "28 succeeded · 2 failed · 2 retried · 2 upstream failed"
(32 tasks of 30, and 4 that did not succeed where 2 did not).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from console.engine_status import EngineStatus, ExecutorStatus
from console.snapshot import SnapshotBuilder
from console.tui.factory import make_app
from console.tui.scenes import StaticEngine
from executors.local import LocalExecutor
from executors.state import TaskState
from store import Batch
from store.runs import LatestTryCounts, delete_finished_runs
from tests.tui.seeded import NOW, RUN, Seeded, run_app, seeded

WIDE = (160, 40)
PLAIN = [f"step_{n:02d}" for n in range(26)]


def retried_run(home: Path) -> Seeded:
    s = seeded(home)
    s.submit([*PLAIN, "flaky", "rates", "hangs", ("publish", ["hangs"])], retries=1)
    for n, task in enumerate(PLAIN):
        s.run_through(s.current(task), "local:101", 50 - n, 50 - n)
    for task in ("flaky", "rates"):  # an engine retry each: try 1 up_for_retry, try 2 succeeds
        s.finish(s.start(s.current(task), "local:102", 20), TaskState.UP_FOR_RETRY, 19)
        s.run_through(s.current(task), "local:102", 18, 17)
    hangs = s.start(s.current("hangs"), "local:101", 16)
    s.finish(hangs, TaskState.FAILED, 15, reason="timed out after 1s")  # publish#1 upstream_failed
    # The operator's retry with downstream: a new try of each, hangs first.
    s.retry(s.current("hangs"), 10)
    s.retry(s.current("publish"), 10)
    hangs = s.start(s.current("hangs"), "local:101", 9)
    s.finish(hangs, TaskState.FAILED, 8, reason="timed out after 1s")  # publish#2 upstream_failed
    return s


def test_the_state_counts_count_each_tasks_latest_try_and_add_up_to_the_tasks(
    tmp_path: Path,
) -> None:
    s = retried_run(tmp_path / "home")
    assert s.store.count_by_state()["failed"] == 2  # per try, as before
    builder = SnapshotBuilder(
        s.runtime.config.store_path, executors={"local": LocalExecutor(2)}, clock=lambda: NOW
    )
    try:
        counts = dict(builder.build().header.counts)
    finally:
        builder.close()
    retried = counts.pop("up_for_retry")
    assert counts == {
        "scheduled": 0,
        "queued": 0,
        "running": 0,
        "success": 28,
        "failed": 1,
        "upstream_failed": 1,
    }
    assert sum(counts.values()) == 30  # the run's tasks
    assert retried == 4  # two engine retries, two tries an operator's retry superseded


def test_the_header_says_one_failed_task_where_one_task_failed(tmp_path: Path) -> None:
    app = retried_run(tmp_path / "home").app()

    async def scenario(pilot: Any) -> None:
        line = str(app.dashboard.header.counts_line.render())
        assert "28 success · 1 failed · 4 up_for_retry (retried) · 1 upstream_failed" in line, line

    run_app(app, WIDE, scenario)


def test_the_executor_line_and_the_counts_line_give_one_figure_for_running_and_handed_out(
    tmp_path: Path,
) -> None:
    s = seeded(tmp_path / "home")
    s.submit([f"t{n}" for n in range(10)])
    for n in range(2):
        s.start(s.current(f"t{n}"), f"local:{101 + n}", 5)
    for n in range(2, 6):
        s.hand_out(s.current(f"t{n}"), 4)
    # The engine's own view, a moment apart: one try it counts as running is
    # still handed out in the store, and one more sits in its backlog.
    status = EngineStatus(
        pid=4242,
        paused=False,
        draining=False,
        in_flight=6,
        executors={"local": ExecutorStatus(parallelism=2, running=1, backlog=5, open_slots=0)},
        workers={},
    )
    app = make_app(s.runtime, engine=StaticEngine(status), clock=lambda: NOW, polling=False)

    async def scenario(pilot: Any) -> None:
        header = app.dashboard.header
        executors = str(header.executors_line.render())
        counts = str(header.counts_line.render())
        assert "4 queued · 2 running" in counts, counts
        assert "· 2 running" in executors and "· 4 queued" in executors, executors
        assert "parallelism 2 · 0 open" in executors, executors  # slots: the executor's

    run_app(app, WIDE, scenario)


def test_latest_try_counts_stay_right_when_runs_are_removed_and_old_tries_marked(
    tmp_path: Path,
) -> None:
    s = retried_run(tmp_path / "home")
    s.submit(["again"], run="second")
    s.run_through(s.current("again", run="second"), "local:101", 5, 4, TaskState.FAILED)
    s.retry(s.current("again", run="second"), 3)
    conn = s.store.conn
    kept = LatestTryCounts()

    def fresh() -> dict[str, int]:
        return LatestTryCounts().count(conn, s.store.count_by_state())

    assert kept.count(conn, s.store.count_by_state()) == fresh()
    assert fresh()["scheduled"] == 1 and fresh()["failed"] == 1
    # An operator marks the superseded try of "again" (its latest still waits).
    first = s.store.resolve("demo/again/second#1")
    batch = Batch()
    batch.transition(first, TaskState.SUCCESS, actor="operator", reason="marked")
    s.commit(2, batch)
    assert kept.count(conn, s.store.count_by_state()) == fresh()
    # runs clean removes the first run (tries below the last one read): counted again.
    with conn:
        delete_finished_runs(conn, [("demo", RUN)])
    counts = kept.count(conn, s.store.count_by_state())
    assert counts == fresh()
    assert sum(v for k, v in counts.items() if k != "up_for_retry") == 1
