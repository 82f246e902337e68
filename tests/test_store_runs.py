"""Runs as a whole (store/runs.py): their state, and removing finished ones."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pendulum

from executors.state import TaskState
from store import Batch, Store, TaskRecord, TaskSubmission
from store.runs import forget_logs

T0 = "2026-11-01T10:00:00Z"
T1 = "2026-11-01T10:05:00Z"
T2 = "2026-11-10T12:00:00Z"


def _submit(store: Store, run_id: str, *task_ids: str, dag: str = "wf") -> None:
    store.submit(
        dag,
        run_id,
        [
            TaskSubmission(task_id=task_id, command=["true"], executor="local")
            for task_id in task_ids
        ],
    )


def _record(store: Store, run_id: str, task_id: str) -> TaskRecord:
    (record,) = [
        r for r in store.list_tasks(run_id=run_id, newest_first=True) if r.task_id == task_id
    ][:1]
    return record


def _end(store: Store, run_id: str, task_id: str, state: TaskState, ended: str = T1) -> None:
    record = _record(store, run_id, task_id)
    batch = Batch()
    batch.transition(record, TaskState.RUNNING, actor="test", start_date=T0)
    store.commit(batch)
    batch = Batch()
    batch.transition(_record(store, run_id, task_id), state, actor="test", end_date=ended)
    store.commit(batch)


def _count(store: Store, sql: str) -> int:
    return int(store.conn.execute(sql).fetchone()[0])


def test_a_run_is_queued_then_running_then_takes_the_state_of_its_latest_tries(
    tmp_path: Path,
) -> None:
    with Store(tmp_path / "store.db") as store:
        _submit(store, "r1", "a", "b")
        (run,) = store.runs()
        assert (run.state, run.tasks, run.tries, run.started_at) == ("queued", 2, 2, None)
        _end(store, "r1", "a", TaskState.FAILED)
        (run,) = store.runs()
        assert run.state == "running"  # b still waits
        assert run.ended_at is None
        _end(store, "r1", "b", TaskState.SUCCESS)
        (run,) = store.runs()
        assert run.state == "failed"
        assert run.ended_at == T1
        # A retry of the failed task: its second try decides, not the first.
        batch = Batch()
        batch.new_try(_record(store, "r1", "a"), actor="test")
        store.commit(batch)
        (run,) = store.runs()
        assert (run.state, run.tasks, run.tries) == ("running", 2, 3)
        _end(store, "r1", "a", TaskState.SUCCESS)
        (run,) = store.runs()
        assert run.state == "success"
        assert run.counts["success"] == 2 and run.counts["failed"] == 0


def test_runs_are_listed_newest_first_and_filtered_by_dag_and_state(tmp_path: Path) -> None:
    with Store(tmp_path / "store.db") as store:
        _submit(store, "r1", "a")
        _submit(store, "r2", "a")
        _submit(store, "r3", "a", dag="other")
        _end(store, "r2", "a", TaskState.SUCCESS)
        assert [run.run_id for run in store.runs()] == ["r3", "r2", "r1"]
        assert [run.run_id for run in store.runs(dag_id="wf")] == ["r2", "r1"]
        assert [run.run_id for run in store.runs(states=["success"])] == ["r2"]
        assert [run.run_id for run in store.runs(states=["queued"], limit=1)] == ["r3"]


def test_only_finished_runs_whose_last_try_ended_before_the_cutoff_are_removable(
    tmp_path: Path,
) -> None:
    with Store(tmp_path / "store.db", clock=lambda: pendulum.datetime(2026, 11, 1, 9)) as store:
        _submit(store, "old_done", "a")
        _submit(store, "old_unfinished", "a", "b")
        _submit(store, "recently_ended", "a")
        _end(store, "old_done", "a", TaskState.SUCCESS, ended=T1)
        _end(store, "old_unfinished", "a", TaskState.SUCCESS, ended=T1)  # b never ran
        _end(store, "recently_ended", "a", TaskState.FAILED, ended=T2)
        cutoff = "2026-11-05T00:00:00Z"
        assert [run.run_id for run in store.finished_runs_before(cutoff)] == ["old_done"]
        assert store.finished_runs_before(cutoff, dag_id="another") == []
        assert [run.run_id for run in store.finished_runs_before("2026-12-01T00:00:00Z")] == [
            "old_done",
            "recently_ended",
        ]


def test_forgetting_a_run_deletes_its_rows_events_and_edges_and_nothing_else(
    tmp_path: Path,
) -> None:
    with Store(tmp_path / "store.db") as store:
        store.submit(
            "wf",
            "gone",
            [
                TaskSubmission(task_id="a", command=["true"], executor="local"),
                TaskSubmission(task_id="b", command=["true"], executor="local", upstream=["a"]),
            ],
        )
        _submit(store, "kept", "a")
        for task_id in ("a", "b"):
            _end(store, "gone", task_id, TaskState.SUCCESS)
        _end(store, "kept", "a", TaskState.SUCCESS)
        kept_events = _count(
            store,
            "SELECT count(*) FROM events WHERE ti_id IN (SELECT id FROM task_instances WHERE run_id = 'kept')",
        )
        batch = Batch()
        batch.forget([("wf", "gone")])
        store.commit(batch)
        assert batch.forgotten == [("wf", "gone")]
        assert [run.run_id for run in store.runs()] == ["kept"]
        assert _count(store, "SELECT count(*) FROM task_instances WHERE run_id = 'gone'") == 0
        assert _count(store, "SELECT count(*) FROM dependencies") == 0
        assert _count(store, "SELECT count(*) FROM events") == kept_events
        assert kept_events == 3  # scheduled, running, success


def test_a_run_retried_after_it_was_chosen_is_not_deleted(tmp_path: Path) -> None:
    with Store(tmp_path / "store.db") as store:
        _submit(store, "r1", "a")
        _end(store, "r1", "a", TaskState.FAILED)
        (chosen,) = store.finished_runs_before("2026-12-01T00:00:00Z")
        retry = Batch()
        retry.new_try(_record(store, "r1", "a"), actor="operator")
        store.commit(retry)
        batch = Batch()
        batch.forget([(chosen.dag_id, chosen.run_id)])
        store.commit(batch)
        assert batch.forgotten == []
        assert _count(store, "SELECT count(*) FROM task_instances") == 2


def test_requests_carried_out_before_the_cutoff_are_forgotten_pending_ones_kept(
    tmp_path: Path,
) -> None:
    with Store(tmp_path / "store.db") as store:
        done = store.add_request("pause", {})
        pending = store.add_request("resume", {})
        finish = Batch()
        finish.finish_request(done, "done", "dispatch paused")
        store.commit(finish)
        batch = Batch()
        batch.forget([], requests_before="2999-01-01T00:00:00Z")
        store.commit(batch)
        ids = [row[0] for row in store.conn.execute("SELECT id FROM requests")]
        assert ids == [pending]


def test_forget_logs_removes_the_run_folder_and_an_emptied_dag_folder_only(
    tmp_path: Path,
) -> None:
    logs = tmp_path / "logs"
    (logs / "wf" / "r1").mkdir(parents=True)
    (logs / "wf" / "r1" / "a.1.log").write_text("out\n")
    (logs / "wf" / "r2").mkdir()
    (logs / "solo" / "r9").mkdir(parents=True)
    forget_logs(logs, [("wf", "r1"), ("solo", "r9"), ("..", "r2")])
    assert sorted(p.relative_to(logs).as_posix() for p in logs.rglob("*")) == ["wf", "wf/r2"]


def test_the_store_file_stays_consistent_after_forgetting(tmp_path: Path) -> None:
    with Store(tmp_path / "store.db") as store:
        _submit(store, "r1", "a", "b")
        for task_id in ("a", "b"):
            _end(store, "r1", task_id, TaskState.SUCCESS)
        batch = Batch()
        batch.forget([("wf", "r1")])
        store.commit(batch)
    conn = sqlite3.connect(tmp_path / "store.db")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        orphans = conn.execute(
            "SELECT count(*) FROM events WHERE ti_id NOT IN (SELECT id FROM task_instances)"
        ).fetchone()
        assert orphans == (0,)
    finally:
        conn.close()
