"""Two checkouts' LocalExecutors against the same thread pool, alternating: did a change help?

Each round times, for each checkout in an order that alternates from round to
round, the ``local`` case of ``bench_local_executor.py`` (N × ``/bin/true`` at
parallelism P, from ``start()`` to the last event) in a fresh interpreter
whose ``PYTHONPATH`` is that checkout, then the thread-pool floor right after
it. The ratio local/threads is taken pair by pair, so the machine's drift
cancels out; the report gives each checkout's median ratio.

Make the other checkout with ``git worktree add /tmp/before <commit>`` (and
``git worktree remove /tmp/before`` afterwards).

    python benchmarks/ab_local_executor.py --before /tmp/before                 # this checkout is "after"
    python benchmarks/ab_local_executor.py --before /tmp/before --rounds 12 --json out.json
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PYTHON, REPO, Summary, machine, write_report  # noqa: E402
from bench_local_executor import run_threads  # noqa: E402  (the same floor as the benchmark)

# Run inside the checkout being timed: its own bench_local_executor.run_local.
_TIME_LOCAL = """
import sys
sys.path.insert(0, "benchmarks")
from bench_local_executor import run_local
from executors.process_context import prepare_process_context
prepare_process_context()
run_local(20, {parallelism})  # workers and forkserver warm, as in the benchmark itself
print(run_local({tasks}, {parallelism}))
"""


def time_local(checkout: Path, tasks: int, parallelism: int) -> float:
    code = _TIME_LOCAL.format(tasks=tasks, parallelism=parallelism)
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    done = subprocess.run(
        [PYTHON, "-c", code], cwd=checkout, env=env, capture_output=True, text=True, check=True
    )
    return float(done.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="the other checkout")
    parser.add_argument("--after", type=Path, default=REPO, help="default: this checkout")
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--json", help="also write the report to this file")
    args = parser.parse_args()
    for checkout in (args.before, args.after):
        if not (checkout / "executors" / "local.py").is_file():
            parser.error(f"{checkout} is not a checkout of this project; see --help")

    report = {"benchmark": "ab_local_executor", "machine": machine()}
    checkouts = {"before": args.before.resolve(), "after": args.after.resolve()}
    ratios: dict[str, list[float]] = {name: [] for name in checkouts}
    for round_index in range(args.rounds):
        order = list(checkouts) if round_index % 2 == 0 else list(reversed(checkouts))
        for name in order:
            local = time_local(checkouts[name], args.tasks, args.parallelism)
            threads = run_threads(args.tasks, args.parallelism)
            ratios[name].append(local / threads)
            print(
                f"round {round_index + 1} {name}: {local:.3f} s / {threads:.3f} s", file=sys.stderr
            )
    report.update(
        tasks=args.tasks,
        parallelism=args.parallelism,
        rounds=args.rounds,
        checkouts={name: str(path) for name, path in checkouts.items()},
        local_over_threads={name: Summary(values).as_dict() for name, values in ratios.items()},
    )
    write_report(args.json, report)


if __name__ == "__main__":
    main()
