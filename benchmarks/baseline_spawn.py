"""Baseline for bench_run_workflow.py: N runs of /bin/true through a thread pool.

python benchmarks/baseline_spawn.py N PARALLELISM
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor


def main() -> None:
    tasks = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    parallelism = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    failed = 0
    with ThreadPoolExecutor(parallelism) as pool:
        for completed in pool.map(lambda _i: subprocess.run(["/bin/true"]), range(tasks)):
            failed += completed.returncode != 0
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
