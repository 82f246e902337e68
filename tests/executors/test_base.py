"""BaseExecutor's own behaviour, through a tiny executor that only records what it was asked."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from executors.base import BaseExecutor
from executors.retry_attempt import RunningRetryAttempt
from executors.state import TaskState
from executors.task_key import TaskKey
from executors.workload import TaskReport, Workload
from tests.executors.conftest import make_workload


class RecordingExecutor(BaseExecutor):
    """Starts nothing: remembers the keys it was asked to start, in order."""

    name = "recording"

    def __init__(self, parallelism: int = 2, **kwargs: Any) -> None:
        super().__init__(parallelism, **kwargs)
        self.started: list[TaskKey] = []

    def execute_async(self, key: TaskKey, workload: Workload) -> None:
        self.started.append(key)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Sink:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, request: Any) -> None:
        self.sent.append(request)


def workload(tmp_path: Path, run: str, priority: int = 1, dag: str = "d") -> Workload:
    return make_workload(tmp_path, ["true"], run=run, priority=priority, dag=dag)


def test_higher_priority_starts_first_and_equals_start_in_queue_order(tmp_path: Path) -> None:
    executor = RecordingExecutor(parallelism=0)
    for run, priority in [("a", 1), ("b", 5), ("c", 1), ("d", 5), ("e", 3)]:
        executor.queue_workload(workload(tmp_path, run, priority))
    executor.heartbeat()
    assert [key.run_id for key in executor.started] == ["b", "d", "e", "a", "c"]


def test_only_open_slots_are_triggered(tmp_path: Path) -> None:
    executor = RecordingExecutor(parallelism=3)
    for index in range(5):
        executor.queue_workload(workload(tmp_path, f"r{index}"))
    assert executor.heartbeat() == 3
    assert len(executor.started) == 3
    assert len(executor.queued_tasks) == 2
    assert executor.running == set(executor.started)
    executor.heartbeat()  # no slot has opened
    assert len(executor.started) == 3
    executor.success(executor.started[0])
    executor.heartbeat()
    assert len(executor.started) == 4


def test_fewer_queued_than_slots_triggers_only_what_is_queued(tmp_path: Path) -> None:
    executor = RecordingExecutor(parallelism=10)
    executor.queue_workload(workload(tmp_path, "only"))
    executor.heartbeat()
    assert len(executor.started) == 1
    assert executor.open_slots() == 9


def test_parallelism_zero_means_unlimited(tmp_path: Path) -> None:
    executor = RecordingExecutor(parallelism=0)
    for index in range(250):
        executor.queue_workload(workload(tmp_path, f"r{index}"))
    executor.heartbeat()
    assert len(executor.started) == 250
    assert not executor.queued_tasks


def test_negative_parallelism_is_refused() -> None:
    with pytest.raises(ValueError, match="parallelism"):
        RecordingExecutor(parallelism=-1)


def test_a_key_already_queued_is_refused(tmp_path: Path) -> None:
    executor = RecordingExecutor()
    first = workload(tmp_path, "r1")
    assert executor.queue_workload(first)
    assert not executor.queue_workload(workload(tmp_path, "r1"))
    assert executor.queued_tasks[first.key].workload is first


def test_event_buffer_filters_by_dag_and_is_flushed(tmp_path: Path) -> None:
    executor = RecordingExecutor()
    keep, other = TaskKey("keep", "t", "r"), TaskKey("other", "t", "r")
    executor.success(keep)
    executor.fail(other, TaskReport(reason="exited with code 1"))
    assert executor.get_event_buffer(dag_ids=["keep"]) == {keep: (TaskState.SUCCESS, None)}
    assert executor.get_event_buffer(dag_ids=["keep"]) == {}
    remaining = executor.get_event_buffer()
    assert list(remaining) == [other]
    report = remaining[other][1]
    assert report is not None and report.reason == "exited with code 1"
    assert executor.get_event_buffer() == {}


def test_running_state_keeps_the_key_running_while_success_and_fail_remove_it(
    tmp_path: Path,
) -> None:
    executor = RecordingExecutor()
    for run in ("a", "b"):
        executor.queue_workload(workload(tmp_path, run))
    executor.heartbeat()
    a, b = executor.started
    executor.running_state(a, TaskReport(pid=123))
    assert a in executor.running
    assert executor.event_buffer[a][0] is TaskState.RUNNING
    executor.success(a)
    executor.fail(b)
    assert executor.running == set()
    assert executor.event_buffer[a][0] is TaskState.SUCCESS
    assert executor.event_buffer[b][0] is TaskState.FAILED


def test_a_key_queued_while_still_running_waits_then_is_dropped(tmp_path: Path) -> None:
    executor = RecordingExecutor(parallelism=5)
    executor.queue_workload(workload(tmp_path, "r1"))
    executor.heartbeat()
    key = executor.started[0]
    clock = FakeClock()
    executor.attempts[key] = RunningRetryAttempt(clock=clock)
    executor.queue_workload(workload(tmp_path, "r1"))

    # Within the window the key stays queued and is looked at on each heartbeat.
    for _ in range(3):
        executor.heartbeat()
        assert key in executor.queued_tasks
    clock.now += RunningRetryAttempt.MIN_SECONDS + 1
    executor.heartbeat()  # the one look allowed after the window
    assert key in executor.queued_tasks
    assert executor.get_task_event_logs() == []

    executor.heartbeat()
    assert key not in executor.queued_tasks
    assert executor.started == [key]  # never started twice
    [(logged_key, message)] = executor.get_task_event_logs()
    assert logged_key == key
    assert "queued again while still running" in message


def test_a_key_that_stopped_running_in_time_is_started_again(tmp_path: Path) -> None:
    executor = RecordingExecutor(parallelism=5)
    executor.queue_workload(workload(tmp_path, "r1"))
    executor.heartbeat()
    key = executor.started[0]
    executor.queue_workload(workload(tmp_path, "r1"))
    executor.heartbeat()
    assert key in executor.queued_tasks
    executor.success(key)
    executor.heartbeat()
    assert executor.started == [key, key]
    assert key not in executor.attempts


def test_send_callback_without_a_sink_raises_a_clear_error() -> None:
    executor = RecordingExecutor(name="mine")
    with pytest.raises(ValueError, match="'mine' has no callback sink"):
        executor.send_callback({"kind": "finished"})
    sink = Sink()
    executor.callback_sink = sink
    executor.send_callback({"kind": "finished"})
    assert sink.sent == [{"kind": "finished"}]


def test_slots_available_and_occupied_count_queued_and_running(tmp_path: Path) -> None:
    executor = RecordingExecutor(parallelism=4)
    for index in range(3):
        executor.queue_workload(workload(tmp_path, f"r{index}"))
    assert executor.slots_available == 1
    assert executor.slots_occupied == 3
    executor.parallelism = 2  # lowered under the keys already queued
    executor.heartbeat()
    assert executor.slots_occupied == 3
    assert executor.slots_available == -1


def test_base_executor_refuses_live_scaling_and_kill() -> None:
    executor = RecordingExecutor()
    with pytest.raises(NotImplementedError):
        executor.set_parallelism(4)
    with pytest.raises(ValueError):
        executor.set_parallelism(-1)
    with pytest.raises(NotImplementedError, match="supports_kill"):
        executor.kill(TaskKey("d", "t", "r"))


def test_change_priority_reorders_the_queue(tmp_path: Path) -> None:
    executor = RecordingExecutor(parallelism=1)
    for run in ("a", "b", "c"):
        executor.queue_workload(workload(tmp_path, run))
    assert executor.change_priority(TaskKey("d", "t", "c"), 10)
    assert not executor.change_priority(TaskKey("d", "t", "missing"), 10)
    executor.heartbeat()
    assert [key.run_id for key in executor.started] == ["c"]
    assert [key.run_id for key, _ in executor.order_queued_tasks_by_priority()] == ["a", "b"]


def test_dequeued_keys_never_start(tmp_path: Path) -> None:
    executor = RecordingExecutor(parallelism=0)
    for run in ("a", "b"):
        executor.queue_workload(workload(tmp_path, run))
    assert executor.dequeue(TaskKey("d", "t", "a"))
    assert not executor.dequeue(TaskKey("d", "t", "a"))
    executor.heartbeat()
    assert [key.run_id for key in executor.started] == ["b"]


def test_gauges_are_named_per_executor(tmp_path: Path) -> None:
    first = RecordingExecutor(parallelism=2, name="fast")
    second = RecordingExecutor(parallelism=0, name="slow")
    first.queue_workload(workload(tmp_path, "a"))
    first.queue_workload(workload(tmp_path, "b"))
    first.queue_workload(workload(tmp_path, "c"))
    first.heartbeat()
    assert first.gauges() == {
        "executor.fast.open_slots": 0,
        "executor.fast.queued_tasks": 1,
        "executor.fast.running_tasks": 2,
    }
    assert second.gauges()["executor.slow.open_slots"] == -1  # unlimited


def test_capabilities_are_read_as_data() -> None:
    capabilities = RecordingExecutor.capabilities()
    assert set(capabilities) == set(BaseExecutor.CAPABILITY_NAMES)
    assert capabilities["supports_kill"] is False


class PipeExecutor(BaseExecutor):
    """An executor whose news arrives on a pipe, as a remote executor's might."""

    def __init__(self) -> None:
        super().__init__(1)
        self.read_end, self.write_end = os.pipe()

    def wait_handles(self) -> list[Any]:
        return [self.read_end]


def test_the_default_wait_for_events_wakes_on_a_wait_handle_and_times_out_without() -> None:
    executor = PipeExecutor()
    try:
        assert executor.wait_for_events(0.05) is False
        os.write(executor.write_end, b"x")
        assert executor.wait_for_events(5.0) is True
    finally:
        os.close(executor.read_end)
        os.close(executor.write_end)
