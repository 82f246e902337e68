"""LocalExecutor alone against the thread-pool floor and ``xargs -P``.

For each parallelism (default 2 and 8), three cases run in rotating order every round:

- ``local``: ``LocalExecutor(parallelism=P)``: ``start()``, queue N workloads of
  ``/bin/true``, heartbeat (waiting on the executor's wait handles between
  beats, as the engine does) until every finished event is back, ``end()``.
  The forkserver is started once before timing (the product starts it at
  launch); worker processes are spawned inside the timed region.
- ``threads``: ``ThreadPoolExecutor(P)`` calling ``subprocess.run(["/bin/true"])`` N times (the floor).
- ``threads_logs``: the same, but each task writes to a log file of its own in a
  new session, as every try of the product does (for context; the target is
  against ``threads``).
- ``xargs``: ``seq N | xargs -P P -n 1 /bin/true`` as one command.

Reports per-case medians and the per-round ratio local/threads (target at
parallelism 2: <= 1.15).

    python benchmarks/bench_local_executor.py                 # 2,000 tasks, P=2 and 8, 5 rounds
    python benchmarks/bench_local_executor.py --rounds 15 --tasks 5000 --json out.json
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import Rounds, compile_product, machine, remove_after_last_round, verdict, write_report  # noqa: E402

TARGET_P2 = 1.15


def run_local(tasks: int, parallelism: int, options: dict[str, object] | None = None) -> float:
    from executors.local import LocalExecutor
    from executors.process_context import prepare_process_context
    from executors.task_key import TaskKey
    from executors.workload import Workload

    prepare_process_context()
    home = Path(tempfile.mkdtemp(prefix="bench-local-"))
    try:
        workloads = [
            Workload(
                key=TaskKey("bench", f"t{i}", "r1"),
                command=["/bin/true"],
                log_path=str(home / "logs" / f"t{i}.log"),
                token=uuid.uuid4().hex,
            )
            for i in range(tasks)
        ]
        executor = LocalExecutor(parallelism, home=str(home), options=options)
        started = time.perf_counter()
        executor.start()
        for workload in workloads:
            executor.queue_workload(workload)
        finished = 0
        while finished < tasks:
            executor.heartbeat()
            for state, _report in executor.get_event_buffer().values():
                if state.is_finished:
                    finished += 1
            if finished >= tasks:
                break
            executor.wait_for_events(0.05)
        executor.end()
        elapsed = time.perf_counter() - started
        return elapsed
    finally:
        remove_after_last_round(home)


def run_threads(tasks: int, parallelism: int) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(parallelism) as pool:
        for _ in pool.map(lambda _i: subprocess.run(["/bin/true"]), range(tasks)):
            pass
    return time.perf_counter() - started


def run_threads_with_logs(tasks: int, parallelism: int) -> float:
    """The floor plus what the product must also do per try: a log file of its own, a new session."""
    home = Path(tempfile.mkdtemp(prefix="bench-threads-"))
    remove_after_last_round(home)

    def spawn(index: int) -> None:
        fd = os.open(home / f"t{index}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            subprocess.run(
                ["/bin/true"],
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            os.close(fd)

    started = time.perf_counter()
    with ThreadPoolExecutor(parallelism) as pool:
        for _ in pool.map(spawn, range(tasks)):
            pass
    return time.perf_counter() - started


def run_xargs(tasks: int, parallelism: int) -> float:
    started = time.perf_counter()
    subprocess.run(
        ["sh", "-c", f"seq {tasks} | xargs -P {parallelism} -n 1 /bin/true"],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--parallelism", type=int, nargs="+", default=[2, 8])
    parser.add_argument("--json", help="also write the report to this file")
    args = parser.parse_args()
    compile_product()

    report: dict = {
        "benchmark": "local_executor",
        "machine": machine(),
        "tasks": args.tasks,
        "rounds": args.rounds,
        "results": {},
    }
    # One untimed warm-up: the forkserver, imports, page cache.
    run_local(min(args.tasks, 200), 2)
    for p in args.parallelism:
        print(f"parallelism {p}, {args.tasks} tasks of /bin/true:", file=sys.stderr)
        rounds = Rounds(
            {
                "local": partial(run_local, args.tasks, p),
                "threads": partial(run_threads, args.tasks, p),
                "threads_logs": partial(run_threads_with_logs, args.tasks, p),
                "xargs": partial(run_xargs, args.tasks, p),
            },
            args.rounds,
        ).run()
        ratio = rounds.ratio("local", "threads")
        entry = {
            "local_s": rounds.summary("local").as_dict(),
            "threads_s": rounds.summary("threads").as_dict(),
            "threads_logs_s": rounds.summary("threads_logs").as_dict(),
            "xargs_s": rounds.summary("xargs").as_dict(),
            "local_over_threads": ratio.as_dict(3),
            "local_over_threads_logs": rounds.ratio("local", "threads_logs").as_dict(3),
            "xargs_over_threads": rounds.ratio("xargs", "threads").as_dict(3),
            "local_ms_per_task": round(rounds.summary("local").median / args.tasks * 1000, 3),
            # Where the time goes: busy CPU of the whole machine per task.
            "cpu_ms_per_task": {
                name: rounds.cpu_ms_per_task(name, args.tasks) for name in rounds.cases
            },
        }
        if p == 2:
            entry["target"] = TARGET_P2
            entry["verdict"] = verdict(ratio.median, TARGET_P2)
        report["results"][f"p{p}"] = entry
        print(
            f"  local   {rounds.summary('local').text()}\n"
            f"  threads {rounds.summary('threads').text()}\n"
            f"  threads+logs {rounds.summary('threads_logs').text()}\n"
            f"  xargs   {rounds.summary('xargs').text()}\n"
            f"  machine CPU per task (ms): {entry['cpu_ms_per_task']}\n"
            f"  local/threads {ratio.text(unit='x')}"
            f"  local/threads+logs {rounds.ratio('local', 'threads_logs').text(unit='x')}"
            + (f"  target <= {TARGET_P2}: {entry['verdict']}" if p == 2 else ""),
            file=sys.stderr,
        )
    write_report(args.json, report)


if __name__ == "__main__":
    main()
