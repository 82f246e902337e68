"""Celery: N ``/bin/true`` tasks through raw Celery vs the whole product, same workers, same run.

Starts its own redis-server on a free loopback port and two Celery prefork
workers of concurrency 2 (each consumes its own queue; both stay up all the
time, so each case runs beside the other's idle worker):

- ``raw``: a plain Celery worker (``celery -A bench_celery_engine:raw_app``,
  Celery's defaults, JSON) whose task runs ``subprocess.run(["/bin/true"])``;
  the client is a fresh interpreter that ``apply_async``s N tasks and then
  collects the results one by one with ``AsyncResult.get()``;
- ``product``: ``execconsole celery worker --concurrency 2`` and
  ``execconsole run WORKFLOW --headless --parallelism 0`` with
  ``EXECCONSOLE__CORE__EXECUTOR=celery`` on a fresh EXECCONSOLE_HOME: the
  whole product, TOML parse, store, engine, claims, leases, logs included.
  Parallelism 0 (no limit) hands every ready try to Celery, as raw Celery does;
  the Celery pool of 2 is the limit in both cases.

Both cases are whole commands timed from spawn to exit, alternating in rotating
order round after round (``_common.Rounds``); the ratio product/raw is taken
per round, and its median reported (target <= 1.2). After each product run the
store is checked (untimed): N successes, one try each. Each case also records
the CPU seconds of its client, of its worker (main process, pool and the tries
they ran) and of Redis, which on a shared machine are steadier than wall time.
``--diagnose`` adds a third case: the CeleryExecutor driven alone (no engine,
no store) on the product's worker, to tell engine+store cost from worker cost.
Results and analysis: ``benchmarks/celery_results.md``.

    python benchmarks/bench_celery_engine.py                        # 2,000 tasks, 5 rounds
    python benchmarks/bench_celery_engine.py --tasks 2000 --rounds 7 --json out.json
    python benchmarks/bench_celery_engine.py --rounds 3 --diagnose  # + the executor alone
    python benchmarks/bench_celery_engine.py --profile prof.out     # + one product run under cProfile
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil
from celery import Celery

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import (  # noqa: E402
    PYTHON,
    REPO,
    Rounds,
    clean_env,
    compile_product,
    console_script,
    machine,
    remove_after_last_round,
    timed_command,
    verdict,
    write_report,
)

TARGET = 1.2
RAW_QUEUE = "raw"
BROKER_ENV = "BENCH_BROKER_URL"

# The raw case's app: Celery's defaults, a task that only runs the command.
_broker = os.environ.get(BROKER_ENV, "redis://127.0.0.1:6379/0")
raw_app = Celery("bench_raw", broker=_broker, backend=_broker, set_as_current=False)
raw_app.conf.update(task_default_queue=RAW_QUEUE, broker_connection_retry_on_startup=True)


@raw_app.task(name="bench.true")
def run_true() -> int:
    return subprocess.run(["/bin/true"], stdin=subprocess.DEVNULL, check=False).returncode


def raw_client(count: int) -> None:
    """The raw case's whole client: submit ``count`` tasks, then wait for each in turn."""
    results = [run_true.apply_async() for _ in range(count)]
    for result in results:
        if result.get(timeout=600) != 0:
            raise SystemExit("a raw task failed")


def executor_client(count: int, logs: str) -> None:
    """Diagnostic case: the CeleryExecutor alone (no engine, no store), heartbeat every 50 ms."""
    import uuid

    sys.path.insert(0, str(REPO))
    from executors.celery.executor import CeleryExecutor
    from executors.state import TaskState
    from executors.task_key import TaskKey
    from executors.workload import Workload

    executor = CeleryExecutor(0)  # settings from EXECCONSOLE__CELERY__* like the product's
    executor.start()
    for index in range(count):
        executor.queue_workload(
            Workload(
                key=TaskKey("bench", f"t{index:05d}", "executor"),
                command=["/bin/true"],
                log_path=f"{logs}/t{index:05d}.log",
                token=uuid.uuid4().hex,
            )
        )
    finished = 0
    while finished < count:
        executor.heartbeat()
        for state, _report in executor.get_event_buffer().values():
            if state.is_finished:
                if state is not TaskState.SUCCESS:
                    raise SystemExit("a try failed")
                finished += 1
        if finished < count:
            time.sleep(0.05)
    executor.end(timeout=0)


# ---- the cluster ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """A redis-server and the two workers; every process is stopped by ``close``."""

    def __init__(self, work: Path, worker_env: dict[str, str] | None = None) -> None:
        self.work = work
        self.worker_env = worker_env or {}
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.processes: list[subprocess.Popen[bytes]] = []
        self.named: dict[str, subprocess.Popen[bytes]] = {}

    def _spawn(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        log = open(self.work / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.processes.append(process)
        self.named[name] = process

    def start(self) -> None:
        redis_server = shutil.which("redis-server")
        if redis_server is None:
            raise SystemExit("redis-server is not installed: apt-get install redis-server")
        server = [
            redis_server, "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(self.work),
        ]  # fmt: skip
        raw_worker = [
            PYTHON, "-m", "celery", "-A", "bench_celery_engine:raw_app", "worker",
            "-P", "prefork", "-c", "2", "-Q", RAW_QUEUE, "-n", "raw@bench",
            "-l", "WARNING", "--without-mingle", "--without-gossip",
        ]  # fmt: skip
        product_worker = [
            PYTHON, "-m", "executors.celery", "worker", "--concurrency", "2",
            "--hostname", "product@bench", "--loglevel", "WARNING",
        ]  # fmt: skip
        self._spawn("redis", server, clean_env(), self.work)
        self._wait(self._redis_answers, "redis-server to answer")
        raw_env = clean_env(**{BROKER_ENV: self.url, "PYTHONPATH": str(HERE)})
        self._spawn("raw-worker", raw_worker, raw_env, HERE)
        self._spawn("product-worker", product_worker, self.product_env(**self.worker_env), REPO)
        raw_app.conf.broker_url = raw_app.conf.result_backend = self.url  # this process pings
        for node in ("raw@bench", "product@bench"):
            self._wait(
                lambda node=node: raw_app.control.ping(destination=[node], timeout=0.5),
                f"worker {node} to answer",
            )

    def cpu_seconds(self, name: str) -> float:
        """CPU time so far of a process, its live descendants and the children they reaped."""
        return sum(self.cpu_parts(name).values())

    def cpu_parts(self, name: str) -> dict[str, float]:
        """``cpu_seconds`` split: the process itself, its descendants (user and system
        time apart: a worker's pool processes create the tries' log files, whose
        kernel time varies with the filesystem's state) and the children they reaped."""
        parts = {"main": 0.0, "pool_user": 0.0, "pool_sys": 0.0, "tries": 0.0}
        try:
            root = psutil.Process(self.named[name].pid)
            members = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return parts
        for member in members:
            with contextlib.suppress(psutil.Error):
                times = member.cpu_times()
                if member.pid == root.pid:
                    parts["main"] += times.user + times.system
                else:
                    parts["pool_user"] += times.user
                    parts["pool_sys"] += times.system
                parts["tries"] += times.children_user + times.children_system
        return parts

    def product_env(self, **extra: str) -> dict[str, str]:
        return clean_env(
            EXECCONSOLE__CELERY__BROKER_URL=self.url, EXECCONSOLE__CORE__EXECUTOR="celery", **extra
        )

    def _redis_answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=1).ping())
        except redis.RedisError:
            return False

    def _wait(self, condition, what: str, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while not condition():
            for process in self.processes:
                if process.poll() is not None:
                    raise SystemExit(f"a process exited early; see the logs in {self.work}")
            if time.monotonic() > deadline:
                raise SystemExit(f"gave up waiting for {what}")
            time.sleep(0.1)

    def queues_empty(self) -> bool:
        import redis

        client = redis.Redis(port=self.port)
        try:
            return client.llen(RAW_QUEUE) == 0 and client.llen("default") == 0
        finally:
            client.close()

    def close(self) -> None:
        raw_app.close()
        # Workers first, warm (their main process reaps the pool), then Redis.
        for process in reversed(self.processes):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()


# ---- the cases -----------------------------------------------------------------------------


def write_workflow(path: Path, tasks: int) -> None:
    lines = ['id = "bench"', 'description = "generated: independent /bin/true tasks"', ""]
    for index in range(tasks):
        lines += ["[[task]]", f'id = "t{index:05d}"', 'command = ["/bin/true"]', ""]
    path.write_text("\n".join(lines))


def children_cpu() -> float:
    """CPU seconds of this process's reaped children (each timed command, once it exited)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def check_home(home: Path, tasks: int) -> None:
    """Every task of the run succeeded, in one try (read straight from the store)."""
    conn = sqlite3.connect(home / "execconsole.db")
    try:
        states = dict(conn.execute("SELECT state, count(*) FROM task_instances GROUP BY state"))
        tries = conn.execute("SELECT max(try_number) FROM task_instances").fetchone()[0]
    finally:
        conn.close()
    if states != {"success": tasks} or tries != 1:
        raise RuntimeError(
            f"the product run did not end with {tasks} first-try successes: {states}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--parallelism", type=int, default=0, help="the product's (0: no limit)")
    parser.add_argument("--json", help="also write the report to this file")
    parser.add_argument(
        "--profile", help="after the rounds, profile one product run into this file"
    )
    parser.add_argument(
        "--diagnose",
        action="store_true",
        help="add a third case: the CeleryExecutor alone (no engine, no store) on the same worker",
    )
    parser.add_argument(
        "--worker-prefetch",
        type=int,
        help="experiment: the product worker's prefetch_multiplier (default: the product's, 1)",
    )
    parser.add_argument(
        "--work-dir",
        help="where the run's files go (the product's homes, so its logs too); default: the "
        "system's temporary directory. Creating the logs' 2,000 files a run costs the product "
        "kernel time that depends on this filesystem (celery_results.md)",
    )
    parser.add_argument("--raw-client", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--executor-client", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--logs", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_client is not None:
        raw_client(args.raw_client)
        return
    if args.executor_client is not None:
        executor_client(args.executor_client, args.logs)
        return
    compile_product()

    work = Path(tempfile.mkdtemp(prefix="bench-celery-", dir=args.work_dir))
    worker_env = {}
    if args.worker_prefetch is not None:
        worker_env["EXECCONSOLE__CELERY__PREFETCH_MULTIPLIER"] = str(args.worker_prefetch)
    cluster = Cluster(work, worker_env)
    script = console_script()
    workflow = work / "bench.toml"
    write_workflow(workflow, args.tasks)

    worker_parts = ("main", "pool_user", "pool_sys", "tries")
    cpu: dict[str, dict[str, list[float]]] = {
        case: {part: [] for part in ("client", "worker", "redis", *worker_parts)}
        for case in ("raw", "product", *(["executor"] if args.diagnose else []))
    }

    loads: dict[str, list[float]] = {case: [] for case in cpu}  # 1-minute load before each run

    def measured(case: str, worker: str, run: Callable[[], float]) -> float:
        """Run one case; keep the CPU seconds its client, its worker (and the worker's
        parts) and Redis spent."""
        loads[case].append(round(os.getloadavg()[0], 2))
        before = (children_cpu(), cluster.cpu_parts(worker), cluster.cpu_seconds("redis"))
        elapsed = run()
        after = (children_cpu(), cluster.cpu_parts(worker), cluster.cpu_seconds("redis"))
        cpu[case]["client"].append(after[0] - before[0])
        cpu[case]["redis"].append(after[2] - before[2])
        cpu[case]["worker"].append(sum(after[1].values()) - sum(before[1].values()))
        for part in worker_parts:
            cpu[case][part].append(after[1][part] - before[1][part])
        return elapsed

    def raw(count: int = args.tasks) -> float:
        elapsed = timed_command(
            [PYTHON, str(Path(__file__).resolve()), "--raw-client", str(count)],
            env=clean_env(**{BROKER_ENV: cluster.url}),
            cwd=HERE,
        )
        assert cluster.queues_empty()
        return elapsed

    def executor_only() -> float:
        logs = Path(tempfile.mkdtemp(prefix="logs-", dir=work))
        command = [
            PYTHON, str(Path(__file__).resolve()),
            "--executor-client", str(args.tasks), "--logs", str(logs),
        ]  # fmt: skip
        elapsed = timed_command(
            command,
            env=cluster.product_env(),
            cwd=HERE,
        )
        assert cluster.queues_empty()
        remove_after_last_round(logs)  # see _common.remove_after_last_round
        return elapsed

    def product(
        flow: Path = workflow, count: int = args.tasks, prefix: list[str] | None = None
    ) -> float:
        home = Path(tempfile.mkdtemp(prefix="home-", dir=work))
        command = [
            *(prefix or [script]), "run", str(flow), "--headless",
            "--parallelism", str(args.parallelism),
        ]  # fmt: skip
        elapsed = timed_command(
            command,
            env=cluster.product_env(EXECCONSOLE_HOME=str(home)),
            cwd=work,
        )
        check_home(home, count)  # untimed
        assert cluster.queues_empty()
        remove_after_last_round(home)  # see _common.remove_after_last_round
        return elapsed

    report: dict = {
        "benchmark": "celery_engine",
        "machine": machine(),
        "tasks": args.tasks,
        "rounds": args.rounds,
        "celery_workers": "one prefork worker of concurrency 2 per case, loopback redis-server",
        "work_dir": str(work),
        "commands": {
            "raw": f"{PYTHON} benchmarks/bench_celery_engine.py --raw-client {args.tasks}  "
            f"(worker: celery -A bench_celery_engine:raw_app worker -P prefork -c 2 -Q raw)",
            "product": "EXECCONSOLE__CORE__EXECUTOR=celery EXECCONSOLE__CELERY__BROKER_URL=<redis> "
            f"EXECCONSOLE_HOME=<fresh dir> {script} run bench.toml --headless "
            f"--parallelism {args.parallelism}  (worker: "
            + " ".join(f"{k}={v}" for k, v in worker_env.items())
            + (" " if worker_env else "")
            + "execconsole celery worker --concurrency 2)",
        },
    }
    try:
        cluster.start()
        # Untimed warm-up: both workers have forked their pools and loaded everything.
        small = work / "warmup.toml"
        write_workflow(small, 20)
        raw(20)
        product(small, 20)
        print(f"{args.tasks} tasks of /bin/true, Celery concurrency 2:", file=sys.stderr)
        cases = {
            "raw": lambda: measured("raw", "raw-worker", raw),
            "product": lambda: measured("product", "product-worker", product),
        }
        if args.diagnose:
            cases["executor"] = lambda: measured("executor", "product-worker", executor_only)
        rounds = Rounds(cases, args.rounds).run()
        if args.profile:
            product(prefix=[PYTHON, "-m", "cProfile", "-o", args.profile, "-m", "console"])
            print(f"profile of one product run written to {args.profile}", file=sys.stderr)
    finally:
        cluster.close()
        shutil.rmtree(work, ignore_errors=True)

    ratio = rounds.ratio("product", "raw")
    report["results"] = {
        "raw_s": rounds.summary("raw").as_dict(),
        "product_s": rounds.summary("product").as_dict(),
        "product_over_raw": ratio.as_dict(3),
        "raw_ms_per_task": round(rounds.summary("raw").median / args.tasks * 1000, 3),
        "product_ms_per_task": round(rounds.summary("product").median / args.tasks * 1000, 3),
        "target": TARGET,
        "verdict": verdict(ratio.median, TARGET),
        **(
            {
                "executor_s": rounds.summary("executor").as_dict(),
                "executor_over_raw": rounds.ratio("executor", "raw").as_dict(3),
            }
            if args.diagnose
            else {}
        ),
        "per_round_s": {
            case: [round(v, 3) for v in values] for case, values in rounds.results.items()
        },
        "loadavg_before_each_run": loads,
        "cpu_s_median": {
            case: {part: round(statistics.median(values), 2) for part, values in parts.items()}
            for case, parts in cpu.items()
        },
    }
    print(
        f"  raw      {rounds.summary('raw').text()}\n"
        f"  product  {rounds.summary('product').text()}\n"
        f"  product/raw {ratio.text(unit='x')}  target <= {TARGET}: {report['results']['verdict']}\n"
        f"  CPU seconds (median; client, worker incl. tasks, redis): "
        f"{report['results']['cpu_s_median']}",
        file=sys.stderr,
    )
    write_report(args.json, report)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
