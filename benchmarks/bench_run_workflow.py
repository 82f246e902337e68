"""The whole product as a user runs it, against a plain thread-pool script.

Each round runs, in rotating order, two whole commands timed from spawn to exit:

- ``product``: ``execconsole run WORKFLOW --headless --parallelism 2`` on a fresh
  EXECCONSOLE_HOME (new store, logs, claims), WORKFLOW being a generated file of
  N independent tasks each running ``/bin/true``;
- ``baseline``: ``python benchmarks/baseline_spawn.py N 2``: the same N spawns
  with a thread pool of 2 calling ``subprocess.run`` (interpreter start included).

Both are started through the real executables (the console script installed
next to this interpreter, and this interpreter), not through pyenv shims.
The ratio product/baseline is computed per round (target <= 1.3).

    python benchmarks/bench_run_workflow.py                  # 10,000 tasks, 3 rounds
    python benchmarks/bench_run_workflow.py --rounds 7 --json out.json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    PYTHON,
    REPO,
    Rounds,
    Summary,
    check_tree,
    clean_env,
    compile_product,  # noqa: E402
    console_script,
    machine,
    remove_after_last_round,
    timed_command,
    verdict,
    write_report,
)

TARGET = 1.3
HERE = Path(__file__).resolve().parent


def write_workflow(path: Path, tasks: int) -> None:
    lines = ['id = "bench"', 'description = "generated: independent /bin/true tasks"', ""]
    for index in range(tasks):
        lines += ["[[task]]", f'id = "t{index:05d}"', 'command = ["/bin/true"]', ""]
    path.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--json", help="also write the report to this file")
    parser.add_argument("--keep", action="store_true", help="keep the product homes")
    args = parser.parse_args()
    compile_product()

    work = Path(tempfile.mkdtemp(prefix="bench-run-"))
    workflow = work / "bench.toml"
    write_workflow(workflow, args.tasks)
    script = console_script()
    check_tree(clean_env())
    homes: list[Path] = []
    # Where a product run's time goes, from the store's own timestamps: from
    # the spawn to the first try's start, and from the last try's end to exit.
    phases: dict[str, list[float]] = {"spawn_to_first_start": [], "last_end_to_exit": []}

    def product() -> float:
        home = Path(tempfile.mkdtemp(prefix="home-", dir=work))
        homes.append(home)
        if not args.keep:
            remove_after_last_round(home)
        spawned = time.time()
        elapsed = timed_command(
            [script, "run", str(workflow), "--headless", "--parallelism", str(args.parallelism)],
            env=clean_env(EXECCONSOLE_HOME=str(home)),
            cwd=work,
        )
        # Untimed: check every task really ran once. Homes are deleted only
        # after the last round (see deferred_cleanup in _common.py).
        first_start, last_end = check_home(home, args.tasks)
        phases["spawn_to_first_start"].append(first_start - spawned)
        phases["last_end_to_exit"].append(spawned + elapsed - last_end)
        return elapsed

    def baseline() -> float:
        return timed_command(
            [PYTHON, str(HERE / "baseline_spawn.py"), str(args.tasks), str(args.parallelism)],
            env=clean_env(),
            cwd=work,
        )

    report: dict = {
        "benchmark": "run_workflow",
        "machine": machine(),
        "tasks": args.tasks,
        "parallelism": args.parallelism,
        "rounds": args.rounds,
        "commands": {
            "product": f"EXECCONSOLE_HOME=<fresh dir> {script} run bench.toml --headless --parallelism {args.parallelism}",
            "baseline": f"{PYTHON} benchmarks/baseline_spawn.py {args.tasks} {args.parallelism}",
        },
    }
    print(f"{args.tasks} tasks of /bin/true, parallelism {args.parallelism}:", file=sys.stderr)
    if not args.keep:
        remove_after_last_round(work)
    rounds = Rounds({"product": product, "baseline": baseline}, args.rounds).run()
    ratio = rounds.ratio("product", "baseline")
    report["results"] = {
        "product_s": rounds.summary("product").as_dict(),
        "baseline_s": rounds.summary("baseline").as_dict(),
        "product_over_baseline": ratio.as_dict(3),
        "product_ms_per_task": round(rounds.summary("product").median / args.tasks * 1000, 3),
        "baseline_ms_per_task": round(rounds.summary("baseline").median / args.tasks * 1000, 3),
        # Where the time goes: busy CPU of the whole machine per task (the
        # product's includes its untimed check of the store).
        "cpu_ms_per_task": {
            name: rounds.cpu_ms_per_task(name, args.tasks) for name in ("product", "baseline")
        },
        "product_phases_s": {name: Summary(values).as_dict(3) for name, values in phases.items()},
        "target": TARGET,
        "verdict": verdict(ratio.median, TARGET),
    }
    print(
        f"  product  {rounds.summary('product').text()}\n"
        f"  baseline {rounds.summary('baseline').text()}\n"
        f"  machine CPU per task (ms): {report['results']['cpu_ms_per_task']}\n"
        + "".join(
            f"  product {name.replace('_', ' ')}: {Summary(values).text()}\n"
            for name, values in phases.items()
        )
        + f"  product/baseline {ratio.text(unit='x')}  target <= {TARGET}: {report['results']['verdict']}",
        file=sys.stderr,
    )
    write_report(args.json, report)


def check_home(home: Path, tasks: int) -> tuple[float, float]:
    """Every task of the run succeeded exactly once (read straight from the store).

    Returns when the first try started and the last one ended (Unix times).
    """
    import sqlite3
    from datetime import datetime

    conn = sqlite3.connect(home / "execconsole.db")
    try:
        rows = dict(conn.execute("SELECT state, count(*) FROM task_instances GROUP BY state"))
        first_start, last_end = conn.execute(
            "SELECT min(start_date), max(end_date) FROM task_instances"
        ).fetchone()
    finally:
        conn.close()
    if rows != {"success": tasks}:
        raise RuntimeError(f"the product run did not end with {tasks} successes: {rows}")
    return (
        datetime.fromisoformat(first_start).timestamp(),
        datetime.fromisoformat(last_end).timestamp(),
    )


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
