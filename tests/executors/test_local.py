"""LocalExecutor with real worker processes and real task processes."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from multiprocessing.connection import wait as wait_for_handles
from pathlib import Path

import psutil
import pytest

from executors.base import AdoptionOutcome, AdoptionRecord
from executors.claims import ClaimBook
from executors.local import LocalExecutor, _unread_bytes
from executors.process_context import prepare_process_context
from executors.state import TaskState
from executors.task_key import TaskKey
from tests.executors.conftest import (
    DEADLINE,
    Driver,
    MakeLocal,
    PidReaper,
    held,
    is_gone,
    live_descendants,
    make_workload,
    wait_for,
)


def busy_worker_of(executor: LocalExecutor, key: TaskKey) -> int:
    [pid] = [info.pid for info in executor.worker_processes() if info.busy_with == key]
    return pid


def alive_workers(executor: LocalExecutor) -> list[int]:
    return [info.pid for info in executor.worker_processes() if info.alive]


def test_declares_what_it_can_do() -> None:
    capabilities = LocalExecutor.capabilities()
    assert capabilities["is_local"] and capabilities["serve_logs"]
    assert capabilities["supports_kill"] and capabilities["supports_live_scaling"]
    assert capabilities["supports_adoption"] and capabilities["is_production"]
    assert not capabilities["is_single_threaded"]
    assert LocalExecutor.name == "local"
    [panel] = LocalExecutor.console_panels()
    assert (panel.id, panel.title, panel.target) == (
        "workers",
        "Workers",
        "executors.local_panel:WorkersPanel",
    )


def test_prepare_process_context_is_idempotent() -> None:
    assert prepare_process_context() is prepare_process_context()


def test_tries_succeed_or_fail_with_the_supervisors_reasons(
    make_local: MakeLocal, tmp_path: Path
) -> None:
    executor = make_local(2)
    driver = Driver(executor)
    cases: dict[str, list[str] | str] = {
        "ok": ["true"],
        "code": "exit 3",
        "sigkill": ["sh", "-c", "kill -9 $$"],
        "missing": ["/no/such/program"],
        "slow": ["sleep", "300"],
    }
    workloads = {
        name: make_workload(tmp_path, command, task=name, timeout=0.5 if name == "slow" else None)
        for name, command in cases.items()
    }
    for item in workloads.values():
        executor.queue_workload(item)
    keys = {name: item.key for name, item in workloads.items()}
    driver.until_finished(*keys.values())

    assert driver.state(keys["ok"]) is TaskState.SUCCESS
    assert driver.reason(keys["ok"]) is None
    assert driver.state(keys["code"]) is TaskState.FAILED
    assert driver.reason(keys["code"]) == "exited with code 3"
    assert driver.reason(keys["sigkill"]) == "killed by SIGKILL — possibly out of memory"
    assert "could not start '/no/such/program'" in (driver.reason(keys["missing"]) or "")
    assert driver.reason(keys["slow"]) == "timed out after 0.5s"
    assert executor.running == set()


def test_running_event_carries_where_the_try_runs(make_local: MakeLocal, tmp_path: Path) -> None:
    executor = make_local(1)
    driver = Driver(executor)
    command, release = held(tmp_path)
    item = make_workload(tmp_path, command)
    executor.queue_workload(item)
    driver.until_started(item.key)
    report = driver.started[item.key]
    assert report is not None and report.pid is not None
    assert report.pid_create_time is not None and report.started_at is not None
    worker_pid = busy_worker_of(executor, item.key)
    assert report.worker == f"local:{worker_pid}"
    assert psutil.Process(report.pid).ppid() == worker_pid
    assert item.key in executor.running
    release.touch()
    driver.until_finished(item.key)
    assert driver.state(item.key) is TaskState.SUCCESS
    assert executor.running == set()


def test_log_file_receives_the_tasks_output(make_local: MakeLocal, tmp_path: Path) -> None:
    executor = make_local(2)
    driver = Driver(executor)
    item = make_workload(tmp_path, "echo to stdout; echo to stderr >&2", env={"X": "1"})
    executor.queue_workload(item)
    driver.until_finished(item.key)
    assert Path(item.log_path).read_text() == "to stdout\nto stderr\n"
    assert executor.get_task_log(item.key, item.log_path).text == "to stdout\nto stderr\n"


def test_many_short_tries_all_succeed_never_more_than_parallelism_at_once(
    make_local: MakeLocal, tmp_path: Path
) -> None:
    executor = make_local(2)
    driver = Driver(executor)
    journal = tmp_path / "journal"
    # Each try appends "+" when it starts and "-" when it ends (O_APPEND writes
    # of one byte are atomic), so the journal replays real concurrency.
    command = f"printf + >> {journal}; sleep 0.01; printf - >> {journal}"
    items = [make_workload(tmp_path, command, run=f"r{index}") for index in range(60)]
    for item in items:
        executor.queue_workload(item)
    most_started = 0

    def all_done() -> bool:
        nonlocal most_started
        most_started = max(most_started, len(executor.running) - len(executor.prefetched()))
        return len(driver.final) == len(items)

    driver.until(all_done, "every try to finish")
    assert {state for state, _ in driver.final.values()} == {TaskState.SUCCESS}
    at_once = most_at_once = 0
    for mark in journal.read_text():
        at_once += 1 if mark == "+" else -1
        most_at_once = max(most_at_once, at_once)
    assert most_at_once == 2
    assert most_started <= 2
    assert len(alive_workers(executor)) <= 2


def test_parallelism_zero_runs_everything_at_once(make_local: MakeLocal, tmp_path: Path) -> None:
    executor = make_local(0)
    driver = Driver(executor)
    command, release = held(tmp_path)
    items = [make_workload(tmp_path, command, run=f"r{index}") for index in range(5)]
    for item in items:
        executor.queue_workload(item)
    driver.until_started(*(item.key for item in items))
    assert len(alive_workers(executor)) == 5
    release.touch()
    driver.until_finished(*(item.key for item in items))


def test_a_worker_killed_mid_try_fails_the_try_and_is_replaced(
    make_local: MakeLocal, tmp_path: Path
) -> None:
    executor = make_local(1)
    driver = Driver(executor)
    victim = make_workload(tmp_path, ["sleep", "300"], task="victim")
    executor.queue_workload(victim)
    driver.until_started(victim.key)
    task_pid = driver.started[victim.key].pid  # type: ignore[union-attr]
    assert task_pid is not None
    worker_pid = busy_worker_of(executor, victim.key)

    os.kill(worker_pid, signal.SIGKILL)
    driver.until_finished(victim.key)
    assert driver.state(victim.key) is TaskState.FAILED
    reason = driver.reason(victim.key) or ""
    assert f"worker {worker_pid} died" in reason
    assert "SIGKILL" in reason
    wait_for(lambda: is_gone(task_pid), "the orphaned task process to be killed")
    assert executor.running == set()
    [dead] = [info for info in executor.worker_processes() if info.pid == worker_pid]
    assert not dead.alive
    assert dead.exit_reason == "killed by SIGKILL — possibly out of memory"

    later = [make_workload(tmp_path, ["true"], task="later", run=f"r{i}") for i in range(3)]
    for item in later:
        executor.queue_workload(item)
    driver.until_finished(*(item.key for item in later))
    assert all(driver.state(item.key) is TaskState.SUCCESS for item in later)
    assert len(alive_workers(executor)) == 1
    assert worker_pid not in alive_workers(executor)


def test_an_idle_worker_killed_while_waiting_does_not_freeze_the_others(
    make_local: MakeLocal, tmp_path: Path
) -> None:
    executor = make_local(2)
    driver = Driver(executor)
    first = [make_workload(tmp_path, ["true"], run=f"a{i}") for i in range(2)]
    command, release = held(tmp_path)
    blocker = make_workload(tmp_path, command, task="blocker")
    for item in [*first, blocker]:
        executor.queue_workload(item)
    driver.until_started(blocker.key)
    driver.until_finished(*(item.key for item in first))
    wait_for(lambda: len(alive_workers(executor)) == 2, "two workers")
    [idle] = [info.pid for info in executor.worker_processes() if info.alive and not info.busy_with]

    os.kill(idle, signal.SIGKILL)  # it was blocked reading the shared activity queue
    # Dying, it could still swallow a message sent at this very moment (see the
    # next test); once it has gone, nothing can be lost.
    wait_for(lambda: is_gone(idle), "the idle worker to die")
    later = [make_workload(tmp_path, ["true"], run=f"b{i}") for i in range(4)]
    for item in later:
        executor.queue_workload(item)
    driver.until_finished(*(item.key for item in later))
    assert all(driver.state(item.key) is TaskState.SUCCESS for item in later)
    release.touch()
    driver.until_finished(blocker.key)
    assert driver.state(blocker.key) is TaskState.SUCCESS


def test_a_message_swallowed_by_a_dying_worker_is_failed_not_stuck(
    make_local: MakeLocal, tmp_path: Path
) -> None:
    executor = make_local(1)
    driver = Driver(executor)
    blocker = make_workload(tmp_path, ["sleep", "300"], task="blocker")
    executor.queue_workload(blocker)
    driver.until_started(blocker.key)
    worker_pid = busy_worker_of(executor, blocker.key)

    # Hand over one more try, and take its message off the queue the way a
    # worker would that is killed before it can count or claim it.
    swallowed = make_workload(tmp_path, ["true"], task="swallowed")
    executor.queue_workload(swallowed)
    executor.trigger_tasks(1)
    assert executor._activity_far.recv(1 << 20)
    os.kill(worker_pid, signal.SIGKILL)

    driver.until_finished(blocker.key, swallowed.key)
    assert f"worker {worker_pid} died" in (driver.reason(blocker.key) or "")
    assert (driver.reason(swallowed.key) or "").startswith("lost: taken from the queue")
    assert executor.running == set()
    claim = ClaimBook(Path(executor.home or "") / "claims").read(swallowed.token)
    assert claim is not None and claim["state"] == "revoked"  # it can never start late


def test_kill_stops_the_tries_process_tree(
    make_local: MakeLocal, tmp_path: Path, orphans: PidReaper
) -> None:
    executor = make_local(2)
    driver = Driver(executor)
    pid_file = tmp_path / "child.pid"
    item = make_workload(tmp_path, f"sleep 300 & echo $! > {pid_file}; wait")
    executor.queue_workload(item)
    driver.until_started(item.key)
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip() != "", "the child pid")
    child = int(pid_file.read_text())
    orphans.add(child)

    assert executor.kill(item.key)
    driver.until_finished(item.key)
    assert driver.state(item.key) is TaskState.FAILED
    assert driver.reason(item.key) == "killed by operator (SIGTERM)"
    wait_for(lambda: is_gone(child), "the task's child to die")
    assert not executor.kill(item.key)
    assert not executor.kill(TaskKey("d", "nothing", "r"))


def test_timeout_kills_grandchildren_too(
    make_local: MakeLocal, tmp_path: Path, orphans: PidReaper
) -> None:
    executor = make_local(1)
    driver = Driver(executor)
    pid_file = tmp_path / "children"
    # One grandchild stays in the task's process group, one leaves it for its own session.
    command = f"sleep 300 & echo $! >> {pid_file}; setsid sleep 300 & echo $! >> {pid_file}; wait"
    item = make_workload(tmp_path, command, timeout=1)
    executor.queue_workload(item)
    driver.until_finished(item.key)
    assert driver.reason(item.key) == "timed out after 1s"
    children = [int(line) for line in pid_file.read_text().split()]
    orphans.add(*children)
    assert len(children) == 2
    wait_for(lambda: all(is_gone(pid) for pid in children), "every grandchild to die")


def test_end_returns_in_bounded_time_with_a_dead_worker(
    make_local: MakeLocal, tmp_path: Path, orphans: PidReaper
) -> None:
    executor = make_local(2)
    driver = Driver(executor)
    long_ones = [make_workload(tmp_path, ["sleep", "300"], run=f"r{i}") for i in range(2)]
    for item in long_ones:
        executor.queue_workload(item)
    driver.until_started(*(item.key for item in long_ones))
    task_pids = [driver.started[item.key].pid for item in long_ones]  # type: ignore[union-attr]
    orphans.add(*task_pids)
    os.kill(busy_worker_of(executor, long_ones[0].key), signal.SIGKILL)

    executor.end(timeout=1)
    driver.collect()
    assert set(driver.final) == {item.key for item in long_ones}
    assert all(state is TaskState.FAILED for state, _ in driver.final.values())
    assert "still running after 1s" in (driver.reason(long_ones[1].key) or "")
    assert all(is_gone(pid) for pid in task_pids if pid)
    assert live_descendants() == []


def test_end_lets_dispatched_tries_finish(make_local: MakeLocal, tmp_path: Path) -> None:
    executor = make_local(2)
    driver = Driver(executor)
    items = [make_workload(tmp_path, "sleep 0.3", run=f"r{i}") for i in range(2)]
    for item in items:
        executor.queue_workload(item)
    driver.beat()
    executor.end(timeout=DEADLINE)
    driver.collect()
    assert {driver.state(item.key) for item in items} == {TaskState.SUCCESS}
    assert live_descendants() == []


def test_end_reads_results_so_workers_blocked_on_a_full_result_queue_can_finish(
    make_local: MakeLocal, tmp_path: Path
) -> None:
    executor = make_local(2)
    # A small result queue fills after a few results.
    executor._results_far.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    capacity = executor._results_far.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
    items = [make_workload(tmp_path, ["true"], run=f"r{i}") for i in range(20)]
    for item in items:
        executor.queue_workload(item)
    executor.trigger_tasks(len(items))  # hand everything over at once, then read nothing
    executor.sync()  # spawns the workers

    wait_for(
        lambda: _unread_bytes(executor._results_far) > capacity // 2,
        "workers to fill the result queue",
    )
    executor.end(timeout=DEADLINE)
    events = executor.get_event_buffer()
    assert {events[item.key][0] for item in items} == {TaskState.SUCCESS}
    assert live_descendants() == []


def test_terminate_leaves_no_process_behind(
    make_local: MakeLocal, tmp_path: Path, orphans: PidReaper
) -> None:
    executor = make_local(3)
    driver = Driver(executor)
    pid_file = tmp_path / "children"
    stubborn = f"trap '' TERM; sleep 300 & echo $! >> {pid_file}; wait; wait"
    items = [
        make_workload(tmp_path, stubborn, task="stubborn"),
        make_workload(tmp_path, ["sleep", "300"], task="plain"),
        make_workload(
            tmp_path, f"setsid sleep 300 & echo $! >> {pid_file}; sleep 300", task="escaper"
        ),
    ]
    for item in items:
        executor.queue_workload(item)
    driver.until_started(*(item.key for item in items))
    wait_for(lambda: pid_file.exists() and len(pid_file.read_text().split()) == 2, "grandchildren")
    task_pids = [driver.started[item.key].pid for item in items]  # type: ignore[union-attr]
    grandchildren = [int(pid) for pid in pid_file.read_text().split()]
    orphans.add(*task_pids, *grandchildren)
    workers = alive_workers(executor)
    assert len(workers) == 3

    executor.terminate()
    driver.collect()
    assert all(is_gone(pid) for pid in [*task_pids, *grandchildren, *workers] if pid)
    assert live_descendants() == []
    assert set(driver.final) == {item.key for item in items}
    assert all(state is TaskState.FAILED for state, _ in driver.final.values())
    assert executor.running == set()


def test_live_scaling_up_spawns_workers_for_waiting_work(
    make_local: MakeLocal, tmp_path: Path
) -> None:
    executor = make_local(1)
    driver = Driver(executor)
    command, release = held(tmp_path)
    items = [make_workload(tmp_path, command, run=f"r{i}") for i in range(3)]
    for item in items:
        executor.queue_workload(item)
    driver.until_started(items[0].key)
    driver.beat()
    assert len(executor.running) == 1 and len(executor.queued_tasks) == 2

    executor.set_parallelism(3)
    driver.until_started(*(item.key for item in items))
    assert len(alive_workers(executor)) == 3
    release.touch()
    driver.until_finished(*(item.key for item in items))


def test_live_scaling_down_retires_idle_workers_and_never_a_busy_one(
    make_local: MakeLocal, tmp_path: Path
) -> None:
    executor = make_local(3)
    driver = Driver(executor)
    command, release = held(tmp_path)
    items = [make_workload(tmp_path, command, run=f"r{i}") for i in range(3)]
    for item in items:
        executor.queue_workload(item)
    driver.until_started(*(item.key for item in items))
    busy = alive_workers(executor)

    executor.set_parallelism(1)
    for _ in range(20):
        driver.beat()
    assert sorted(alive_workers(executor)) == sorted(busy)  # all busy: nobody retires yet

    release.touch()
    driver.until_finished(*(item.key for item in items))
    assert {driver.state(item.key) for item in items} == {TaskState.SUCCESS}
    driver.until(lambda: len(alive_workers(executor)) == 1, "two workers to retire")
    retired = [info for info in executor.worker_processes() if not info.alive]
    assert {info.exit_reason for info in retired} == {"retired"}

    more = [make_workload(tmp_path, ["true"], task="more", run=f"r{i}") for i in range(3)]
    for item in more:
        executor.queue_workload(item)
    driver.until_finished(*(item.key for item in more))
    assert len(alive_workers(executor)) == 1


def test_worker_titles_say_what_each_worker_does(make_local: MakeLocal, tmp_path: Path) -> None:
    executor = make_local(1)
    driver = Driver(executor)
    command, release = held(tmp_path)
    item = make_workload(tmp_path, command, dag="nightly", task="load")
    executor.queue_workload(item)
    driver.until_started(item.key)
    worker = psutil.Process(busy_worker_of(executor, item.key))
    wait_for(lambda: "worker:busy" in " ".join(worker.cmdline()), "the busy title")
    assert " ".join(worker.cmdline()).startswith("worker:busy nightly/load/r1#1")
    assert worker.name().startswith("worker:busy")
    [info] = executor.worker_processes()
    assert info.title.startswith("worker:busy nightly/load/r1#1")

    release.touch()
    driver.until_finished(item.key)
    wait_for(lambda: "worker:idle" in " ".join(worker.cmdline()), "the idle title")
    assert worker.name().startswith("worker:idle")
    [info] = executor.worker_processes()
    assert info.busy_with is None and info.tasks_done == 1


def test_a_worker_shrugs_off_sigint_but_its_tries_do_not_inherit_that(
    make_local: MakeLocal, tmp_path: Path
) -> None:
    """A Ctrl+C meant for the engine must not kill a worker mid-try; the tries it
    starts still get SIGINT's default, through either way of starting them."""
    executor = make_local(1)
    driver = Driver(executor)
    command, release = held(tmp_path)
    blocker = make_workload(tmp_path, command, task="blocker")
    executor.queue_workload(blocker)
    driver.until_started(blocker.key)
    worker = busy_worker_of(executor, blocker.key)
    os.kill(worker, signal.SIGINT)
    release.touch()
    driver.until_finished(blocker.key)
    assert driver.state(blocker.key) is TaskState.SUCCESS
    assert worker in alive_workers(executor)

    spawned = make_workload(tmp_path, ["cat", "/proc/self/status"], task="spawned")
    with_cwd = make_workload(tmp_path, ["cat", "/proc/self/status"], task="cwd", cwd="/")
    for item in (spawned, with_cwd):  # posix_spawn, then Popen (a cwd)
        executor.queue_workload(item)
        driver.until_finished(item.key)
        status = dict(line.split(":\t", 1) for line in Path(item.log_path).read_text().splitlines())
        assert not int(status["SigIgn"], 16) & (1 << (signal.SIGINT - 1)), item.key.task_id
    assert alive_workers(executor) == [worker]


def test_workers_do_not_hold_the_terminal(
    make_local: MakeLocal, tmp_path: Path, home: Path
) -> None:
    executor = make_local(1)
    driver = Driver(executor)
    item = make_workload(tmp_path, ["true"])
    executor.queue_workload(item)
    driver.until_finished(item.key)
    [pid] = alive_workers(executor)
    assert os.readlink(f"/proc/{pid}/fd/0") == "/dev/null"
    worker_log = str(home / "logs" / "local-workers.log")
    assert os.readlink(f"/proc/{pid}/fd/1") == worker_log
    assert os.readlink(f"/proc/{pid}/fd/2") == worker_log


def test_adopts_a_try_another_executor_started(make_local: MakeLocal, tmp_path: Path) -> None:
    first = make_local(1)
    first_driver = Driver(first)
    command, release = held(tmp_path)
    item = make_workload(tmp_path, f"{command}; exit 4")
    first.queue_workload(item)
    first_driver.until_started(item.key)
    running = first_driver.started[item.key]
    assert running is not None

    # The first executor's engine is gone as far as the second knows.
    second = make_local(1)
    record = AdoptionRecord(
        key=item.key, state=TaskState.RUNNING, token=item.token, pid=running.pid
    )
    outcome = second.adopt([record])[item.key]
    assert outcome.outcome is AdoptionOutcome.ADOPTED
    assert outcome.report is not None and outcome.report.pid == running.pid
    assert item.key in second.running

    second_driver = Driver(second)
    release.touch()
    second_driver.until_finished(item.key)
    assert second_driver.state(item.key) is TaskState.FAILED
    assert second_driver.reason(item.key) == "exited with code 4"  # the old worker's report
    assert second.running == set()


def test_adoption_sorts_out_every_kind_of_leftover(
    make_local: MakeLocal, tmp_path: Path, home: Path
) -> None:
    claims = ClaimBook(home / "claims")
    never = make_workload(tmp_path, ["true"], task="never")
    finished = make_workload(tmp_path, ["true"], task="finished")
    claims.claim(finished.token, worker="old", worker_pid=1)
    claims.record_finished(finished.token, exit_code=0, pid=5, reason=None)
    dead = subprocess.Popen(["true"])
    dead.wait()
    lost = make_workload(tmp_path, ["true"], task="lost")
    claims.claim(lost.token, worker="old", worker_pid=1)
    claims.record_started(lost.token, pid=dead.pid, pid_create_time=1.0)
    no_token = TaskKey("d", "no_token", "r1")

    executor = make_local(1)
    outcomes = executor.adopt(
        [
            AdoptionRecord(never.key, TaskState.QUEUED, never.token),
            AdoptionRecord(finished.key, TaskState.RUNNING, finished.token),
            AdoptionRecord(lost.key, TaskState.RUNNING, lost.token),
            AdoptionRecord(no_token, TaskState.RUNNING, None),
        ]
    )
    assert outcomes[never.key].outcome is AdoptionOutcome.NEVER_STARTED
    assert outcomes[finished.key].outcome is AdoptionOutcome.FINISHED
    finished_report = outcomes[finished.key].report
    assert finished_report is not None and finished_report.exit_code == 0
    assert outcomes[lost.key].outcome is AdoptionOutcome.LOST
    assert outcomes[no_token].outcome is AdoptionOutcome.LOST
    assert executor.running == set()

    # A revoked token can never start afterwards, even if the old hand-off reaches a worker.
    driver = Driver(executor)
    executor.queue_workload(never)
    driver.until_finished(never.key)
    assert driver.state(never.key) is TaskState.FAILED
    assert "claimed or revoked elsewhere" in (driver.reason(never.key) or "")


ENGINE_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from executors.local import LocalExecutor
    from executors.task_key import TaskKey
    from executors.workload import Workload

    home, release, token = sys.argv[1], sys.argv[2], sys.argv[3]
    executor = LocalExecutor(1, home=home)
    executor.start()
    key = TaskKey("crash", "t", "r1")
    executor.queue_workload(Workload(
        key=key,
        command=[f"while [ ! -e {release} ]; do sleep 0.05; done"],
        shell=True,
        log_path=f"{home}/logs/crash.log",
        token=token,
    ))
    while True:
        executor.heartbeat()
        events = executor.get_event_buffer()
        if key in events:
            report = events[key][1]
            worker = [w.pid for w in executor.worker_processes()][0]
            print(json.dumps({"pid": report.pid, "create_time": report.pid_create_time,
                              "worker": worker}), flush=True)
            break
        executor.wait_for_events(0.1)
    time.sleep(300)
    """
)


def test_adopts_after_the_engine_process_is_killed(
    make_local: MakeLocal, tmp_path: Path, home: Path, orphans: PidReaper
) -> None:
    release = tmp_path / "release"
    token = "crash-token-1"
    engine = subprocess.Popen(
        [sys.executable, "-c", ENGINE_SCRIPT, str(home), str(release), token],
        stdout=subprocess.PIPE,
        cwd=str(Path(__file__).resolve().parents[2]),
        text=True,
    )
    try:
        assert engine.stdout is not None
        started = json.loads(engine.stdout.readline())
        orphans.add(started["pid"], started["worker"])
    finally:
        engine.kill()
        engine.wait()

    executor = make_local(1)
    key = TaskKey("crash", "t", "r1")
    outcome = executor.adopt([AdoptionRecord(key, TaskState.RUNNING, token, pid=started["pid"])])
    assert outcome[key].outcome is AdoptionOutcome.ADOPTED
    driver = Driver(executor)
    release.touch()
    driver.until_finished(key)
    # The orphaned worker outlived its engine long enough to record the outcome.
    assert driver.state(key) is TaskState.SUCCESS
    wait_for(lambda: is_gone(started["worker"]), "the orphaned worker to exit")


def run_host_script(
    tmp_path: Path, name: str, text: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """Run ``text`` as a host process's main script (as ``python script.py``); fails on exit != 0."""
    script = tmp_path / name
    script.write_text(text)
    result = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert result.returncode == 0, result.stderr
    return result


CRASHING_MAIN = textwrap.dedent(
    """
    import json, sys

    from executors.local import LocalExecutor
    from executors.task_key import TaskKey
    from executors.workload import Workload

    home = sys.argv[1]
    executor = LocalExecutor(2, home=home)
    executor.start()
    # Every worker opens its claims folder first thing; a plain file there
    # instead makes each one die at birth.
    blocker = f"{home}/not-a-folder"
    open(blocker, "w").close()
    executor._worker_config = executor._worker_config._replace(claims_dir=blocker)
    keys = [TaskKey("d", "t", f"r{i}") for i in range(2)]
    for key in keys:
        executor.queue_workload(Workload(key=key, command=["true"], log_path=f"{home}/t.log",
                                         token=f"token-{key.run_id}"))
    final = {}
    while len(final) < len(keys):
        executor.heartbeat()
        for key, (state, report) in executor.get_event_buffer().items():
            if state.is_finished:
                final[str(key)] = [state.value, report.reason]
        executor.wait_for_events(0.1)
    spawned = len(executor.worker_processes())
    executor.terminate()
    print(json.dumps({"final": final, "spawned": spawned}))
    """
)


def test_workers_that_die_at_birth_fail_the_waiting_work_instead_of_respawning_forever(
    tmp_path: Path, home: Path
) -> None:
    result = run_host_script(tmp_path, "crashing_main.py", CRASHING_MAIN, str(home))
    outcome = json.loads(result.stdout)
    assert outcome["spawned"] <= 2 * LocalExecutor.MAX_START_FAILURES
    for state, reason in outcome["final"].values():
        assert state == "failed"
        assert reason.startswith("not started: worker processes exit as soon as they start")
        assert "(exited with code 1)" in reason  # the forkserver's code for a child that failed
        assert "local-workers.log" in reason


MAIN_THAT_NOTES_ITS_IMPORTS = textwrap.dedent(
    """
    import os, sys

    with open(sys.argv[2], "a") as notes:
        notes.write(f"{__name__} {os.getpid()}\\n")

    from executors.local import LocalExecutor
    from executors.task_key import TaskKey
    from executors.workload import Workload

    if __name__ == "__main__":
        home = sys.argv[1]
        executor = LocalExecutor(2, home=home)
        executor.start()
        keys = [TaskKey("d", "t", f"r{i}") for i in range(4)]
        for key in keys:
            executor.queue_workload(Workload(key=key, command=["true"], log_path=f"{home}/t.log",
                                             token=f"token-{key.run_id}"))
        finished = 0
        while finished < len(keys):
            executor.heartbeat()
            finished += sum(s.is_finished for s, _ in executor.get_event_buffer().values())
            executor.wait_for_events(0.1)
        assert len(executor.worker_processes()) == 2
        executor.end()
    """
)


def test_workers_do_not_run_the_engines_main_script_again(tmp_path: Path, home: Path) -> None:
    """For `execconsole` that script is the whole CLI: a worker needs none of it."""
    notes = tmp_path / "imports.txt"
    run_host_script(tmp_path, "main_script.py", MAIN_THAT_NOTES_ITS_IMPORTS, str(home), str(notes))
    assert [line.split()[0] for line in notes.read_text().splitlines()] == ["__main__"]


HOST_THAT_DETACHES = textwrap.dedent(
    """
    import sys, time

    from executors.local import LocalExecutor
    from executors.task_key import TaskKey
    from executors.workload import Workload

    home, how = sys.argv[1], sys.argv[2]
    executor = LocalExecutor(1, home=home)
    executor.start()
    key = TaskKey("d", "t", "r")
    executor.queue_workload(Workload(key=key, command=["sleep", "299.5"], log_path=f"{home}/t.log",
                                     token="token-1"))
    while not executor.worker_processes() or not any(
        w.busy_with for w in executor.worker_processes()
    ):
        executor.heartbeat()
        time.sleep(0.05)
    if how == "detach":
        executor.detach()  # the try goes on, for the next engine to adopt
    # else: leave without end(), as a crashing host would
    print("leaving", flush=True)
    """
)


@pytest.mark.parametrize("how", ["detach", "crash"])
def test_a_host_leaving_workers_behind_still_exits(tmp_path: Path, home: Path, how: str) -> None:
    """The exit hook that stops the forkserver must not wait for workers that live on."""
    # The task sleeps 299.5 s: a host waiting for it would hit the helper's 120 s timeout.
    result = run_host_script(tmp_path, "host.py", HOST_THAT_DETACHES, str(home), how)
    assert result.stdout.strip() == "leaving"
    for process in psutil.process_iter(["cmdline"]):
        if process.info["cmdline"] == ["sleep", "299.5"]:
            with contextlib.suppress(psutil.Error):
                process.kill()


def test_kill_reaches_an_adopted_try(make_local: MakeLocal, tmp_path: Path) -> None:
    first = make_local(1)
    first_driver = Driver(first)
    item = make_workload(tmp_path, ["sleep", "300"])
    first.queue_workload(item)
    first_driver.until_started(item.key)

    second = make_local(1)
    outcome = second.adopt([AdoptionRecord(item.key, TaskState.RUNNING, item.token)])
    assert outcome[item.key].outcome is AdoptionOutcome.ADOPTED
    assert second.kill(item.key)
    driver = Driver(second)
    driver.until_finished(item.key)
    assert driver.state(item.key) is TaskState.FAILED
    assert (driver.reason(item.key) or "").startswith("killed by operator")


def test_a_workload_too_big_for_a_message_fails_at_once(
    make_local: MakeLocal, tmp_path: Path
) -> None:
    executor = make_local(1)
    driver = Driver(executor)
    item = make_workload(tmp_path, ["true"], env={"BIG": "x" * 300_000})
    executor.queue_workload(item)
    driver.until_finished(item.key)
    assert "bytes" in (driver.reason(item.key) or "")


def test_wait_handles_wake_an_engine_when_a_result_arrives(
    make_local: MakeLocal, tmp_path: Path
) -> None:
    executor = make_local(1)
    driver = Driver(executor)
    item = make_workload(tmp_path, ["true"])
    executor.queue_workload(item)
    driver.beat()
    deadline = time.monotonic() + DEADLINE
    while item.key not in driver.final:
        assert time.monotonic() < deadline, "no result arrived"
        # What the engine does between heartbeats: block on the handles.
        wait_for_handles(executor.wait_handles(), timeout=DEADLINE)
        driver.beat()
    assert driver.state(item.key) is TaskState.SUCCESS
    assert executor.wait_handles() and LocalExecutor(1).wait_handles() == []


def test_heartbeat_before_start_is_a_clear_error(tmp_path: Path) -> None:
    executor = LocalExecutor(1, home=str(tmp_path))
    executor.queue_workload(make_workload(tmp_path, ["true"]))
    with pytest.raises(RuntimeError, match="call start"):
        executor.heartbeat()


def test_no_home_uses_a_temporary_one_removed_at_end(tmp_path: Path) -> None:
    executor = LocalExecutor(1)
    executor.start()
    driver = Driver(executor)
    item = make_workload(tmp_path, ["true"])
    executor.queue_workload(item)
    driver.until_finished(item.key)
    temporary = executor._owned_home
    assert temporary and Path(temporary, "claims").is_dir()
    executor.end()
    assert not Path(temporary).exists()
    assert live_descendants() == []


def test_gauges_include_workers_and_unread_messages(make_local: MakeLocal, tmp_path: Path) -> None:
    executor = make_local(1)
    driver = Driver(executor)
    item = make_workload(tmp_path, ["true"])
    executor.queue_workload(item)
    driver.until_finished(item.key)
    gauges = executor.gauges()
    assert gauges["executor.local.workers"] == 1
    assert gauges["executor.local.unread_messages"] == 0
    assert "worker" in executor.debug_dump()


def _write_loaded_modules(path: str) -> None:
    """A forkserver child's target: which of our modules it has, written to ``path``."""
    Path(path).write_text(json.dumps(sorted(m for m in sys.modules if m.startswith("executors."))))


def test_only_the_forkserver_loads_its_exit_hook(make_local: MakeLocal, tmp_path: Path) -> None:
    """The hook ends its process with status 0: the engine must never import it."""
    executor = make_local(1)
    driver = Driver(executor)
    item = make_workload(tmp_path, ["true"])
    executor.queue_workload(item)
    driver.until_finished(item.key)
    assert "executors.forkserver_exit" not in sys.modules
    # A process forked by the forkserver has what the forkserver preloaded.
    report = tmp_path / "modules.json"
    child = prepare_process_context().Process(target=_write_loaded_modules, args=(str(report),))
    child.start()
    child.join(DEADLINE)
    assert child.exitcode == 0
    loaded = json.loads(report.read_text())
    assert "executors.forkserver_exit" in loaded
    assert "executors.local_worker" in loaded


def test_only_a_worker_death_the_executor_did_not_cause_is_a_warning(
    make_local: MakeLocal, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="executors.local")
    executor = make_local(2)
    driver = Driver(executor)
    victim = make_workload(tmp_path, ["sleep", "300"], task="victim")
    executor.queue_workload(victim)
    driver.until_started(victim.key)
    worker_pid = busy_worker_of(executor, victim.key)
    os.kill(worker_pid, signal.SIGKILL)
    driver.until_finished(victim.key)
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(f"worker {worker_pid} died" in message for message in warned)

    caplog.clear()
    after = make_workload(tmp_path, ["true"], task="after")
    executor.queue_workload(after)
    driver.until_finished(after.key)
    executor.terminate()  # stops its own idle workers with SIGTERM: expected
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert any("executor terminated; worker" in r.getMessage() for r in caplog.records)
