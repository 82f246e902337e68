"""The console under load: key-press latency, idle CPU and RSS, and what it costs dispatch.

Everything runs the real ``execconsole`` binary in a private tmux server
(``tmux -L``; 160x50), on real stores, with the real engine and LocalExecutor.
Measured with public tools only: ``time.perf_counter``, ``psutil`` and tmux.

**Console rounds** (``--console-rounds``, each a fresh console on a fresh copy of
one store holding 10,002 tasks: two ``sleep 600`` at priority 10 and 10,000
``/bin/true``; at parallelism 2 the two sleeps run and the rest stays queued).
Each round alternates the two ways a console runs, in rotating order:

- ``own``: ``execconsole console --parallelism 2`` (no engine owns the store,
  so the console starts its own engine as a child process and attaches to it);
- ``attached``: ``execconsole scheduler --parallelism 2`` in the background and
  ``execconsole console`` attached to it (the console process is only the UI).

In each: wait until both sleeps run, let it settle, then

1. *idle*: CPU of the console process over ``--idle-seconds`` (psutil
   ``cpu_times`` deltas, user + system, as % of one core) and its RSS (sampled
   every second; the peak is kept), while it refreshes on its own (twice a second);
2. *latency*: key press to repaint. A tmux control-mode client (``tmux -C``)
   sends each key and receives every ``%output`` notification, i.e. every chunk
   the app writes to its terminal, with its arrival time. After each chunk the
   pane is captured (``capture-pane -e``) until the expected change is on screen;
   the latency is the time from sending the key to the arrival of the chunk
   that completed the change. This includes tmux's own delivery of the key and
   parsing of the output, i.e. it is end to end minus the terminal emulator's
   own drawing. Keys: ``down``/``up`` in the Queued panel (the cursor moves one
   row; 10,000 queued behind it), ``z`` (zoom the Queued panel in and out: a new
   layout) and ``space`` (freeze badge on and off). Presses are spaced 100-350 ms
   apart at random so they land at every phase of the twice-a-second refresh.

**Dispatch rounds** (``--dispatch-rounds``): 2,000 ``/bin/true`` at parallelism 2,
each case on a fresh EXECCONSOLE_HOME, in rotating order:

- ``headless``: ``execconsole run bench.toml --headless --parallelism 2``;
- ``tui_own``: ``execconsole run bench.toml --parallelism 2`` in tmux: the
  console starts its own engine (a child process) and renders the whole run;
- ``tui_watching``: ``execconsole console --read-only`` opened in tmux first,
  then the same headless run as ``headless``; the console reads and renders the
  store all along (the same snapshots as attached; read-only because the
  engine of ``run --headless`` is not there yet when it opens).

Throughput is 2,000 over the span from the first task's start to the last
one's end as recorded in the store (so the console's own start-up is not
counted against it); the ratio of each console case to ``headless`` is taken
per round. The headless command's wall time (spawn to exit) is recorded too.
So is the console process's CPU over that same span (psutil ``cpu_times``
sampled every 50 ms on a thread of this script, as % of one core): what the
console takes from the engine and its workers on a 2-core machine, and a
steadier figure than the ratios when other work shares the machine.
``--dispatch-cases`` runs only some of the cases (ratios need ``headless``).

    python benchmarks/bench_console.py                       # 3 console rounds, 5 dispatch rounds
    python benchmarks/bench_console.py --parts dispatch --dispatch-rounds 7 --json out.json
"""

from __future__ import annotations

import argparse
import os
import queue
import random
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    REPO,
    Rounds,
    Summary,
    clean_env,
    compile_product,  # noqa: E402
    console_script,
    machine,
    timed_command,
    write_report,
)

SIZE = (160, 50)
QUEUED_TASKS = 10_000
DISPATCH_TASKS = 2_000
PARALLELISM = 2
WAIT_SECONDS = 90.0
KEY_TIMEOUT = 5.0

TARGET_LATENCY_MEDIAN_MS = 50.0
TARGET_IDLE_CPU_PERCENT = 15.0
TARGET_RSS_MB = 250.0
TARGET_DISPATCH_RATIO = 0.90

_SGR = re.compile(r"\x1b\[([0-9;]*)m")
_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


# ---- tmux ---------------------------------------------------------------------------
class Tmux:
    """One command in a session of a private tmux server, with a control-mode client.

    The control client (``tmux -C attach``) carries commands and their output
    (``%begin`` ... ``%end`` blocks) and notifies every chunk the pane's
    program writes (``%output``); a reader thread timestamps those on arrival.
    """

    def __init__(self, argv: Sequence[str], env: dict[str, str], *, size: tuple[int, int] = SIZE):
        self.socket = f"execconsole-bench-{os.getpid()}"
        self.name = "bench"
        self.env = env
        self._tmux(
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            self.name,
            "-x",
            str(size[0]),
            "-y",
            str(size[1]),
            *(
                arg
                for key, value in env.items()
                if key.startswith("EXECCONSOLE")
                for arg in ("-e", f"{key}={value}")
            ),
            # exec: the pane's process is the console itself (no shell in between).
            "exec " + " ".join(_quote(a) for a in argv),
        )
        self._control = subprocess.Popen(
            ["tmux", "-L", self.socket, "-C", "attach", "-t", self.name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            bufsize=0,
        )
        self._replies: queue.Queue[list[str]] = queue.Queue()
        self._output = threading.Condition()
        self.outputs = 0  # %output notifications so far
        self.last_output_at = 0.0  # perf_counter() when the last one arrived
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._replies.get(timeout=30)  # the attach command's own (empty) reply
        self.pid = int(self.command("display-message -p -t bench '#{pane_pid}'")[0])

    def _tmux(self, *args: str) -> str:
        # The server starts with this environment (no EXECCONSOLE_* of the caller's).
        return subprocess.run(
            ["tmux", "-L", self.socket, *args],
            check=True,
            capture_output=True,
            text=True,
            env=self.env,
        ).stdout

    def _read(self) -> None:
        assert self._control.stdout is not None
        handle = self._control.stdout
        block: list[str] | None = None
        pending = b""
        while True:
            data = os.read(handle.fileno(), 1 << 16)
            if not data:
                with self._output:
                    self._output.notify_all()
                return
            now = time.perf_counter()
            pending += data
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                if block is None and raw.startswith(b"%output "):
                    with self._output:
                        self.outputs += 1
                        self.last_output_at = now
                        self._output.notify_all()
                elif raw.startswith(b"%begin"):
                    block = []
                elif block is not None and (raw.startswith(b"%end") or raw.startswith(b"%error")):
                    self._replies.put(block)
                    block = None
                elif block is not None:
                    block.append(raw.decode("utf-8", errors="replace"))

    def command(self, text: str) -> list[str]:
        assert self._control.stdin is not None
        self._control.stdin.write(text.encode() + b"\n")
        return self._replies.get(timeout=30)

    def capture(self, escapes: bool = False) -> list[str]:
        return self.command(f"capture-pane -p {'-e ' if escapes else ''}-t {self.name}")

    def send(self, *keys: str) -> float:
        """Send keys; returns perf_counter() just before they were sent."""
        started = time.perf_counter()
        self.command(f"send-keys -t {self.name} " + " ".join(keys))
        return started

    def wait_output(self, seen: int, timeout: float) -> int:
        """Block until more than ``seen`` %output notifications arrived; returns the count."""
        with self._output:
            self._output.wait_for(lambda: self.outputs > seen, timeout=timeout)
            return self.outputs

    def wait_for(
        self, condition: Callable[[list[str]], bool], what: str, timeout: float = WAIT_SECONDS
    ) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            lines = self.capture()
            if condition(lines):
                return lines
            if not self.alive:
                raise RuntimeError(f"the console exited before: {what}\n" + "\n".join(lines))
            if time.monotonic() > deadline:
                raise RuntimeError(f"not within {timeout:g}s: {what}\n" + "\n".join(lines))
            time.sleep(0.1)

    @property
    def alive(self) -> bool:
        return (
            psutil.pid_exists(self.pid)
            and psutil.Process(self.pid).status() != psutil.STATUS_ZOMBIE
        )

    def close(self) -> None:
        try:
            if self._control.stdin is not None:
                self._control.stdin.close()
        except OSError:
            pass
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)
        try:
            self._control.wait(5)
        except subprocess.TimeoutExpired:
            self._control.kill()


def _quote(arg: str) -> str:
    return arg if re.fullmatch(r"[\w@%+=:,./-]+", arg) else "'" + arg.replace("'", "'\\''") + "'"


def screen_text(lines: list[str]) -> str:
    return "\n".join(lines)


# ---- stores ---------------------------------------------------------------------------
def seed_queued(path: Path) -> None:
    """Two long sleeps first (priority 10), then 10,000 /bin/true behind them."""
    sys.path.insert(0, str(REPO))
    from store import Store, TaskSubmission

    store = Store(path)
    try:
        store.submit(
            "load",
            "r1",
            [
                TaskSubmission(
                    task_id=f"sleeper{i}", command=["sleep", "600"], executor="local", priority=10
                )
                for i in range(2)
            ],
            source="benchmark",
        )
        store.submit(
            "backlog",
            "r1",
            [
                TaskSubmission(task_id=f"t{i:05d}", command=["/bin/true"], executor="local")
                for i in range(QUEUED_TASKS)
            ],
            source="benchmark",
        )
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        store.close()


def write_workflow(path: Path, tasks: int) -> None:
    lines = ['id = "bench"', ""]
    for index in range(tasks):
        lines += ["[[task]]", f'id = "t{index:05d}"', 'command = ["/bin/true"]', ""]
    path.write_text("\n".join(lines))


def store_counts(home: Path) -> dict[str, int]:
    db = home / "execconsole.db"
    if not db.exists():
        return {}
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return dict(conn.execute("SELECT state, count(*) FROM task_instances GROUP BY state"))
    except sqlite3.OperationalError:
        return {}
    finally:
        conn.close()


def dispatch_span(home: Path, tasks: int) -> float:
    """Seconds from the first start to the last end; checks each task succeeded once."""
    conn = sqlite3.connect(f"file:{home / 'execconsole.db'}?mode=ro", uri=True, timeout=5)
    try:
        states = dict(conn.execute("SELECT state, count(*) FROM task_instances GROUP BY state"))
        first, last = conn.execute(
            "SELECT min(start_date), max(end_date) FROM task_instances"
        ).fetchone()
    finally:
        conn.close()
    if states != {"success": tasks}:
        raise RuntimeError(f"the run did not end with {tasks} successes, each once: {states}")
    return datetime.fromisoformat(last).timestamp() - datetime.fromisoformat(first).timestamp()


def processes_of(home: Path) -> list[psutil.Process]:
    """Live processes started for ``home`` (they carry it in their environment)."""
    found = []
    for process in psutil.process_iter(["pid"]):
        try:
            if (
                process.environ().get("EXECCONSOLE_HOME") == str(home)
                and process.status() != psutil.STATUS_ZOMBIE
            ):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def kill_leftovers(home: Path) -> int:
    """Kill, by pid, whatever this benchmark started for ``home`` and is still alive."""
    left = processes_of(home)
    for process in left:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(left, timeout=5)
    return len(left)


class CpuSampler:
    """CPU seconds of one process, sampled every ``interval`` on a thread, with wall-clock times.

    The console's CPU during a busy run is then read over exactly the span the
    store records for the run (first start to last end), so its start-up and
    the wait for ``q`` are not counted.
    """

    def __init__(self, process: psutil.Process, interval: float = 0.05) -> None:
        self.process = process
        self.interval = interval
        self.samples: list[tuple[float, float]] = []  # (time.time(), cpu seconds)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.time(), cpu_seconds(self.process)))
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                return
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def percent_between(self, start: float, end: float) -> float | None:
        """% of one core used between the samples nearest ``start`` and ``end`` (None: no samples)."""
        inside = [s for s in self.samples if start <= s[0] <= end]
        if len(inside) < 2 or inside[-1][0] - inside[0][0] <= 0:
            return None
        (t0, c0), (t1, c1) = inside[0], inside[-1]
        return 100 * (c1 - c0) / (t1 - t0)


def run_window(home: Path) -> tuple[float, float]:
    """(first start_date, last end_date) of the run in ``home``'s store, as epoch seconds."""
    conn = sqlite3.connect(f"file:{home / 'execconsole.db'}?mode=ro", uri=True, timeout=5)
    try:
        first, last = conn.execute(
            "SELECT min(start_date), max(end_date) FROM task_instances"
        ).fetchone()
    finally:
        conn.close()
    return datetime.fromisoformat(first).timestamp(), datetime.fromisoformat(last).timestamp()


# ---- console rounds ---------------------------------------------------------------------
@dataclass
class ConsoleRun:
    mode: str
    idle_cpu_percent: float
    rss_mb_peak: float
    latencies_ms: dict[str, list[float]]
    key_cpu_ms: dict[str, list[float]]
    scheduler_cpu_percent: float | None = None


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def measure_idle(process: psutil.Process, seconds: float) -> tuple[float, float]:
    """(CPU % of one core, peak RSS in MB) of ``process`` over ``seconds``."""
    peak = process.memory_info().rss
    cpu0, wall0 = cpu_seconds(process), time.perf_counter()
    end = wall0 + seconds
    while time.perf_counter() < end:
        time.sleep(min(1.0, max(0.0, end - time.perf_counter())))
        peak = max(peak, process.memory_info().rss)
    cpu1, wall1 = cpu_seconds(process), time.perf_counter()
    return 100 * (cpu1 - cpu0) / (wall1 - wall0), peak / 1e6


def first_cell_background(line: str) -> str:
    """The background SGR in effect at the first visible character after the left border."""
    background = ""
    position = line.find("│")
    if position < 0:
        return background
    index = position + 1
    while index < len(line):
        match = _SGR.match(line, index)
        if match is not None:
            params = [int(p) if p else 0 for p in match.group(1).split(";")]
            i = 0
            while i < len(params):
                code = params[i]
                if code == 0 or code == 49:
                    background = ""
                elif code == 48 and i + 1 < len(params):
                    width = 3 if params[i + 1] == 5 else 5
                    background = ";".join(map(str, params[i : i + width]))
                    i += width - 1
                elif code in (38, 58) and i + 1 < len(params):
                    i += 2 if params[i + 1] == 5 else 4
                i += 1
            index = match.end()
            continue
        other = _ESCAPE.match(line, index)
        if other is not None:
            index = other.end()
            continue
        return background
    return background


def queued_cursor(lines: list[str]) -> int | None:
    """The Queued panel's highlighted row number (from a capture with escapes), if shown.

    The cursor row is the one row drawn on a background of its own.
    """
    rows: list[tuple[int, str]] = []
    in_panel = False
    for line in lines:
        plain = _ESCAPE.sub("", line)
        if "2 Queued" in plain:
            in_panel = True
            continue
        if not in_panel:
            continue
        if plain.startswith("╰"):
            break
        match = re.match(r"│\s*(\d+)\s", plain)
        if match is not None:
            rows.append((int(match.group(1)), first_cell_background(line)))
    if len(rows) < 3:
        return None
    counts: dict[str, int] = {}
    for _, background in rows:
        counts[background] = counts.get(background, 0) + 1
    odd = [number for number, background in rows if counts[background] == 1]
    return odd[0] if len(odd) == 1 else None


def timed_key(
    tmux: Tmux,
    key: str,
    done: Callable[[list[str]], bool],
    escapes: bool = False,
    process: psutil.Process | None = None,
) -> tuple[float, float]:
    """(ms from sending ``key`` to the output chunk that completed the change, console CPU ms meanwhile).

    After each %output notification the pane is captured; the latency is taken
    at the arrival of the last chunk before the capture that showed the change
    (so it is exact to within one capture, about 2 ms).
    """
    with tmux._output:
        seen = tmux.outputs
    cpu0 = cpu_seconds(process) if process is not None else 0.0
    started = tmux.send(key)
    deadline = started + KEY_TIMEOUT
    while True:
        seen = tmux.wait_output(seen, timeout=max(0.0, deadline - time.perf_counter()))
        arrived = tmux.last_output_at
        if done(tmux.capture(escapes=escapes)):
            cpu = (cpu_seconds(process) - cpu0) * 1000 if process is not None else 0.0
            return (arrived - started) * 1000, cpu
        if time.perf_counter() > deadline:
            screen = "\n".join(_ESCAPE.sub("", line) for line in tmux.capture())
            raise RuntimeError(
                f"key {key}: the screen did not change within {KEY_TIMEOUT:g}s:\n{screen}"
            )


# A focused panel's title is bold (then its colour; the space before it may be styled apart).
FOCUSED_TITLE = r"\x1b\[1m(?:\x1b\[[0-9;]*m)* ?{}"


def settled(read: Callable[[], Any], timeout: float = 3.0) -> Any:
    """``read()`` once two captures 30 ms apart agree (tmux may show a frame half drawn)."""
    deadline = time.monotonic() + timeout
    last = read()
    while True:
        time.sleep(0.03)
        now = read()
        if now == last and now is not None:
            return now
        if time.monotonic() > deadline:
            raise RuntimeError("the screen did not settle")
        last = now


def press_keys(
    tmux: Tmux, presses: int, rng: random.Random, process: psutil.Process
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Key press -> repaint latencies (and console CPU) for each kind of key, ``presses`` of each.

    cursor: down/up in the Queued panel; focus: 2/3 (Queued <-> Events panel);
    zoom: z on the Queued panel, in and out; freeze: space, on and off.
    """
    kinds = ("cursor", "focus", "zoom", "freeze")
    latency: dict[str, list[float]] = {kind: [] for kind in kinds}
    cpu: dict[str, list[float]] = {kind: [] for kind in kinds}

    def record(kind: str, measured: tuple[float, float]) -> None:
        latency[kind].append(measured[0])
        cpu[kind].append(measured[1])
        time.sleep(rng.uniform(0.10, 0.35))

    def focused(title: str) -> Callable[[list[str]], bool]:
        pattern = re.compile(FOCUSED_TITLE.format(re.escape(title)))
        return lambda lines: pattern.search("".join(lines)) is not None

    tmux.send("2")  # focus the Queued panel
    tmux.wait_for(
        lambda _: queued_cursor(tmux.capture(escapes=True)) is not None,
        "a cursor row in Queued",
        10,
    )
    for _ in range(presses):
        row = settled(lambda: queued_cursor(tmux.capture(escapes=True)))
        key, wanted = ("Down", row + 1) if row <= 1 else ("Up", row - 1)
        record(
            "cursor",
            timed_key(tmux, key, lambda lines, w=wanted: queued_cursor(lines) == w, True, process),
        )
    for _ in range(presses):
        on_queued = settled(lambda: focused("2 Queued")(tmux.capture(escapes=True)))
        key, title = ("3", "3 Events") if on_queued else ("2", "2 Queued")
        record("focus", timed_key(tmux, key, focused(title), True, process))
    if not focused("2 Queued")(tmux.capture(escapes=True)):
        tmux.send("2")
        tmux.wait_for(lambda _: focused("2 Queued")(tmux.capture(escapes=True)), "Queued", 10)
    for _ in range(presses):
        zoomed = settled(lambda: "1 Running" not in screen_text(tmux.capture()))
        record(
            "zoom",
            timed_key(
                tmux,
                "z",
                lambda lines, z=zoomed: ("1 Running" in screen_text(lines)) == z,
                False,
                process,
            ),
        )
    if "1 Running" not in screen_text(tmux.capture()):
        tmux.send("z")
    for _ in range(presses):
        frozen = settled(lambda: "FROZEN" in tmux.capture()[0])
        record(
            "freeze",
            timed_key(
                tmux, "Space", lambda lines, f=frozen: ("FROZEN" in lines[0]) != f, False, process
            ),
        )
    if "FROZEN" in tmux.capture()[0]:
        tmux.send("Space")
    return latency, cpu


def console_process(tmux: Tmux) -> psutil.Process:
    process = psutil.Process(tmux.pid)
    if "console" not in process.cmdline():
        raise RuntimeError(f"the pane runs {process.cmdline()}, not the console")
    return process


def run_console(
    mode: str, template: Path, work: Path, args: argparse.Namespace, rng: random.Random
) -> ConsoleRun:
    home = Path(tempfile.mkdtemp(prefix=f"{mode}-", dir=work))
    shutil.copy(template, home / "execconsole.db")
    env = clean_env(EXECCONSOLE_HOME=str(home))
    script = console_script()
    scheduler: subprocess.Popen[bytes] | None = None
    tmux: Tmux | None = None
    try:
        if mode == "attached":
            log = open(home / "scheduler.out", "wb")  # noqa: SIM115 (closed with the process)
            scheduler = subprocess.Popen(
                [script, "scheduler", "--parallelism", str(PARALLELISM)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            _wait(
                lambda: store_counts(home).get("running", 0) == 2, "the scheduler runs both sleeps"
            )
            argv = [script, "console"]
        else:
            argv = [script, "console", "--parallelism", str(PARALLELISM)]
        tmux = Tmux(argv, env)
        marker = "ATTACHED" if mode == "attached" else "started by this console"
        tmux.wait_for(
            lambda lines: (
                marker in lines[0]
                and "Running · 2" in screen_text(lines)
                and "10,0" in screen_text(lines)
            ),
            f"the {mode} console shows both sleeps running and the queue",
        )
        process = console_process(tmux)
        # The engine: the scheduler it attached to, or its own child process.
        engine = (
            psutil.Process(scheduler.pid)
            if scheduler is not None
            else next(
                child
                for child in process.children()
                if "console.tui.engine_process" in child.cmdline()
            )
        )
        time.sleep(args.settle)
        sched_cpu0 = cpu_seconds(engine)
        wall0 = time.perf_counter()
        cpu, rss = measure_idle(process, args.idle_seconds)
        sched_cpu = 100 * (cpu_seconds(engine) - sched_cpu0) / (time.perf_counter() - wall0)
        latencies, key_cpu = press_keys(tmux, args.presses, rng, process)
        _quit(tmux, mode)
        return ConsoleRun(mode, cpu, rss, latencies, key_cpu, sched_cpu)
    finally:
        if tmux is not None:
            tmux.close()
        if scheduler is not None and scheduler.poll() is None:
            scheduler.send_signal(signal.SIGTERM)
            try:
                scheduler.wait(15)
            except subprocess.TimeoutExpired:
                scheduler.kill()
        killed = kill_leftovers(home)
        if killed:
            print(f"  ({mode}: killed {killed} leftover processes)", file=sys.stderr)
        shutil.rmtree(home, ignore_errors=True)


def _quit(tmux: Tmux, mode: str) -> None:
    tmux.send("q")
    if (
        mode == "own"
    ):  # tasks run in the console's own engine: the console asks what becomes of them
        tmux.wait_for(lambda lines: "Quit?" in screen_text(lines), "the quit dialog", 10)
        tmux.send("k")
    _wait(lambda: not tmux.alive, "the console exits", 30)


def _wait(
    condition: Callable[[], object],
    what: str,
    timeout: float = WAIT_SECONDS,
    interval: float = 0.05,
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"not within {timeout:g}s: {what}")
        time.sleep(interval)


def percentile(values: Sequence[float], q: int) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def latency_summary(values: Sequence[float]) -> dict[str, Any]:
    return {
        "median_ms": round(statistics.median(values), 1),
        "p95_ms": round(percentile(values, 95), 1),
        "max_ms": round(max(values), 1),
        "min_ms": round(min(values), 1),
        "n": len(values),
    }


def console_part(args: argparse.Namespace, work: Path, report: dict[str, Any]) -> None:
    template = work / "queued.db"
    seed_queued(template)
    rng = random.Random(args.seed)
    load_before = os.getloadavg()
    modes = ["own", "attached"]
    runs: list[ConsoleRun] = []
    for index in range(args.console_rounds):
        order = modes[index % 2 :] + modes[: index % 2]
        for mode in order:
            run = run_console(mode, template, work, args, rng)
            runs.append(run)
            medians = "  ".join(
                f"{k}={statistics.median(v):.1f}ms" for k, v in run.latencies_ms.items()
            )
            extra = (
                f"  engine cpu={run.scheduler_cpu_percent:.1f}%"
                if run.scheduler_cpu_percent is not None
                else ""
            )
            print(
                f"  round {index + 1}/{args.console_rounds} {mode}: idle cpu={run.idle_cpu_percent:.1f}% "
                f"rss={run.rss_mb_peak:.0f}MB  {medians}{extra}",
                file=sys.stderr,
            )
    results: dict[str, Any] = {}
    for mode in modes:
        mine = [r for r in runs if r.mode == mode]
        every = [v for r in mine for values in r.latencies_ms.values() for v in values]
        by_key = {}
        for key in mine[0].latencies_ms:
            by_key[key] = latency_summary([v for r in mine for v in r.latencies_ms[key]])
            key_cpu = [v for r in mine for v in r.key_cpu_ms[key]]
            by_key[key]["console_cpu_ms_mean"] = round(statistics.fmean(key_cpu), 1)
            by_key[key]["verdict_median_le_50ms"] = _met(
                by_key[key]["median_ms"] <= TARGET_LATENCY_MEDIAN_MS
            )
        cpu = Summary([r.idle_cpu_percent for r in mine])
        rss = Summary([r.rss_mb_peak for r in mine])
        entry: dict[str, Any] = {
            "latency_all_keys": latency_summary(every),
            "latency_by_key": by_key,
            "latency_round_medians_ms": [
                round(
                    statistics.median([v for values in r.latencies_ms.values() for v in values]), 1
                )
                for r in mine
            ],
            "idle_cpu_percent": cpu.as_dict(1),
            "rss_mb_peak": rss.as_dict(0),
        }
        if mine[0].scheduler_cpu_percent is not None:
            entry["engine_idle_cpu_percent"] = Summary(
                [r.scheduler_cpu_percent or 0.0 for r in mine]
            ).as_dict(1)
        entry["verdicts"] = {
            "latency_median_le_50ms": _met(
                entry["latency_all_keys"]["median_ms"] <= TARGET_LATENCY_MEDIAN_MS
            ),
            "idle_cpu_le_15pct": _met(cpu.median <= TARGET_IDLE_CPU_PERCENT),
            "rss_le_250MB": _met(rss.high <= TARGET_RSS_MB),
        }
        results[mode] = entry
        print(
            f"  {mode}: latency {entry['latency_all_keys']}  idle cpu {cpu.text(unit='%', digits=1)}  "
            f"rss {rss.text(unit='MB', digits=0)}  {entry['verdicts']}",
            file=sys.stderr,
        )
    report["console"] = {
        "queued": QUEUED_TASKS,
        "running": 2,
        "parallelism": PARALLELISM,
        "idle_seconds": args.idle_seconds,
        "presses_per_key_per_round": args.presses,
        "loadavg_before": [round(x, 1) for x in load_before],
        "loadavg_after": [round(x, 1) for x in os.getloadavg()],
        "commands": {
            "own": f"EXECCONSOLE_HOME=<copy of the store> {console_script()} console --parallelism {PARALLELISM}",
            "attached": (
                f"EXECCONSOLE_HOME=<copy> {console_script()} scheduler --parallelism {PARALLELISM} &  "
                f"then {console_script()} console"
            ),
            "terminal": f"tmux {subprocess.run(['tmux', '-V'], capture_output=True, text=True).stdout.strip()}, "
            f"-f /dev/null, {SIZE[0]}x{SIZE[1]}",
        },
        "results": results,
    }


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


# ---- dispatch rounds ----------------------------------------------------------------------
def dispatch_part(args: argparse.Namespace, work: Path, report: dict[str, Any]) -> None:
    workflow = work / "bench.toml"
    write_workflow(workflow, args.dispatch_tasks)
    script = console_script()
    walls: dict[str, list[float]] = {"headless": [], "tui_watching": []}
    # The console process's CPU (% of one core) over each run's span: what it takes from dispatch.
    busy_cpu: dict[str, list[float | None]] = {"tui_own": [], "tui_watching": []}

    def fresh_home(name: str) -> tuple[Path, dict[str, str]]:
        home = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=work))
        return home, clean_env(EXECCONSOLE_HOME=str(home))

    def headless_run(home: Path, env: dict[str, str], name: str) -> None:
        walls[name].append(
            timed_command(
                [script, "run", str(workflow), "--headless", "--parallelism", str(PARALLELISM)],
                env=env,
                cwd=work,
            )
        )

    def finish(home: Path) -> float:
        span = dispatch_span(home, args.dispatch_tasks)
        kill_leftovers(home)
        shutil.rmtree(home, ignore_errors=True)
        return args.dispatch_tasks / span

    def headless() -> float:
        home, env = fresh_home("headless")
        headless_run(home, env, "headless")
        return finish(home)

    def tui_own() -> float:
        home, env = fresh_home("own")
        tmux = Tmux([script, "run", str(workflow), "--parallelism", str(PARALLELISM)], env)
        sampler = CpuSampler(psutil.Process(tmux.pid))
        try:
            # Polled slowly: this benchmark's own store reads compete for the same 2 cores.
            _wait(
                lambda: store_counts(home).get("success", 0) == args.dispatch_tasks,
                "the run ends",
                interval=0.5,
            )
            sampler.stop()
            busy_cpu["tui_own"].append(sampler.percent_between(*run_window(home)))
            tmux.wait_for(
                lambda lines: f"{args.dispatch_tasks:,} succeeded" in screen_text(lines),
                "the console shows the end",
                30,
            )
            tmux.send("q")
            _wait(lambda: not tmux.alive, "the console exits", 30)
        finally:
            tmux.close()
        return finish(home)

    def tui_watching() -> float:
        home, env = fresh_home("watching")
        tmux = Tmux([script, "console", "--read-only"], env)
        sampler: CpuSampler | None = None
        try:
            tmux.wait_for(
                lambda lines: "READ-ONLY" in lines[0] and "Events" in screen_text(lines),
                "the read-only console opens",
                60,
            )
            sampler = CpuSampler(psutil.Process(tmux.pid))
            headless_run(home, env, "tui_watching")
            sampler.stop()
            busy_cpu["tui_watching"].append(sampler.percent_between(*run_window(home)))
            tmux.wait_for(
                lambda lines: f"{args.dispatch_tasks:,} succeeded" in screen_text(lines),
                "the console shows the end",
                30,
            )
            tmux.send("q")
            _wait(lambda: not tmux.alive, "the console exits", 30)
        finally:
            tmux.close()
        return finish(home)

    cases = {"headless": headless, "tui_own": tui_own, "tui_watching": tui_watching}
    cases = {name: cases[name] for name in args.dispatch_cases.split(",")}
    print(
        f"dispatch: {args.dispatch_tasks} /bin/true at parallelism {PARALLELISM} (tasks/s):",
        file=sys.stderr,
    )
    rounds = Rounds(cases, args.dispatch_rounds).run()
    results: dict[str, Any] = {}
    for name in cases:
        results[f"{name}_tasks_per_s"] = rounds.summary(name).as_dict(1)
    for name in ("tui_own", "tui_watching"):
        if name not in cases or "headless" not in cases:
            continue
        ratio = rounds.ratio(name, "headless")
        results[f"{name}_over_headless"] = ratio.as_dict(3)
        results[f"{name}_verdict"] = _met(ratio.median >= TARGET_DISPATCH_RATIO)
        print(
            f"  {name}/headless {ratio.text(unit='x')}  target >= {TARGET_DISPATCH_RATIO}: {results[f'{name}_verdict']}",
            file=sys.stderr,
        )
    for name, values in busy_cpu.items():
        measured = [v for v in values if v is not None]
        if measured:
            cpu = Summary(measured)
            results[f"{name}_console_cpu_percent_during_run"] = cpu.as_dict(1)
            print(
                f"  {name}: console CPU during the run {cpu.text(unit='%', digits=1)}",
                file=sys.stderr,
            )
    if walls["headless"]:
        results["headless_wall_s"] = Summary(walls["headless"]).as_dict(3)
    if walls["tui_watching"]:
        results["headless_with_tui_watching_wall_s"] = Summary(walls["tui_watching"]).as_dict(3)
    report["dispatch"] = {
        "tasks": args.dispatch_tasks,
        "parallelism": PARALLELISM,
        "rounds": args.dispatch_rounds,
        "commands": {
            "headless": f"EXECCONSOLE_HOME=<fresh> {script} run bench.toml --headless --parallelism {PARALLELISM}",
            "tui_own": f"tmux: EXECCONSOLE_HOME=<fresh> {script} run bench.toml --parallelism {PARALLELISM}; q when done",
            "tui_watching": (
                f"tmux: EXECCONSOLE_HOME=<fresh> {script} console --read-only; then the headless command on the same home"
            ),
        },
        "metric": "tasks / (max end_date - min start_date) from the store",
        "results": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="console,dispatch", help="console, dispatch, or both")
    parser.add_argument("--console-rounds", type=int, default=3)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument(
        "--settle", type=float, default=3.0, help="seconds after the console shows the load"
    )
    parser.add_argument(
        "--presses", type=int, default=20, help="presses of each kind of key per round"
    )
    parser.add_argument("--dispatch-rounds", type=int, default=5)
    parser.add_argument("--dispatch-tasks", type=int, default=DISPATCH_TASKS)
    parser.add_argument(
        "--dispatch-cases",
        default="headless,tui_own,tui_watching",
        help="which dispatch cases to run (ratios need headless)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", help="also write the report to this file")
    args = parser.parse_args()
    compile_product()
    if shutil.which("tmux") is None:
        raise SystemExit("tmux is needed: apt-get install tmux")
    parts = {part.strip() for part in args.parts.split(",")}
    report: dict[str, Any] = {"benchmark": "console", "machine": machine()}
    work = Path(tempfile.mkdtemp(prefix="bench-console-"))
    try:
        if "console" in parts:
            console_part(args, work, report)
        if "dispatch" in parts:
            dispatch_part(args, work, report)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_report(args.json, report)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
