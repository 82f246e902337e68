"""Where a `run --headless` spends its CPU: the engine's own process against the rest.

Runs ``execconsole run WORKFLOW --headless --parallelism 2`` on a fresh home,
sampling with psutil every 50 ms the CPU time of the engine (the command's
own process) and of each process below it (forkserver, workers; the
``/bin/true`` tasks are left out: they live for a millisecond). The last
sample before exit is kept, so up to 50 ms of each is missed. Nothing is timed
inside the product.

    python benchmarks/engine_cpu_split.py WORKFLOW [--rounds N] [--checkout DIR]

WORKFLOW is a file such as bench_run_workflow.py writes (10,000 /bin/true tasks);
--checkout puts another checkout first on PYTHONPATH (an A/B of two commits).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil


def one_run(workflow: Path, checkout: str | None) -> dict[str, float]:
    home = tempfile.mkdtemp(prefix="cpu-split-")
    env = dict(os.environ, EXECCONSOLE_HOME=home)
    if checkout:
        env["PYTHONPATH"] = checkout
    script = Path(sys.executable).with_name("execconsole")
    started = time.perf_counter()
    command = [str(script), "run", str(workflow), "--headless", "--parallelism", "2"]
    process = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    engine = psutil.Process(process.pid)
    engine_cpu = 0.0
    below: dict[int, float] = {}
    while process.poll() is None:
        try:
            times = engine.cpu_times()
            engine_cpu = times.user + times.system
            for child in engine.children(recursive=True):
                try:
                    if child.name() != "true":
                        child_times = child.cpu_times()
                        below[child.pid] = child_times.user + child_times.system
                except psutil.Error:
                    pass
        except psutil.Error:
            pass
        time.sleep(0.05)
    return {
        "wall_s": round(time.perf_counter() - started, 3),
        "engine_cpu_s": round(engine_cpu, 3),
        "workers_cpu_s": round(sum(below.values()), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workflow", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--checkout", help="a checkout to put first on PYTHONPATH")
    args = parser.parse_args()
    for _round in range(args.rounds):
        print(one_run(args.workflow.resolve(), args.checkout), flush=True)


if __name__ == "__main__":
    main()
