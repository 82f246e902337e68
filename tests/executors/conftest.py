"""Shared helpers for the executor tests: workloads, an event-collecting driver, process cleanup."""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from executors.base import BaseExecutor
from executors.local import LocalExecutor
from executors.state import TaskState
from executors.task_key import TaskKey
from executors.workload import TaskReport, Workload

DEADLINE = 30.0
"""Generous bound for anything the tests wait for; never a measure of speed."""


def make_workload(
    home: Path,
    command: list[str] | str,
    *,
    run: str = "r1",
    task: str = "t",
    dag: str = "d",
    timeout: float | None = None,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    priority: int = 1,
    token: str | None = None,
) -> Workload:
    """A workload whose log goes under ``home/logs``; a str command runs through the shell."""
    key = TaskKey(dag, task, run)
    shell = isinstance(command, str)
    return Workload(
        key=key,
        command=[command] if isinstance(command, str) else list(command),
        log_path=str(home / "logs" / f"{dag}.{task}.{run}.log"),
        token=token or uuid.uuid4().hex,
        env=env or {},
        cwd=cwd,
        timeout=timeout,
        shell=shell,
        priority=priority,
    )


class Driver:
    """Heartbeats an executor and keeps every event it produced, in order."""

    def __init__(self, executor: BaseExecutor) -> None:
        self.executor = executor
        self.history: list[tuple[TaskKey, TaskState, TaskReport | None]] = []
        self.final: dict[TaskKey, tuple[TaskState, TaskReport | None]] = {}
        self.started: dict[TaskKey, TaskReport | None] = {}

    def collect(self) -> None:
        for key, (state, report) in self.executor.get_event_buffer().items():
            self.history.append((key, state, report))
            if state.is_finished:
                self.final[key] = (state, report)
            elif state is TaskState.RUNNING:
                self.started[key] = report

    def beat(self) -> None:
        self.executor.heartbeat()
        self.collect()

    def until(self, predicate: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
        """Heartbeat until ``predicate()`` holds; fail naming ``what`` after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            self.beat()
            if predicate():
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"gave up waiting for {what} after {timeout}s; events so far: {self.history}"
                )
            wait = getattr(self.executor, "wait_for_events", None)
            if wait is not None:
                wait(0.05)
            else:
                time.sleep(0.01)

    def until_finished(self, *keys: TaskKey, timeout: float = DEADLINE) -> None:
        self.until(lambda: all(key in self.final for key in keys), f"{keys} to finish", timeout)

    def until_started(self, *keys: TaskKey, timeout: float = DEADLINE) -> None:
        self.until(
            lambda: all(key in self.started or key in self.final for key in keys),
            f"{keys} to start",
            timeout,
        )

    def state(self, key: TaskKey) -> TaskState:
        return self.final[key][0]

    def reason(self, key: TaskKey) -> str | None:
        report = self.final[key][1]
        return report.reason if report else None


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    """Poll ``predicate`` until true; fail naming ``what`` after a generous ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {timeout}s")
        time.sleep(0.02)


def is_gone(pid: int) -> bool:
    """True once the process has exited (a zombie waiting for init counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _is_multiprocessing_helper(process: psutil.Process) -> bool:
    """The forkserver and resource tracker live as long as the test session, by design."""
    with contextlib.suppress(psutil.Error):
        command = " ".join(process.cmdline())
        return (
            "multiprocessing.forkserver" in command or "multiprocessing.resource_tracker" in command
        )
    return False


def live_descendants() -> list[psutil.Process]:
    """Descendants of this test process still running, apart from multiprocessing's helpers."""
    found = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            if child.status() != psutil.STATUS_ZOMBIE and not _is_multiprocessing_helper(child):
                found.append(child)
    return found


class PidReaper:
    """Pids a test created outside its own process tree (orphans); killed at teardown."""

    def __init__(self) -> None:
        self.pids: list[int] = []

    def add(self, *pids: int | None) -> None:
        self.pids.extend(pid for pid in pids if pid)


@pytest.fixture
def orphans() -> Iterator[PidReaper]:
    reaper = PidReaper()
    yield reaper
    for pid in reaper.pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    """Every test cleans up after itself; this kills what one forgot, so later tests stay sound."""
    yield
    leftovers = live_descendants()
    for process in leftovers:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(leftovers, timeout=5)


# ---- LocalExecutor fixtures, shared by its test modules ----------------------------
MakeLocal = Callable[..., LocalExecutor]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def make_local(home: Path) -> Iterator[MakeLocal]:
    made: list[LocalExecutor] = []

    def make(parallelism: int = 2, **options: object) -> LocalExecutor:
        executor = LocalExecutor(
            parallelism, home=str(home), options={"terminate_grace": 1.0, **options}
        )
        executor.start()
        made.append(executor)
        return executor

    yield make
    for executor in made:
        executor.terminate()


def held(tmp_path: Path, name: str = "release") -> tuple[str, Path]:
    """A shell command that runs until ``release`` exists, and that file."""
    release = tmp_path / name
    return f"while [ ! -e {release} ]; do sleep 0.05; done", release
