"""Unfinished tries by executor: the engine's check for tries nobody here can run."""

from __future__ import annotations

from pathlib import Path

from executors.state import TaskState
from store import Batch, Store, TaskSubmission


def _submit(store: Store, run_id: str, executors: list[str]) -> None:
    store.submit(
        "wf",
        run_id,
        [
            TaskSubmission(task_id=f"t{index}", command=["true"], executor=executor)
            for index, executor in enumerate(executors)
        ],
    )


def _group_by(store: Store) -> dict[str, int]:
    rows = store.conn.execute(
        "SELECT executor, count(*) FROM task_instances "
        "WHERE state IN ('scheduled', 'queued', 'running') GROUP BY executor"
    )
    return dict(rows.fetchall())


def test_counts_match_a_plain_group_by_across_states_and_leave_out_the_executors_besides(
    tmp_path: Path,
) -> None:
    with Store(tmp_path / "s.db") as store:
        _submit(store, "r1", ["local"] * 5 + ["celery"] * 3 + ["zeta"] * 2 + ["alpha"])
        # Move some tries on: queued, running, finished (which no longer count).
        records = {r.task_id: r for r in store.list_tasks(run_id="r1")}
        batch = Batch()
        batch.transition(records["t0"], TaskState.QUEUED, actor="test")
        batch.transition(records["t5"], TaskState.RUNNING, actor="test")
        batch.transition(records["t6"], TaskState.SUCCESS, actor="test")
        batch.transition(records["t10"], TaskState.FAILED, actor="test")
        store.commit(batch)

        assert store.unfinished_by_executor() == _group_by(store)
        assert store.unfinished_by_executor() == {"local": 5, "celery": 2, "zeta": 2}
        assert store.unfinished_by_executor(besides={"local"}) == {"celery": 2, "zeta": 2}
        assert store.unfinished_by_executor(besides=["local", "celery", "zeta"]) == {}
        assert store.has_unfinished(["zeta"]) and store.has_unfinished(["nobody", "celery"])
        assert not store.has_unfinished(["alpha"])  # its only try failed
        assert not store.has_unfinished([])


def test_an_empty_store_has_nothing_unfinished(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        assert store.unfinished_by_executor() == {}
