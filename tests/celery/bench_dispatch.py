"""Dispatch overhead: N ``/bin/true`` tries through the CeleryExecutor vs raw Celery, same worker.

Run: ``python -m tests.celery.bench_dispatch [N] [rounds]``. Starts its own
redis-server and one ``execconsole celery worker`` (prefork, concurrency 2),
then alternates, round after round:

- raw Celery: ``apply_async`` of the same task, then ``AsyncResult.get()`` one by one;
- the executor alone: ``queue_workload`` N times, then ``heartbeat`` every 50 ms
  until N finished events were drained (no engine, no store);
- the floor: raw Celery with a bare task that only calls ``subprocess.run``, on
  a plain Celery worker of the same size (no claims, leases, logs or RUNNING).

Prints every round (wall time and the client process's CPU time) and the medians. Wall-clock numbers on a shared machine
vary a lot; compare the two columns of the same round.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from celery import Celery

from executors.celery.app import TASK_NAME, make_app
from executors.celery.executor import CeleryExecutor
from executors.celery.settings import CelerySettings
from executors.state import TaskState
from executors.task_key import TaskKey
from executors.workload import Workload
from tests.celery.conftest import Cluster, RedisServer, WorkerProcess, wait_for
from tests.helpers import REPO

HEARTBEAT_SECONDS = 0.05

# The floor's app: a bare Celery task, loaded by ``celery -A`` in its own worker.
floor_app = Celery(
    "bench_floor",
    broker=os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/0"),
    backend=os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/0"),
    set_as_current=False,
)
floor_app.conf.update(task_default_queue="floor", worker_prefetch_multiplier=1)


@floor_app.task(name="bench.floor")
def run_bare(argv: list[str]) -> int:
    """Run a command and return its exit code: all a task needs, nothing an executor adds."""
    return subprocess.run(argv, stdin=subprocess.DEVNULL, check=False).returncode


def workloads(root: Path, tag: str, count: int) -> list[Workload]:
    return [
        Workload(
            key=TaskKey("bench", f"t{index}", tag),
            command=["/bin/true"],
            log_path=str(root / "logs" / tag / f"{index}.log"),
            token=uuid.uuid4().hex,
        )
        for index in range(count)
    ]


def raw_celery(cluster: Cluster, count: int) -> tuple[float, float]:
    """apply_async each, then get() each: plain Celery with its own Redis result backend."""
    settings = CelerySettings.load({"broker_url": cluster.redis.url})
    app = make_app(settings, role="worker")  # Celery's own backend, subscribing per task
    task = app.tasks[TASK_NAME]
    items = workloads(cluster.root, f"raw{uuid.uuid4().hex[:6]}", count)
    cpu = time.process_time()
    started = time.perf_counter()
    results = [
        task.apply_async(args=[item.to_json()], task_id=item.token, queue=item.queue)
        for item in items
    ]
    for result in results:
        result.get(timeout=600)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    app.close()
    return elapsed, cpu


def floor(cluster: Cluster, count: int) -> tuple[float, float]:
    cpu = time.process_time()
    started = time.perf_counter()
    results = [run_bare.apply_async(args=[["/bin/true"]]) for _ in range(count)]
    for result in results:
        result.get(timeout=600)
    return time.perf_counter() - started, time.process_time() - cpu


def start_floor_worker(cluster: Cluster) -> subprocess.Popen[bytes]:
    env = {**cluster.worker_env(), "BENCH_BROKER_URL": cluster.redis.url}
    command = [
        sys.executable, "-m", "celery", "-A", "tests.celery.bench_dispatch:floor_app",
        "worker", "-c", "2", "-Q", "floor", "-n", "floor@test", "-l", "WARNING",
        "--without-mingle", "--without-gossip",
    ]  # fmt: skip
    log = open(cluster.root / "floor-worker.log", "ab")  # noqa: SIM115 - handed to the child
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    log.close()
    wait_for(
        lambda: floor_app.control.ping(destination=["floor@test"], timeout=0.5),
        "the floor worker to answer",
    )
    return process


def through_executor(cluster: Cluster, count: int) -> tuple[float, float]:
    executor = CeleryExecutor(0, options={"broker_url": cluster.redis.url})
    executor.start()
    items = workloads(cluster.root, f"ours{uuid.uuid4().hex[:6]}", count)
    cpu = time.process_time()
    started = time.perf_counter()
    for item in items:
        executor.queue_workload(item)
    finished = 0
    while finished < count:
        executor.heartbeat()
        for state, _report in executor.get_event_buffer().values():
            if state.is_finished:
                assert state is TaskState.SUCCESS
                finished += 1
        if finished < count:
            time.sleep(HEARTBEAT_SECONDS)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    executor.end(timeout=0)
    return elapsed, cpu


def main(count: int = 2000, rounds: int = 3) -> None:
    root = Path(tempfile.mkdtemp(prefix="celery-bench-"))
    server = RedisServer(root / "redis")
    server.start()
    cluster = Cluster(redis=server, root=root, marker=f"bench-{uuid.uuid4().hex}")
    worker = WorkerProcess("bench", "default", 2, cluster.worker_env(), root, loglevel="WARNING")
    cluster.workers.append(worker)
    floor_app.conf.broker_url = floor_app.conf.result_backend = server.url
    floor_worker = None
    try:
        worker.wait_ready()
        floor_worker = start_floor_worker(cluster)
        raw_times, our_times, floor_times = [], [], []
        for round_number in range(1, rounds + 1):
            raw, raw_cpu = raw_celery(cluster, count)
            ours, our_cpu = through_executor(cluster, count)
            bare, bare_cpu = floor(cluster, count)
            raw_times.append(raw)
            our_times.append(ours)
            floor_times.append(bare)
            print(
                f"round {round_number}: raw Celery {raw:.2f}s (client CPU {raw_cpu:.2f}s), "
                f"CeleryExecutor {ours:.2f}s (client CPU {our_cpu:.2f}s), ratio {ours / raw:.2f}; "
                f"bare-task floor {bare:.2f}s (client CPU {bare_cpu:.2f}s)",
                flush=True,
            )
        raw, ours = statistics.median(raw_times), statistics.median(our_times)
        print(
            f"median of {rounds}: raw {raw:.2f}s, executor {ours:.2f}s, ratio {ours / raw:.2f}, "
            f"bare-task floor {statistics.median(floor_times):.2f}s"
        )
    finally:
        if floor_worker is not None:
            os.killpg(floor_worker.pid, signal.SIGKILL)
            floor_worker.wait()
        floor_app.close()
        cluster.close()


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:3]))
