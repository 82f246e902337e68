"""Run every benchmark, keep each JSON report, and print a summary table.

    python benchmarks/run_all.py                    # defaults: about 8-10 minutes on 2 cores
    python benchmarks/run_all.py --quick            # fewer rounds and tasks: about 3 minutes
    python benchmarks/run_all.py --only cli_latency queue_scaling
    python benchmarks/run_all.py --summary-only     # re-print the table from the last reports

Reports go to benchmarks/results/<name>.json (``--out`` to change).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import TRASH_VARIABLE

HERE = Path(__file__).resolve().parent

BENCHMARKS: dict[str, tuple[str, list[str], list[str]]] = {
    # name: (script, default args, --quick args)
    "local_executor": ("bench_local_executor.py", [], ["--rounds", "3"]),
    "run_workflow": ("bench_run_workflow.py", [], ["--rounds", "2", "--tasks", "4000"]),
    "queue_scaling": ("bench_queue_scaling.py", [], ["--rounds", "3"]),
    "cli_latency": ("bench_cli_latency.py", [], ["--rounds", "3"]),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--summary-only", action="store_true")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = args.only or list(BENCHMARKS)
    if not args.summary_only:
        # Benchmarks move their finished homes here; deleted once all have run
        # (see remove_after_last_round in _common.py).
        trash = Path(tempfile.mkdtemp(prefix="bench-trash-", dir=os.environ.get("TMPDIR")))
        environment = {**os.environ, TRASH_VARIABLE: str(trash)}
        try:
            for name in names:
                script, default, quick = BENCHMARKS[name]
                command = [sys.executable, str(HERE / script), *(quick if args.quick else default)]
                command += ["--json", str(out / f"{name}.json")]
                print(f"== {name}: {' '.join(command)}", file=sys.stderr, flush=True)
                subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=environment)
        finally:
            shutil.rmtree(trash, ignore_errors=True)
    print(summary(out, names))


def _load(out: Path, name: str) -> dict | None:
    path = out / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def summary(out: Path, names: list[str]) -> str:
    rows = [
        "| benchmark | measured (median) | baseline (median) | ratio (median, range) | target | met |",
        "|---|---|---|---|---|---|",
    ]
    report = _load(out, "local_executor") if "local_executor" in names else None
    if report:
        for key, entry in report["results"].items():
            ratio = entry["local_over_threads"]
            rows.append(
                f"| LocalExecutor, {report['tasks']} × /bin/true, parallelism {key[1:]} "
                f"| {entry['local_s']['median']:.3f} s | threads {entry['threads_s']['median']:.3f} s, "
                f"xargs {entry['xargs_s']['median']:.3f} s "
                f"| {ratio['median']:.2f}× ({ratio['min']:.2f}–{ratio['max']:.2f}) "
                f"| {'≤ 1.15×' if key == 'p2' else '(report)'} | {entry.get('verdict', '—')} |"
            )
    report = _load(out, "run_workflow") if "run_workflow" in names else None
    if report:
        entry = report["results"]
        ratio = entry["product_over_baseline"]
        rows.append(
            f"| `execconsole run --headless`, {report['tasks']} tasks "
            f"| {entry['product_s']['median']:.2f} s | thread pool {entry['baseline_s']['median']:.2f} s "
            f"| {ratio['median']:.2f}× ({ratio['min']:.2f}–{ratio['max']:.2f}) | ≤ 1.3× | {entry['verdict']} |"
        )
    report = _load(out, "queue_scaling") if "queue_scaling" in names else None
    if report:
        entry = report["results"]
        ratio, cpu = entry["large_over_small"], entry["engine_cpu_large_over_small"]
        rows.append(
            f"| first {report['first']} tasks, {report['large']} vs {report['small']} queued "
            f"| {entry['large_s']['median']:.2f} s | {entry['small_s']['median']:.2f} s "
            f"| {ratio['median']:.2f}× ({ratio['min']:.2f}–{ratio['max']:.2f}); engine CPU "
            f"{cpu['median']:.2f}× | ≤ 1.1× | {entry['ratio_verdict']} |"
        )
        peak = entry["engine_peak_rss_mb_large"]
        rows.append(
            f"| engine RSS, {report['large']} queued | peak {peak['max']:.0f} MB "
            f"| ({entry['engine_rss_mb_small']['median']:.0f} MB with {report['small']}) | — | ≤ 300 MB "
            f"| {entry['rss_verdict']} |"
        )
    report = _load(out, "cli_latency") if "cli_latency" in names else None
    if report:
        results = report["results"]
        floor = results["python"]["all_runs_ms"]["median"]
        for name, label in (
            ("tasks_list", "`tasks list --json --state running`, 100k rows"),
            ("help", "`execconsole --help`"),
        ):
            entry = results[name]
            rows.append(
                f"| {label} | {entry['all_runs_ms']['median']:.0f} ms "
                f"| `python -c pass` {floor:.0f} ms | {entry['over_python_floor']['median']:.2f}× floor "
                f"| ≤ 200 ms | {entry['verdict']} |"
            )
    return "\n".join(rows)


if __name__ == "__main__":
    main()
