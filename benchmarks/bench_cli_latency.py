"""Whole-process latency of quick CLI commands, timed by hyperfine.

A store holding LARGE (default 100,000) task instances is built once (100 runs
of 1,000 tasks; all succeeded except the last run: 8 running, 2 queued, the
rest scheduled). Then, every round, one ``hyperfine -N --warmup 3 --runs R
--export-json`` invocation times, in an order that rotates from round to round:

- ``tasks_list``: ``execconsole tasks list --json --state running`` (target <= 200 ms median)
- ``help``: ``execconsole --help`` (target <= 200 ms median)
- ``python``: ``python -c pass``, the interpreter floor, for context

``execconsole`` is the console script installed next to this interpreter.
Typed in a shell here it would go through a pyenv shim first; with
``--shim`` that variant is timed too, for context.

    python benchmarks/bench_cli_latency.py                   # 5 rounds x 10 runs
    python benchmarks/bench_cli_latency.py --rounds 10 --runs 20 --json out.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    PYTHON,
    Summary,
    build_store,
    check_tree,
    clean_env,
    compile_product,  # noqa: E402
    console_script,
    machine,
    verdict,
    write_report,
)

TARGET_MS = 200.0


def make_store(path: Path, total: int) -> None:
    runs = max(1, total // 1000)
    per_run = total // runs
    build_store(path, [("bench", f"run{index:03d}", per_run) for index in range(runs)])
    conn = sqlite3.connect(path)
    try:
        last = f"run{runs - 1:03d}"
        now = "2026-11-21T00:00:00Z"
        conn.execute(
            "UPDATE task_instances SET state = 'success', start_date = ?, end_date = ?, "
            "duration = 0.001, exit_code = 0, pid = 1 WHERE run_id != ?",
            (now, now, last),
        )
        ids = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM task_instances WHERE run_id = ? ORDER BY id", (last,)
            )
        ]
        conn.executemany(
            "UPDATE task_instances SET state = 'running', start_date = ?, pid = ? WHERE id = ?",
            [(now, 10_000 + i, ti) for i, ti in enumerate(ids[:8])],
        )
        conn.executemany(
            "UPDATE task_instances SET state = 'queued' WHERE id = ?", [(ti,) for ti in ids[8:10]]
        )
        conn.commit()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=10, help="hyperfine runs per command per round")
    parser.add_argument("--shim", action="store_true", help="also time `execconsole` found on PATH")
    parser.add_argument("--json", help="also write the report to this file")
    args = parser.parse_args()
    compile_product()
    if shutil.which("hyperfine") is None:
        raise SystemExit("hyperfine is not installed")

    started_on = machine()
    work = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    home = work / "home"
    home.mkdir()
    make_store(home / "execconsole.db", args.tasks)
    script = console_script()
    commands = {
        "tasks_list": f"{script} tasks list --json --state running",
        "help": f"{script} --help",
        "python": f"{PYTHON} -c pass",
    }
    if args.shim and shutil.which("execconsole"):
        commands["help_via_path"] = "execconsole --help"
        commands["tasks_list_via_path"] = "execconsole tasks list --json --state running"
    env = clean_env(EXECCONSOLE_HOME=str(home))
    check_tree(env)
    # Sanity: the listing really is one JSON document with the 8 running tries.
    listed = subprocess.run(
        commands["tasks_list"].split(), env=env, capture_output=True, text=True, check=True
    )
    assert len(json.loads(listed.stdout)) == 8, listed.stdout[:500]

    names = list(commands)
    times: dict[str, list[float]] = {name: [] for name in names}
    round_medians: dict[str, list[float]] = {name: [] for name in names}
    try:
        for index in range(args.rounds):
            shift = index % len(names)
            order = names[shift:] + names[:shift]
            export = work / f"round{index}.json"
            timing = subprocess.run(
                [
                    "hyperfine",
                    "-N",
                    "--warmup",
                    "3",
                    "--runs",
                    str(args.runs),
                    "--style",
                    "none",
                    "--export-json",
                    str(export),
                    *[commands[name] for name in order],
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            if timing.returncode != 0:
                raise SystemExit(f"hyperfine failed:\n{timing.stderr[-3000:]}")
            results = json.loads(export.read_text())["results"]
            line = []
            for name, result in zip(order, results, strict=True):
                times[name] += result["times"]
                round_medians[name].append(result["median"])
                line.append(f"{name}={result['median'] * 1000:.0f}ms")
            print(f"  round {index + 1}/{args.rounds}: " + "  ".join(line), file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    report: dict = {
        "benchmark": "cli_latency",
        "machine": started_on,
        "tasks_in_store": args.tasks,
        "rounds": args.rounds,
        "runs_per_round": args.runs,
        "commands": {
            name: f"EXECCONSOLE_HOME=<store dir> hyperfine -N --warmup 3 --runs {args.runs} '{cmd}' ..."
            for name, cmd in commands.items()
        },
        "results": {},
    }
    for name in names:
        summary = Summary(times[name])
        per_round = Summary(round_medians[name])
        ratio = Summary(
            [a / b for a, b in zip(round_medians[name], round_medians["python"], strict=True)]
        )
        entry = {
            "all_runs_ms": Summary([t * 1000 for t in times[name]]).as_dict(1),
            "round_medians_ms": Summary([t * 1000 for t in round_medians[name]]).as_dict(1),
            "over_python_floor": ratio.as_dict(2),
            "minus_python_floor_ms": round(
                (statistics.median(times[name]) - statistics.median(times["python"])) * 1000, 1
            ),
        }
        if name in ("tasks_list", "help"):
            entry["target_ms"] = TARGET_MS
            entry["verdict"] = verdict(summary.median * 1000, TARGET_MS)
        report["results"][name] = entry
        print(
            f"  {name:20} median {summary.median * 1000:6.1f} ms over all runs; "
            f"round medians {per_round.text(unit=' ms', scale=1000, digits=1)}; "
            f"x python floor {ratio.median:.2f}"
            + (f"  target <= {TARGET_MS:g} ms: {entry['verdict']}" if "verdict" in entry else ""),
            file=sys.stderr,
        )
    write_report(args.json, report)


if __name__ == "__main__":
    main()
