"""Helpers shared by the benchmark scripts: A/B rounds, statistics, reports.

Every benchmark compares the product with a baseline measured in the same run.
Cases are run in rounds; inside a round each case runs once, in an order that
rotates from round to round, so slow drift of the machine (other jobs on its
two cores) hits every case alike. A ratio is computed per round (product time
over baseline time of that same round) and summarised by its median and spread.

Only public tools: ``time.perf_counter``, ``subprocess``, ``psutil`` and
hyperfine (``hyperfine --export-json``).
"""

from __future__ import annotations

import atexit
import datetime as _dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable  # the interpreter itself, not a pyenv shim on PATH


def console_script() -> str:
    """The installed ``execconsole`` script next to this interpreter (no pyenv shim)."""
    beside = Path(sys.executable).parent / "execconsole"
    if beside.exists():
        return str(beside)
    found = shutil.which("execconsole")
    if found is None:
        raise SystemExit("execconsole is not installed: run `pip install -e .` first")
    return found


def compile_product() -> None:
    """Write the product's bytecode first, as ``pip install`` does for an installed package.

    A checkout installed with ``pip install -e`` has none until Python writes
    it on import, and with PYTHONDONTWRITEBYTECODE set (as on this machine) it
    never does: every timed command would compile again each module changed
    since the bytecode was last written (0.1-0.3 s on a fresh clone), which
    no installed copy pays.
    """
    import compileall

    for package in ("console", "executors", "store"):
        compileall.compile_dir(REPO / package, quiet=1)


def machine() -> dict[str, Any]:
    """Facts about the machine and its load, recorded next to every result."""
    load = os.getloadavg()
    return {
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "loadavg_at_start": [round(x, 1) for x in load],
    }


@dataclass
class Summary:
    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def quartiles(self) -> tuple[float, float]:
        if len(self.values) < 4:
            return self.low, self.high
        q = statistics.quantiles(self.values, n=4, method="inclusive")
        return q[0], q[2]

    def as_dict(self, digits: int = 4) -> dict[str, Any]:
        q1, q3 = self.quartiles()
        return {
            "median": round(self.median, digits),
            "min": round(self.low, digits),
            "max": round(self.high, digits),
            "q1": round(q1, digits),
            "q3": round(q3, digits),
            "n": len(self.values),
        }

    def text(self, unit: str = "s", scale: float = 1.0, digits: int = 3) -> str:
        q1, q3 = self.quartiles()
        return (
            f"{self.median * scale:.{digits}f}{unit} "
            f"(IQR {q1 * scale:.{digits}f}–{q3 * scale:.{digits}f}, "
            f"range {self.low * scale:.{digits}f}–{self.high * scale:.{digits}f}, n={len(self.values)})"
        )


def busy_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy since boot, in seconds (``/proc/stat``).

    Busy means running code: user, nice, system, irq and softirq time; not
    idle, iowait, or steal (the hypervisor running another guest). Measured
    machine-wide because a case's work is spread over processes the benchmark
    does not parent (the forkserver's workers, a Celery worker, their tasks).
    """
    with open("/proc/stat") as stat:
        fields = stat.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


@dataclass
class Rounds:
    """Run named cases in rotating order, ``rounds`` times; keep every time.

    Each case's machine-wide busy CPU seconds go to ``cpu`` (measured around
    the whole call, its untimed set-up and checks included, and anything else
    the machine ran meanwhile).
    """

    cases: dict[str, Callable[[], float]]
    rounds: int
    results: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)
    progress: bool = True

    def run(self) -> Rounds:
        names = list(self.cases)
        for name in names:
            self.results.setdefault(name, [])
            self.cpu.setdefault(name, [])
        for index in range(self.rounds):
            shift = index % len(names)
            order = names[shift:] + names[:shift]
            line = []
            for name in order:
                cpu_before = busy_cpu_seconds()
                value = self.cases[name]()
                self.cpu[name].append(busy_cpu_seconds() - cpu_before)
                self.results[name].append(value)
                line.append(f"{name}={value:.3f}")
            if self.progress:
                print(f"  round {index + 1}/{self.rounds}: " + "  ".join(line), file=sys.stderr)
        return self

    def summary(self, name: str) -> Summary:
        return Summary(self.results[name])

    def cpu_ms_per_task(self, name: str, tasks: int) -> float:
        """Median machine-wide busy CPU of a case, per task, in milliseconds."""
        return round(statistics.median(self.cpu[name]) / tasks * 1000, 3)

    def ratio(self, name: str, baseline: str) -> Summary:
        """Per-round ratios: each product run against the baseline of its own round."""
        pairs = zip(self.results[name], self.results[baseline], strict=True)
        return Summary([a / b for a, b in pairs])


def timed_command(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    check: bool = True,
    stdout: Any = subprocess.DEVNULL,
) -> float:
    """Wall time of one whole command, from spawn to exit (perf_counter)."""
    started = time.perf_counter()
    completed = subprocess.run(
        list(argv),
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.PIPE,
    )
    elapsed = time.perf_counter() - started
    if check and completed.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited {completed.returncode}: {completed.stderr.decode()[-2000:]}"
        )
    return elapsed


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without EXECCONSOLE_* settings, plus ``extra``.

    ``PYTHONPATH`` starts with this checkout, so whole commands (the installed
    ``execconsole`` script included) run the code next to these benchmarks even
    when the editable install points at another checkout.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECCONSOLE")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO), *(p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p)]
    )
    env.update(extra)
    return env


def check_tree(env: dict[str, str]) -> str:
    """Fail unless commands started with ``env`` import the product from this checkout."""
    found = subprocess.run(
        [PYTHON, "-c", "import console.cli.main as m; print(m.__file__)"],
        env=env,
        cwd="/",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not found.startswith(str(REPO) + os.sep):
        raise SystemExit(f"commands would run {found}, not the checkout at {REPO}")
    return found


_LEFT_FOR_LAST: list[Path] = []


TRASH_VARIABLE = "EXECCONSOLE_BENCH_TRASH"
"""A folder to move finished homes into instead of deleting them (run_all sets it)."""


def remove_after_last_round(path: Path) -> None:
    """Delete ``path`` when the benchmark exits, not between rounds.

    This machine's root file system is ext4 without a journal. There, every
    file creation skips, one by one, the inodes deleted in the last 60-360 s
    (``recently_deleted`` in the kernel, seen with ``perf``), so deleting a
    round's thousands of log files would charge their deletion to the next
    round's file creations, whichever case that is.

    Under ``run_all.py`` (``EXECCONSOLE_BENCH_TRASH`` set) the home is moved
    into that folder instead, and run_all deletes it after the last benchmark:
    otherwise one benchmark's clean-up would slow the next one's creations.
    """
    if not _LEFT_FOR_LAST:
        atexit.register(_clean_up_homes)
    _LEFT_FOR_LAST.append(path)


def _clean_up_homes() -> None:
    trash = os.environ.get(TRASH_VARIABLE)
    for path in _LEFT_FOR_LAST:
        if trash and path.exists():
            path.rename(Path(trash) / f"{os.getpid()}-{path.name}")  # a rename deletes nothing
        else:
            shutil.rmtree(path, ignore_errors=True)


def verdict(value: float, target: float) -> str:
    return "met" if value <= target else "MISSED"


def write_report(path: str | None, report: dict[str, Any]) -> None:
    """Print the report as JSON (and keep it in ``path``), with the machine's load at the end."""
    if "machine" in report:
        report["machine"]["loadavg_at_end"] = [round(x, 1) for x in os.getloadavg()]
    text = json.dumps(report, indent=2)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + "\n")
    print(text)


def build_store(
    path: Path,
    runs: Sequence[tuple[str, str, int]],
    command: Sequence[str] = ("/bin/true",),
    executor: str = "local",
) -> None:
    """A store holding ``runs`` (dag_id, run_id, task count), every task scheduled.

    Built through the product's own ``Store.submit`` (one transaction per run),
    then checkpointed so the file can be copied as a template.
    """
    sys.path.insert(0, str(REPO))
    from store import Store, TaskSubmission

    store = Store(path)
    try:
        for dag_id, run_id, count in runs:
            store.submit(
                dag_id,
                run_id,
                [
                    TaskSubmission(task_id=f"t{i:06d}", command=list(command), executor=executor)
                    for i in range(count)
                ],
                source="benchmark",
            )
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        store.close()
