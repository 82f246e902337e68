"""Store.commit: what a tick's commit reports back to the engine."""

from __future__ import annotations

from pathlib import Path

from executors.state import TaskState
from store import Batch, Store, TaskSubmission


def _succeed(store: Store, task_id: str) -> Batch:
    (record,) = [r for r in store.list_tasks(dag_id="wf") if r.task_id == task_id]
    batch = Batch()
    batch.transition(record, TaskState.SUCCESS, actor="test")
    store.commit(batch)
    return batch


def test_a_commit_counts_the_tries_it_made_ready_not_every_upstream_it_released(
    tmp_path: Path,
) -> None:
    with Store(tmp_path / "store.db") as store:
        store.submit(
            "wf",
            "r1",
            [
                TaskSubmission(task_id="a", command=["true"], executor="local"),
                TaskSubmission(task_id="b", command=["true"], executor="local"),
                # c waits for both; d for a alone
                TaskSubmission(
                    task_id="c", command=["true"], executor="local", upstream=["a", "b"]
                ),
                TaskSubmission(task_id="d", command=["true"], executor="local", upstream=["a"]),
            ],
        )
        assert _succeed(store, "a").made_ready == 1  # d; c still waits for b
        assert [r.task_id for r in store.ready("local", 10)] == ["b", "d"]
        assert _succeed(store, "b").made_ready == 1  # c
        assert _succeed(store, "d").made_ready == 0  # nothing waits for d
        assert sorted(r.task_id for r in store.ready("local", 10)) == ["c"]
