"""What a log file per try costs on this machine's file system, and what the spool saves.

Every round runs these cases in rotating order, each right after creating and
deleting ``--churn`` files next to where it writes (untimed): on this VM's
ext4 (no journal), creating files is several times slower for a minute or two
after many were deleted, as after a test suite, a log clean-up or the previous
run's homes being removed.

- ``spool``: ``LocalExecutor(parallelism)`` as configured by default, running
  N workloads of ``/bin/true``: silent tries that end within the quiet start
  share their worker's spool and leave no log file (executors/log_spool.py);
- ``every_try``: the same with ``log_every_try = true``: one new (empty) log
  file per try, as before the spool;
- ``threads``: a thread pool calling ``subprocess.run(["/bin/true"])`` (the floor);
- ``threads_logs``: the same pool, each task writing to a log file of its own.

Reports per-case medians, per-round ratios and machine-wide busy CPU per task.

    python benchmarks/bench_log_files.py                      # 2,000 tasks, 20,000 files churned, 5 rounds
    python benchmarks/bench_log_files.py --churn 0 --rounds 7 --json out.json
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import Rounds, compile_product, machine, write_report  # noqa: E402
from bench_local_executor import run_local, run_threads, run_threads_with_logs  # noqa: E402


def churn(count: int) -> None:
    """Create and delete ``count`` files in a new folder of TMPDIR (untimed)."""
    if count <= 0:
        return
    folder = Path(tempfile.mkdtemp(prefix="churn-"))
    for index in range(count):
        os.close(os.open(folder / f"f{index}", os.O_WRONLY | os.O_CREAT, 0o600))
    shutil.rmtree(folder)


def after_churn(count: int, case: partial[float]) -> float:
    churn(count)
    return case()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument(
        "--churn", type=int, default=20_000, help="files created and deleted before each case"
    )
    parser.add_argument("--json", help="also write the report to this file")
    args = parser.parse_args()
    compile_product()

    n, p = args.tasks, args.parallelism
    run_local(min(n, 200), p)  # untimed warm-up: the forkserver, imports, page cache
    cases = {
        "spool": partial(run_local, n, p),
        "every_try": partial(run_local, n, p, {"log_every_try": True}),
        "threads": partial(run_threads, n, p),
        "threads_logs": partial(run_threads_with_logs, n, p),
    }
    print(
        f"{n} tasks of /bin/true, parallelism {p}, {args.churn} files churned before each case:",
        file=sys.stderr,
    )
    rounds = Rounds(
        {name: partial(after_churn, args.churn, case) for name, case in cases.items()}, args.rounds
    ).run()
    results = {
        **{f"{name}_s": rounds.summary(name).as_dict() for name in cases},
        "spool_over_threads": rounds.ratio("spool", "threads").as_dict(3),
        "every_try_over_threads": rounds.ratio("every_try", "threads").as_dict(3),
        "every_try_over_spool": rounds.ratio("every_try", "spool").as_dict(3),
        "threads_logs_over_threads": rounds.ratio("threads_logs", "threads").as_dict(3),
        "cpu_ms_per_task": {name: rounds.cpu_ms_per_task(name, n) for name in cases},
    }
    for name in cases:
        print(f"  {name:13s} {rounds.summary(name).text()}", file=sys.stderr)
    print(
        f"  spool/threads {rounds.ratio('spool', 'threads').text(unit='x')}"
        f"  every_try/threads {rounds.ratio('every_try', 'threads').text(unit='x')}"
        f"  every_try/spool {rounds.ratio('every_try', 'spool').text(unit='x')}",
        file=sys.stderr,
    )
    report = {
        "benchmark": "log_files",
        "machine": machine(),
        "tasks": n,
        "parallelism": p,
        "churn": args.churn,
        "rounds": args.rounds,
        "results": results,
    }
    write_report(args.json, report)


if __name__ == "__main__":
    main()
