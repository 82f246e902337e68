"""The snapshot builder: what the panels show, read cheaply from the store and psutil."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

import pendulum
import psutil
import pytest

from console import actions
from console.engine import Engine
from console.engine_status import EngineStatus
from console.process_probe import ProcessProbe
from console.snapshot import FINISHING_SECONDS, SnapshotBuilder
from executors.base import BaseExecutor, WorkerInfo
from executors.state import TaskState
from executors.task_key import TaskKey
from executors.workload import Workload
from store import Batch, Store, TaskSubmission

REPO = Path(__file__).resolve().parents[2]
NOW = pendulum.datetime(2026, 11, 21, 12, 0, 0, tz="UTC")


class ListedWorkers(BaseExecutor):
    """An executor whose worker list the test sets (it never runs anything)."""

    name: ClassVar[str] = "listed"

    def __init__(self) -> None:
        super().__init__(2)
        self.workers: list[WorkerInfo] = []

    def execute_async(self, key: TaskKey, workload: Workload) -> None:
        raise AssertionError("never runs tasks")

    def worker_processes(self) -> list[WorkerInfo]:
        return list(self.workers)


@pytest.fixture
def store(home: Path) -> Iterator[Store]:
    home.mkdir(parents=True, exist_ok=True)
    with Store(home / "execconsole.db", clock=lambda: NOW) as opened:
        yield opened


def builder_for(store: Store, **options: object) -> SnapshotBuilder:
    executor = ListedWorkers()
    return SnapshotBuilder(store.path, executors={"listed": executor}, clock=lambda: NOW, **options)  # type: ignore[arg-type]


def test_ten_thousand_waiting_tasks_cost_one_window_of_rows(store: Store) -> None:
    store.submit(
        "bulk",
        "run1",
        [
            TaskSubmission(task_id=f"t{n:05d}", command=["true"], executor="listed")
            for n in range(10_000)
        ],
    )
    builder = builder_for(store)
    snapshot = builder.build()
    assert snapshot.queue_depth == 10_000
    assert len(snapshot.queued) == 60  # a LIMIT, never the whole queue
    assert [row.key.task_id for row in snapshot.queued[:2]] == ["t00000", "t00001"]
    assert len(snapshot.events) == 100  # the live window of the audit log
    builder.close()


def test_the_filter_is_applied_by_sqlite_to_the_whole_queue(store: Store) -> None:
    store.submit(
        "bulk",
        "run1",
        [
            TaskSubmission(task_id=f"t{n:05d}", command=["true"], executor="listed")
            for n in range(2_000)
        ],
    )
    builder = builder_for(store)
    builder.set_filter(r"T0(1999|0007)/")  # case-insensitive, like k9s
    snapshot = builder.build()
    assert sorted(row.key.task_id for row in snapshot.queued) == ["t00007", "t01999"]
    assert snapshot.filter == r"T0(1999|0007)/"
    builder.close()


def test_events_are_read_incrementally_and_history_is_paged(store: Store) -> None:
    for n in range(250):
        actions.submit_command(
            store, ["true"], executor="listed", configured_executors=["listed"], task_id=f"e{n:03d}"
        )
    builder = builder_for(store)
    first = builder.build()
    assert [e.key.task_id for e in first.events[:2]] == ["e249", "e248"]
    actions.submit_command(
        store, ["true"], executor="listed", configured_executors=["listed"], task_id="newest"
    )
    second = builder.build()
    assert second.events[0].key.task_id == "newest"
    assert len(second.events) == 100
    older = builder.older_events(before_id=second.events[-1].id, limit=100)
    assert [e.key.task_id for e in (older[0], older[-1])] == ["e150", "e051"]  # newest first
    rest = builder.older_events(before_id=older[-1].id, limit=100)
    assert [e.key.task_id for e in rest[-1:]] == ["e000"] and len(rest) == 51  # the end of history
    builder.close()


def test_a_quiet_store_is_not_read_again_but_what_depends_on_the_clock_moves_on(
    store: Store,
) -> None:
    store.submit("d", "r", [TaskSubmission(task_id="first", command=["true"], executor="listed")])
    moments = [NOW.add(seconds=10)]
    builder = SnapshotBuilder(
        store.path, executors={"listed": ListedWorkers()}, clock=lambda: moments[-1]
    )
    before = builder.build()
    reads = builder.store_reads
    moments.append(NOW.add(seconds=40))
    later = builder.build()
    assert builder.store_reads == reads  # nothing was written in between: no query ran
    assert later.queued[0].waiting == before.queued[0].waiting + 30
    store.submit("d", "r2", [TaskSubmission(task_id="second", command=["true"], executor="listed")])
    after = builder.build()
    assert builder.store_reads == reads + 1  # another connection committed: read again
    assert [row.key.task_id for row in after.queued] == ["first", "second"]
    assert after.header.counts["scheduled"] == 2
    builder.close()


def _finish(
    store: Store,
    task_id: str,
    committed: pendulum.DateTime,
    *,
    ended: pendulum.DateTime | None = None,
    state: TaskState = TaskState.SUCCESS,
) -> None:
    """Queued, running and ended in one commit at ``committed``: a LocalExecutor's quiet start
    (a try shorter than a tick is reported once, at its end)."""
    record = store.resolve(f"d/{task_id}/r")
    ended_at = (ended or committed).to_iso8601_string()
    store.clock = lambda: committed
    batch = Batch()
    batch.transition(record, TaskState.QUEUED, actor="engine", queued_at=ended_at)
    queued = replace(record, state=TaskState.QUEUED)
    batch.transition(queued, TaskState.RUNNING, actor="executor:listed", start_date=ended_at)
    running = replace(queued, state=TaskState.RUNNING)
    batch.transition(running, state, actor="executor:listed", end_date=ended_at, exit_code=0)
    store.commit(batch)


def test_throughput_counts_each_finished_try_once_however_late_it_was_written(
    store: Store,
) -> None:
    store.submit(
        "d",
        "r",
        [TaskSubmission(task_id=f"t{n}", command=["true"], executor="listed") for n in range(8)],
    )
    _finish(store, "t0", NOW.subtract(seconds=200))
    _finish(store, "t1", NOW.subtract(seconds=100))
    _finish(store, "t2", NOW.subtract(seconds=400))  # before the five-minute window
    builder = builder_for(store)
    first = builder.build().header
    assert round(sum(first.throughput) * 10) == 2  # per-second rates of 10-second buckets
    assert first.finishing == 0  # none ended in the last few seconds
    _finish(store, "t3", NOW.subtract(seconds=3))
    _finish(store, "t4", NOW.subtract(seconds=2), state=TaskState.FAILED)
    # Ended a minute ago, written only now: counted once, when it was written.
    _finish(store, "t5", NOW.subtract(seconds=1), ended=NOW.subtract(seconds=60))
    note = Batch()
    note.note(store.resolve("d/t3/r"), "executor:listed", "a note changes no state")
    store.commit(note)
    header = builder.build().header
    assert round(sum(header.throughput) * 10) == 5
    assert header.counts["running"] == 0  # every try was reported at its end
    assert header.finishing == pytest.approx(3 / FINISHING_SECONDS)
    (listed,) = header.executors
    assert listed.finishing == pytest.approx(3 / FINISHING_SECONDS)
    again = builder.build().header
    assert round(sum(again.throughput) * 10) == 5  # nothing new: nothing counted twice
    builder.close()


def test_a_worker_that_disappears_stays_visible_as_dead_for_a_while(store: Store) -> None:
    moments = [NOW]
    executor = ListedWorkers()
    engine = Engine(store, {"listed": executor}, logs_dir=store.path.parent / "logs")
    # The engine's status as its process reports it, through JSON as over the pipe.
    builder = SnapshotBuilder(
        store.path,
        executors={"listed": executor},
        engine_status=lambda: EngineStatus.from_json(
            json.loads(json.dumps(EngineStatus.from_engine(engine).to_json()))
        ),
        clock=lambda: moments[-1],
    )
    worker = subprocess.Popen(["sleep", "60"])
    try:
        executor.workers = [
            WorkerInfo(pid=worker.pid, title="worker:idle", busy_with=None, tasks_done=3)
        ]
        (alive,) = builder.build().workers
        assert alive.alive and alive.tasks_done == 3 and alive.rss is not None
        executor.workers = []
        (listed_no_more,) = builder.build().workers
        assert listed_no_more.alive  # off the list, but its process lives: not called dead
        worker.kill()
        worker.wait()
        moments.append(NOW.add(seconds=5))
        (dead,) = builder.build().workers
        assert not dead.alive and dead.exit_reason == "exited"
        moments.append(NOW.add(seconds=16))
        assert builder.build().workers == ()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        builder.close()


def test_workers_of_a_stopped_engine_that_live_on_are_not_called_dead(store: Store) -> None:
    # The console's engine was killed: no status any more, but its workers
    # still finish the tries in hand (the next engine adopts them).
    executor = ListedWorkers()
    engine = Engine(store, {"listed": executor}, logs_dir=store.path.parent / "logs")
    reported = [True]
    builder = SnapshotBuilder(
        store.path,
        executors={"listed": executor},
        engine_status=lambda: EngineStatus.from_engine(engine) if reported[-1] else None,
        clock=lambda: NOW,
    )
    executor.workers = [
        WorkerInfo(pid=os.getpid(), title="worker:busy", busy_with=None, tasks_done=1)
    ]
    (alive,) = builder.build().workers
    reported.append(False)
    (still,) = builder.build().workers
    assert still.alive and still.pid == alive.pid and still.exit_reason is None
    builder.close()


def test_the_probe_measures_a_whole_process_tree_and_keeps_its_cpu_counters() -> None:
    tree = subprocess.Popen(
        ["sh", "-c", "yes > /dev/null & yes > /dev/null & wait"], start_new_session=True
    )
    try:
        leader = psutil.Process(tree.pid)
        probe = ProcessProbe()
        deadline = time.monotonic() + 30

        def reading() -> tuple[int, float]:
            probe.begin()
            usage = probe.measure_tree(tree.pid, leader.create_time())
            probe.end()
            assert usage is not None
            return usage.processes, usage.cpu_percent

        processes, cpu = reading()
        while (processes, cpu > 0) != (3, True):  # the first reading of a process is always 0
            assert time.monotonic() < deadline, f"still {processes} processes, {cpu}% CPU"
            time.sleep(0.2)
            processes, cpu = reading()
        assert probe.measure(tree.pid, leader.create_time() + 100) is None  # a reused pid is not it
    finally:
        os.killpg(tree.pid, signal.SIGKILL)
        tree.wait()


def test_headless_modules_never_import_textual() -> None:
    code = (
        "import sys\n"
        "import console.snapshot, console.tui, console.tui.operator, console.tui.log_source\n"
        "import console.tui.formatting, console.tui.engine_process\n"
        "assert 'textual' not in sys.modules, sorted(m for m in sys.modules if m.startswith('textual'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_the_engines_newest_note_carries_when_it_was_first_seen(store: Store) -> None:
    # "dispatch resumed" stays on the header until the next note: stamped, it
    # does not read as the engine's state an hour later.
    moments = [NOW]
    executor = ListedWorkers()
    engine = Engine(store, {"listed": executor}, logs_dir=store.path.parent / "logs")
    builder = SnapshotBuilder(
        store.path,
        executors={"listed": executor},
        engine_status=lambda: EngineStatus.from_engine(engine),
        clock=lambda: moments[-1],
    )
    assert builder.build().header.last_message_at is None
    engine.note("dispatch resumed")
    moments.append(NOW.add(seconds=5))
    first = builder.build().header
    moments.append(NOW.add(minutes=60))
    later = builder.build().header
    assert first.last_message == later.last_message == "dispatch resumed"
    assert first.last_message_at == later.last_message_at == NOW.add(seconds=5).to_iso8601_string()
    engine.note("parallelism of listed set to 3")
    assert builder.build().header.last_message_at == NOW.add(minutes=60).to_iso8601_string()
    builder.close()
