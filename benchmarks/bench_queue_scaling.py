"""Per-task cost with a long queue vs a short one, and the engine's memory.

Two stores are built once (untimed) through ``Store.submit``: one run of
SMALL (default 1,000) tasks and one run of LARGE (default 100,000) tasks, each
task ``/bin/true``, all scheduled. Every round, for each store in rotating
order, a fresh copy is opened by a fresh engine process (``Runtime`` ->
``Engine`` with the LocalExecutor at parallelism 2, as ``execconsole run
--headless`` builds it, including the run's progress and end-of-run checks),
and the time to finish the first N (default 1,000) tasks is measured from
``Engine.start()`` returning. The ratio large/small per round is the
per-task cost growth (target <= 1.1). The engine process's RSS (current and
peak, psutil / getrusage) is recorded with LARGE queued (target <= 300 MB).

    python benchmarks/bench_queue_scaling.py                  # 7 rounds, N=1,000
    python benchmarks/bench_queue_scaling.py --rounds 9 --large 200000 --json out.json
    python benchmarks/bench_queue_scaling.py --loop engine    # bare Engine.iterate() loop
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
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
    build_store,
    clean_env,
    compile_product,  # noqa: E402
    machine,
    verdict,
    write_report,
)

TARGET_RATIO = 1.1
TARGET_RSS_MB = 300.0
DAG, RUN = "bench", "queue"


# ---- the child: one engine process --------------------------------------------
def _vm_hwm_kb() -> float:
    """This process's peak resident set (VmHWM). Unlike getrusage's ru_maxrss it is
    not inherited from the parent across fork and exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return float(line.split()[1])
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def child(home: str, first: int, parallelism: int, loop: str) -> None:
    sys.path.insert(0, str(REPO))
    import psutil

    from console.runtime import Runtime

    runtime = Runtime.load(home=home, executor="local", parallelism=parallelism)
    engine = runtime.build_engine()
    watch = None
    if loop == "headless":
        import io

        from console.cli.main import app  # noqa: F401  (registers the commands)
        from console.cli.run_cmd import RunWatch
        from console.progress import ProgressBar

        total = runtime.store().unfinished_count(dag_id=DAG, run_id=RUN)
        watch = RunWatch(runtime.store(), DAG, RUN, ProgressBar(total, stream=io.StringIO()))
        watch.track(submitted=total)  # as run --headless does for the run it has just stored
    process = psutil.Process()
    rss_before = process.memory_info().rss
    start_began = time.perf_counter()
    engine.start()
    started = time.perf_counter()
    cpu_started = time.process_time()
    # The same loop as console.headless.host_engine, stopping at `first` finished tries.
    last_check = 0.0
    while engine.stats.finished < first:
        engine.iterate()
        if watch is not None:
            now = time.monotonic()
            if now - last_check >= 0.1:
                last_check = now
                watch.on_tick(engine)
                watch.finished(engine)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    rss = process.memory_info().rss
    ticks = engine.stats.ticks
    engine.shutdown("kill", timeout=5)
    runtime.close()
    peak_kb = _vm_hwm_kb()
    print(
        json.dumps(
            {
                "elapsed": elapsed,
                "engine_cpu": cpu,
                "start": started - start_began,
                "finished": engine.stats.finished,
                "ticks": ticks,
                "rss_mb_before_start": rss_before / 2**20,
                "rss_mb": rss / 2**20,
                "peak_rss_mb": peak_kb / 1024,
            }
        )
    )


# ---- the parent ---------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--first", type=int, default=1_000, help="tries timed in each case")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument(
        "--loop",
        choices=["headless", "engine"],
        default="headless",
        help="headless: with run --headless's progress/end checks (default); engine: bare loop",
    )
    parser.add_argument("--json", help="also write the report to this file")
    parser.add_argument(
        "--child", nargs=4, metavar=("HOME", "FIRST", "P", "LOOP"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    compile_product()
    if args.child:
        home, first, p, loop = args.child
        child(home, int(first), int(p), loop)
        return
    if args.first > args.small:
        parser.error("--first must not exceed --small")

    started_on = machine()
    work = Path(tempfile.mkdtemp(prefix="bench-queue-"))
    templates = {}
    for name, count in (("small", args.small), ("large", args.large)):
        started = time.perf_counter()
        templates[name] = work / f"{name}.db"
        build_store(templates[name], [(DAG, RUN, count)])
        print(
            f"built {name} store ({count} tasks) in {time.perf_counter() - started:.1f}s",
            file=sys.stderr,
        )
    details: dict[str, list[dict]] = {"small": [], "large": []}

    def case(name: str) -> float:
        home = Path(tempfile.mkdtemp(prefix=f"home-{name}-", dir=work))
        shutil.copy(templates[name], home / "execconsole.db")
        completed = subprocess.run(
            [
                PYTHON,
                __file__,
                "--child",
                str(home),
                str(args.first),
                str(args.parallelism),
                args.loop,
            ],
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
        )
        shutil.rmtree(home, ignore_errors=True)
        if completed.returncode != 0:
            raise RuntimeError(f"engine child failed:\n{completed.stderr[-3000:]}")
        result = json.loads(completed.stdout.strip().splitlines()[-1])
        details[name].append(result)
        return float(result["elapsed"])

    print(
        f"first {args.first} tries with {args.small} vs {args.large} queued, parallelism {args.parallelism}, loop {args.loop}:",
        file=sys.stderr,
    )
    try:
        rounds = Rounds(
            {"small": lambda: case("small"), "large": lambda: case("large")}, args.rounds
        ).run()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ratio = rounds.ratio("large", "small")
    cpu_large = Summary([d["engine_cpu"] for d in details["large"]])
    cpu_small = Summary([d["engine_cpu"] for d in details["small"]])
    cpu_ratio = Summary(
        [
            a["engine_cpu"] / b["engine_cpu"]
            for a, b in zip(details["large"], details["small"], strict=True)
        ]
    )
    # The loop stops once `first` tries have finished, but a tick finishes
    # several: with a long queue behind them, a few more than `first` are done
    # by then (with SMALL = FIRST, never more). The headline ratio is the
    # plain time; this one divides each case's time by the tries it finished.
    per_try_ratio = Summary(
        [
            (a["elapsed"] / a["finished"]) / (b["elapsed"] / b["finished"])
            for a, b in zip(details["large"], details["small"], strict=True)
        ]
    )
    rss = Summary([d["rss_mb"] for d in details["large"]])
    peak = Summary([d["peak_rss_mb"] for d in details["large"]])
    rss_small = Summary([d["rss_mb"] for d in details["small"]])
    report = {
        "benchmark": "queue_scaling",
        "machine": started_on,
        "small": args.small,
        "large": args.large,
        "first": args.first,
        "parallelism": args.parallelism,
        "loop": args.loop,
        "rounds": args.rounds,
        "results": {
            "small_s": rounds.summary("small").as_dict(),
            "large_s": rounds.summary("large").as_dict(),
            "small_ms_per_task": round(rounds.summary("small").median / args.first * 1000, 3),
            "large_ms_per_task": round(rounds.summary("large").median / args.first * 1000, 3),
            "large_over_small": ratio.as_dict(3),
            "finished_small": Summary([d["finished"] for d in details["small"]]).as_dict(0),
            "finished_large": Summary([d["finished"] for d in details["large"]]).as_dict(0),
            "per_finished_try_large_over_small": per_try_ratio.as_dict(3),
            "engine_cpu_s_small": cpu_small.as_dict(),
            "engine_cpu_s_large": cpu_large.as_dict(),
            "engine_cpu_large_over_small": cpu_ratio.as_dict(3),
            "target_ratio": TARGET_RATIO,
            "ratio_verdict": verdict(ratio.median, TARGET_RATIO),
            "engine_rss_mb_large": rss.as_dict(1),
            "engine_peak_rss_mb_large": peak.as_dict(1),
            "engine_rss_mb_small": rss_small.as_dict(1),
            "target_rss_mb": TARGET_RSS_MB,
            "rss_verdict": verdict(peak.high, TARGET_RSS_MB),
            "start_s_large": Summary([d["start"] for d in details["large"]]).as_dict(),
            "start_s_small": Summary([d["start"] for d in details["small"]]).as_dict(),
            "ticks_large": Summary([d["ticks"] for d in details["large"]]).as_dict(0),
            "ticks_small": Summary([d["ticks"] for d in details["small"]]).as_dict(0),
        },
    }
    print(
        f"  small {rounds.summary('small').text()}\n"
        f"  large {rounds.summary('large').text()}\n"
        f"  large/small {ratio.text(unit='x')}  target <= {TARGET_RATIO}: {report['results']['ratio_verdict']}\n"
        f"  per finished try (large finished {Summary([d['finished'] for d in details['large']]).median:.0f}): "
        f"{per_try_ratio.text(unit='x')}\n"
        f"  engine CPU small {cpu_small.text()}, large {cpu_large.text()}, large/small {cpu_ratio.text(unit='x')}\n"
        f"  engine RSS with {args.large} queued: {rss.text(unit=' MB', digits=1)}; "
        f"peak {peak.text(unit=' MB', digits=1)}  target <= {TARGET_RSS_MB:g} MB: {report['results']['rss_verdict']}",
        file=sys.stderr,
    )
    write_report(args.json, report)


if __name__ == "__main__":
    main()
