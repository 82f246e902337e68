"""LocalExecutor prefetch and quiet starts: the two ways it keeps up with very short tries.

Prefetch: while recent tries are short, one more try per worker waits in the
activity queue, so a worker that finishes one starts the next without waiting
for the engine. Quiet start: a try that ends within a few milliseconds is
reported once, when it ends, with no RUNNING event before it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pendulum
import pytest

from executors import local as local_module
from executors.adoption import read_claim
from executors.claims import ClaimBook
from executors.local import LocalExecutor
from executors.state import TaskState
from tests.executors.conftest import Driver, MakeLocal, held, is_gone, make_workload, wait_for


def warm_up_with_short_tries(executor: LocalExecutor, driver: Driver, tmp_path: Path) -> None:
    """Run enough instant tries that the executor knows its tries are short."""
    items = [make_workload(tmp_path, ["true"], run=f"warm{index}") for index in range(20)]
    for item in items:
        executor.queue_workload(item)
    driver.until_finished(*(item.key for item in items))


def test_short_tries_get_one_more_waiting_per_worker(make_local: MakeLocal, tmp_path: Path) -> None:
    executor = make_local(2)
    driver = Driver(executor)
    warm_up_with_short_tries(executor, driver, tmp_path)
    # Right after the burst its rate asks for deeper prefetch; once that has
    # aged out of the rate window, one try per worker still waits.
    driver.until(lambda: executor.prefetch_depth() == 2, "the warm-up burst to age out")

    command, release = held(tmp_path)
    blockers = [make_workload(tmp_path, command, run=f"block{index}") for index in range(2)]
    waiting = [make_workload(tmp_path, ["true"], run=f"wait{index}") for index in range(5)]
    for item in [*blockers, *waiting]:
        executor.queue_workload(item)
    driver.until_started(*(item.key for item in blockers))
    driver.until(lambda: len(executor.running) == 4, "two tries to be prefetched")

    # Two run, two wait at the workers (handed out, not started), one stays queued.
    assert set(executor.prefetched()) == {waiting[0].key, waiting[1].key}
    assert list(executor.queued_tasks) == [item.key for item in waiting[2:]]
    gauges = executor.gauges()
    assert gauges["executor.local.running_tasks"] == 2
    assert gauges["executor.local.queued_tasks"] == 5  # waiting: prefetched ones included
    assert executor.open_slots() == 0

    release.touch()
    driver.until_finished(*(item.key for item in [*blockers, *waiting]))
    assert all(driver.state(item.key) is TaskState.SUCCESS for item in [*blockers, *waiting])


def test_long_tries_are_not_prefetched(make_local: MakeLocal, tmp_path: Path) -> None:
    executor = make_local(1)
    driver = Driver(executor)
    slow = make_workload(tmp_path, ["sleep", "0.8"], run="slow")
    executor.queue_workload(slow)
    driver.until_finished(slow.key)
    assert executor.prefetch_depth() == 0

    command, release = held(tmp_path)
    running = make_workload(tmp_path, command, run="running")
    queued = make_workload(tmp_path, ["true"], run="queued")
    executor.queue_workload(running)
    executor.queue_workload(queued)
    driver.until_started(running.key)
    for _ in range(5):
        driver.beat()
    assert executor.prefetched() == [] and list(executor.queued_tasks) == [queued.key]
    release.touch()
    driver.until_finished(running.key, queued.key)


def test_prefetch_can_be_turned_off(make_local: MakeLocal, tmp_path: Path) -> None:
    executor = make_local(2, prefetch="false")
    driver = Driver(executor)
    warm_up_with_short_tries(executor, driver, tmp_path)
    assert executor.prefetch_depth() == 0


def test_fast_tries_wait_deeper_and_reports_are_read_in_batches(
    make_local: MakeLocal, tmp_path: Path
) -> None:
    """Tries ending faster than the engine could read them one by one: more wait
    at each worker, and each read of the result queue takes several reports."""
    executor = make_local(2)
    # A long linger makes "fast" mean a few dozen tries a second, which any
    # machine reaches with `true`; the default (4 ms) needs hundreds.
    executor.RESULT_LINGER_SECONDS = 0.05
    driver = Driver(executor)
    warm_up_with_short_tries(executor, driver, tmp_path)
    items = [make_workload(tmp_path, ["true"], run=f"fast{index}") for index in range(200)]
    for item in items:
        executor.queue_workload(item)

    depths: list[int] = []
    reads: list[int] = []
    done = len(driver.final)
    while not all(item.key in driver.final for item in items):
        depths.append(executor.prefetch_depth())
        driver.beat()
        reads.append(len(driver.final) - done)
        done = len(driver.final)
        executor.wait_for_events(0.05)

    assert all(driver.state(item.key) is TaskState.SUCCESS for item in items)
    assert max(depths) > executor.parallelism  # more than one waiting per worker
    assert max(depths) <= executor.parallelism * executor.MAX_PREFETCH_PER_WORKER
    beats_with_reports = [count for count in reads if count]
    assert len(beats_with_reports) < len(items) / 2  # several reports per read, not one


def test_the_report_rate_is_measured_from_the_first_report_not_over_the_whole_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """10 ms into a burst of 1,000 reports a second the rate must read about that.

    Averaged over the whole 0.25 s window it read 40 a second: the engine then
    lingered over reports for milliseconds while the workers had run dry, at
    the start of every burst of work.
    """
    clock = [1000.0]
    monkeypatch.setattr(local_module, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    executor = LocalExecutor(2)
    assert executor.report_rate() == 0.0
    executor._note_reports(2)
    assert executor.report_rate() == 0.0  # one read: no interval to measure yet
    for _ in range(5):
        clock[0] += 0.002
        executor._note_reports(2)
    assert executor.report_rate() == pytest.approx(1000.0)
    clock[0] += executor.RATE_WINDOW_SECONDS + 0.001
    assert executor.report_rate() == 0.0  # the burst has aged out


def test_a_lone_try_is_not_held_back_by_the_batching(make_local: MakeLocal, tmp_path: Path) -> None:
    """Reports linger only while every worker has a try waiting: the last ones, or a
    lone one, are read as soon as they come."""
    executor = make_local(2)
    executor.RESULT_LINGER_SECONDS = 30.0  # a linger would show as a 30 s wait
    driver = Driver(executor)
    warm_up_with_short_tries(executor, driver, tmp_path)
    lone = make_workload(tmp_path, ["true"], run="lone")
    executor.queue_workload(lone)
    driver.beat()
    began = time.monotonic()
    assert executor.wait_for_events(20.0)
    # Woken by the report: a linger would have slept 20 s (the bound is generous).
    assert time.monotonic() - began < 10.0
    driver.beat()
    assert driver.state(lone.key) is TaskState.SUCCESS


def test_a_prefetched_try_taken_back_never_runs(make_local: MakeLocal, tmp_path: Path) -> None:
    executor = make_local(1)
    driver = Driver(executor)
    warm_up_with_short_tries(executor, driver, tmp_path)
    command, release = held(tmp_path)
    blocker = make_workload(tmp_path, command, run="blocker")
    marker = tmp_path / "ran"
    taken_back = make_workload(tmp_path, f"touch {marker}", run="taken-back")
    executor.queue_workload(blocker)
    executor.queue_workload(taken_back)
    driver.until_started(blocker.key)
    driver.until(lambda: executor.prefetched() == [taken_back.key], "the try to be prefetched")

    assert executor.dequeue(taken_back.key)
    assert not executor.has_task(taken_back.key)
    release.touch()
    driver.until_finished(blocker.key)
    # The worker reads the message after the blocker and refuses it: it never runs,
    # and no event is reported for it (the engine already took it back).
    driver.until(lambda: executor.unread_messages == 0, "the worker to read the message")
    for _ in range(5):
        driver.beat()
    assert not marker.exists()
    assert taken_back.key not in driver.final
    claim = ClaimBook(Path(executor.home) / "claims").read(taken_back.token)
    assert claim is not None and claim["state"] == "revoked"


def test_a_quick_try_is_reported_once_and_a_slow_one_twice(
    make_local: MakeLocal, tmp_path: Path
) -> None:
    executor = make_local(2)
    driver = Driver(executor)
    quick = make_workload(tmp_path, ["true"], run="quick")
    slow = make_workload(tmp_path, ["sleep", "0.3"], run="slow")
    executor.queue_workload(quick)
    executor.queue_workload(slow)
    driver.until_finished(quick.key, slow.key)

    states = {key: [state for k, state, _ in driver.history if k == key] for key in driver.final}
    assert states[quick.key] == [TaskState.SUCCESS]
    assert states[slow.key] == [TaskState.RUNNING, TaskState.SUCCESS]
    quick_report = driver.final[quick.key][1]
    assert quick_report is not None and quick_report.pid and quick_report.started_at
    slow_started = driver.started[slow.key]
    assert slow_started is not None and slow_started.pid_create_time is not None


def test_a_worker_killed_during_a_quiet_start_still_has_its_try_killed_and_failed(
    make_local: MakeLocal, tmp_path: Path
) -> None:
    # A quiet start long enough to kill the worker inside it: the engine never
    # hears Started, and only the claim (pid, no create time) names the process.
    executor = make_local(1, quiet_start=60)
    driver = Driver(executor)
    item = make_workload(tmp_path, ["sleep", "300"], task="quiet")
    executor.queue_workload(item)
    claims = ClaimBook(Path(executor.home or "") / "claims")

    def claimed_pid() -> int | None:
        record = claims.read(item.token) or {}
        return record.get("pid") if record.get("state") == "started" else None

    driver.until(lambda: claimed_pid() is not None, "the claim to name the task's pid")
    assert item.key not in driver.started  # still within its quiet start
    task_pid = claimed_pid()
    assert task_pid is not None
    [worker_pid] = [info.pid for info in executor.worker_processes() if info.alive]
    os.kill(worker_pid, signal.SIGKILL)

    driver.until_finished(item.key)
    assert driver.state(item.key) is TaskState.FAILED
    assert f"worker {worker_pid} died" in (driver.reason(item.key) or "")
    wait_for(lambda: is_gone(task_pid), "the task process to be killed")


def test_a_claim_with_only_a_pid_names_that_process_and_no_other(tmp_path: Path) -> None:
    claims = ClaimBook(tmp_path / "claims")
    process = subprocess.Popen(["sleep", "30"])
    try:
        now = pendulum.now("UTC").to_iso8601_string()
        claims.claim("fresh", worker="local:1", worker_pid=os.getpid())
        claims.record_started("fresh", pid=process.pid, started_at=now)
        record = read_claim(claims, "fresh")
        assert record is not None
        assert record["pid_create_time"] is not None and record["pid_create_time"] > 0

        # The same pid, but the try started an hour before this process existed:
        # the pid was reused, so the record must not name this process.
        long_ago = pendulum.now("UTC").subtract(hours=1).to_iso8601_string()
        claims.claim("stale", worker="local:1", worker_pid=os.getpid())
        claims.record_started("stale", pid=process.pid, started_at=long_ago)
        stale = read_claim(claims, "stale")
        assert stale is not None and stale["pid_create_time"] == -1.0
    finally:
        process.kill()
        process.wait()


def test_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'prefetch' must be true or false"):
        LocalExecutor(2, home=str(tmp_path), options={"prefetch": "sometimes"})
    with pytest.raises(ValueError, match="'quiet_start' must be between 0 and 60"):
        LocalExecutor(2, home=str(tmp_path), options={"quiet_start": -1})
