"""Tries run on Celery workers: outcome, routing by queue, logs, and the one-MGET heartbeat."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest

from executors.log_spool import SPOOL_PREFIX
from executors.state import TaskState
from tests.celery.conftest import DEADLINE, Cluster, Driver, wait_for

pytestmark = pytest.mark.celery


def test_a_try_succeeds_or_fails_with_its_exit_code_and_reason(cluster: Cluster) -> None:
    executor = cluster.executor()
    ok = cluster.workload("exit 0")
    bad = cluster.workload("echo about to fail; exit 3")
    missing = cluster.workload("exec /nonexistent/command")
    driver = Driver(executor)
    for workload in (ok, bad, missing):
        executor.queue_workload(workload)

    driver.until_finished(ok.key, bad.key, missing.key)

    assert driver.state(ok.key) is TaskState.SUCCESS
    assert driver.report(ok.key).exit_code == 0
    assert driver.state(bad.key) is TaskState.FAILED
    assert driver.report(bad.key).exit_code == 3
    assert driver.report(bad.key).reason == "exited with code 3"
    assert driver.state(missing.key) is TaskState.FAILED
    assert driver.report(missing.key).exit_code == 127
    assert not executor.running


def test_a_running_try_reports_where_it_runs_before_it_ends(cluster: Cluster) -> None:
    executor = cluster.executor()
    workload = cluster.workload("sleep 1")
    driver = Driver(executor)
    executor.queue_workload(workload)

    driver.until_started(workload.key)
    running = driver.started[workload.key]
    assert running is not None and running.pid and running.hostname
    assert running.worker == "alpha@test"
    assert workload.key in executor.running

    driver.until_finished(workload.key)
    assert driver.state(workload.key) is TaskState.SUCCESS
    assert driver.report(workload.key).pid == running.pid


def test_each_try_runs_on_a_worker_that_consumes_its_queue(cluster: Cluster) -> None:
    executor = cluster.executor()
    to_alpha = [cluster.workload("true", queue="alpha") for _ in range(3)]
    to_beta = [cluster.workload("true", queue="beta") for _ in range(3)]
    driver = Driver(executor)
    for workload in to_alpha + to_beta:
        executor.queue_workload(workload)

    driver.until_finished(*(w.key for w in to_alpha + to_beta))

    assert {driver.report(w.key).worker for w in to_alpha} == {"alpha@test"}
    assert {driver.report(w.key).worker for w in to_beta} == {"beta@test"}


def test_the_end_of_a_log_is_shown_from_redis_with_the_full_size(cluster: Cluster) -> None:
    executor = cluster.executor(log_tail_bytes=2048)
    # About 10 KB of numbered lines, so only the end fits in the 2 KB tail.
    workload = cluster.workload("seq 1 2000; echo last-line")
    driver = Driver(executor)
    executor.queue_workload(workload)
    driver.until_finished(workload.key)

    # Read through a key and no local file: what a console on another machine sees.
    shown = executor.get_task_log(workload.key, None, max_bytes=1000)

    assert shown.text.endswith("1999\n2000\nlast-line\n")
    assert len(shown.text) == 1000
    assert shown.size == Path(workload.log_path).stat().st_size
    assert shown.truncated
    assert "kept in Redis" in shown.source


def test_the_log_of_a_running_try_is_shown_while_it_runs(cluster: Cluster) -> None:
    executor = cluster.executor()
    workload = cluster.workload("echo first-part; sleep 3; echo second-part")
    driver = Driver(executor)
    executor.queue_workload(workload)
    driver.until_started(workload.key)

    wait_for(
        lambda: "first-part" in executor.get_task_log(workload.key, None).text,
        "the running try's log to reach Redis",
    )
    assert "second-part" not in executor.get_task_log(workload.key, None).text
    driver.until_finished(workload.key)
    assert "second-part" in executor.get_task_log(workload.key, None).text


def test_sync_reads_every_state_in_one_mget_at_most_once_per_poll_interval(
    cluster: Cluster,
) -> None:
    executor = cluster.executor()
    # Two run (alpha has two pool processes) and four wait in the queue.
    workloads = [cluster.workload("sleep 20") for _ in range(6)]
    driver = Driver(executor)
    for workload in workloads:
        executor.queue_workload(workload)
    driver.until(lambda: len(driver.started) == 2, "two tries to start")

    client = cluster.redis.client()
    names = {c["addr"]: c["name"] for c in client.client_list()}
    executor_addrs = {
        addr for addr, name in names.items() if name.startswith("execconsole-executor")
    }
    assert executor_addrs, names
    seen: list[str] = []
    monitor_ready = threading.Event()

    def watch() -> None:
        with cluster.redis.client().monitor() as monitor:
            monitor_ready.set()
            for entry in monitor.listen():
                if entry["command"] == "ECHO stop-watching":
                    return
                address = f"{entry['client_address']}:{entry['client_port']}"
                if address in executor_addrs:
                    seen.append(entry["command"])

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    monitor_ready.wait(5)
    client.ping()
    poll = executor.settings.poll_interval
    # Heartbeats spaced by the poll interval: each reads once.
    spaced = 5
    for _ in range(spaced):
        time.sleep(poll)
        driver.beat()
    # An engine beating as fast as it can: reads stay one per poll interval.
    burst_started = time.monotonic()
    for _ in range(200):
        driver.beat()
    burst_seconds = time.monotonic() - burst_started
    client.echo("stop-watching")
    watcher.join(10)

    assert all(command.split()[0] == "MGET" for command in seen), seen
    assert spaced <= len(seen) <= spaced + burst_seconds / poll + 1
    for command in seen:
        keys = command.split()[1:]
        # The epoch key, a result key per try in flight, and the leases of
        # the two running ones.
        assert len(keys) == 1 + len(workloads) + 2
        assert sum(key.startswith("celery-task-meta-") for key in keys) == len(workloads)
    for workload in workloads:
        assert executor.kill(workload.key)
    driver.until_finished(*(w.key for w in workloads))


def test_silent_short_tries_leave_no_log_file_and_others_keep_their_own_output(
    private_cluster: Cluster,
) -> None:
    # A long report delay, so that "ends within it" holds for `true` on a slow machine.
    private_cluster.worker_settings["running_report_delay"] = 1.0
    worker = private_cluster.start_worker("spooler", concurrency=1)
    executor = private_cluster.executor()
    silent = [private_cluster.workload("true") for _ in range(3)]
    loud = private_cluster.workload("echo loud; echo also >&2")
    last = private_cluster.workload("true")
    driver = Driver(executor)
    for workload in (*silent, loud, last):
        executor.queue_workload(workload)
    driver.until_finished(*(w.key for w in (*silent, loud, last)))

    assert all(driver.state(w.key) is TaskState.SUCCESS for w in (*silent, loud, last))
    assert not any(Path(w.log_path).exists() for w in (*silent, last))
    assert Path(loud.log_path).read_text() == "loud\nalso\n"
    assert executor.get_task_log(loud.key, None).text == "loud\nalso\n"
    assert executor.get_task_log(last.key, None).text == ""
    logs = private_cluster.root / "logs"
    [spool] = [p for p in logs.iterdir() if p.name.startswith(SPOOL_PREFIX)]
    assert spool.stat().st_size == 0  # one pool process, one spool, holding nobody's output
    worker.process.send_signal(signal.SIGTERM)  # a warm shutdown, as an operator stops it
    worker.process.wait(timeout=DEADLINE)
    wait_for(lambda: not spool.exists(), "the pool process to remove its spool as it ends")
