"""ThreadPoolTaskExecutor: each task's process is started and watched by a thread of this process.

::

    execute_async ──► inbox ──► pool thread ──► run_workload() ──► task process
                                    │
    sync() ◄──────── outbox ◄───────┘  (RUNNING when started, SUCCESS/FAILED at the end)

Threads are started on demand, one per task in flight, up to ``parallelism``,
and then reused. They only ever talk to the executor through the two queues,
so the event buffer is touched by the engine's thread alone (in ``sync``).

Everything execconsole knows about this executor comes through BaseExecutor:
its capability flags, and the CLI group, console panel and key binding it
vends below, each named by import path so nothing is imported before it is used.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from executors.base import BaseExecutor
from executors.claims import ClaimBook
from executors.state import TaskState
from executors.supervisor import TERMINATE_GRACE_SECONDS, NotClaimed, run_workload
from executors.task_key import TaskKey
from executors.vended import CliGroup, ConsolePanel, KeyBinding
from executors.workload import TaskReport, Workload

log = logging.getLogger(__name__)

# What a pool thread sends back. A state of None means "not started here, say
# nothing": its claim was taken elsewhere, or the executor was terminated first.
_Outcome = tuple[TaskKey, TaskState | None, TaskReport | None]


@dataclass(frozen=True, slots=True)
class PoolStats:
    """A consistent reading of the pool, for the panel and the CLI."""

    threads: int  # started so far; they live until end()
    busy: int  # running (or about to run) a task
    limit: int  # parallelism; 0 means no limit
    tasks_done: int

    @property
    def idle(self) -> int:
        return self.threads - self.busy


class ThreadPoolTaskExecutor(BaseExecutor):
    """Runs each task as a real process, started and awaited by a pool thread."""

    name: ClassVar[str] = "threads"
    # The pool lives inside the host process: if the console dies, so does
    # every thread watching a task, and nothing can adopt those tasks.
    is_production: ClassVar[bool] = False
    supports_kill: ClassVar[bool] = True
    # Threads start on demand, so a new limit applies at the next heartbeat.
    supports_live_scaling: ClassVar[bool] = True

    def __init__(
        self,
        parallelism: int = 2,
        *,
        name: str | None = None,
        home: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(parallelism, name=name, home=home, options=options)
        self._claims = ClaimBook(Path(home) / "claims") if home else None
        self._inbox: queue.SimpleQueue[tuple[TaskKey, Workload] | None] = queue.SimpleQueue()
        self._outbox: queue.SimpleQueue[_Outcome] = queue.SimpleQueue()
        self._lock = threading.Lock()  # guards everything below
        self._threads: list[threading.Thread] = []
        self._stopping: list[threading.Thread] = []  # sent their pill, still finishing a task
        self._idle = 0
        self._pids: dict[TaskKey, int | None] = {}  # tasks in flight; pid once started
        self._killed: set[TaskKey] = set()
        self._tasks_done = 0
        self._closing = False  # set by terminate(): queued work must not start

    # ---- running tasks --------------------------------------------------------
    def execute_async(self, key: TaskKey, workload: Workload) -> None:
        """Hand the workload to an idle thread, starting a new one if none is idle."""
        with self._lock:
            self._pids[key] = None
            # Each queued workload reserves a thread, so the inbox never holds
            # more work than there are threads to take it.
            if self._idle:
                self._idle -= 1
                thread = None
            else:
                thread = threading.Thread(
                    target=self._serve,
                    name=f"{self.executor_name}-thread-{len(self._threads) + 1}",
                    daemon=True,
                )
                self._threads.append(thread)
        if thread is not None:
            thread.start()
        self._inbox.put((key, workload))

    def sync(self) -> None:
        """Move what the pool threads reported into the event buffer."""
        while True:
            try:
                key, state, report = self._outbox.get_nowait()
            except queue.Empty:
                return
            if state is None:
                self.running.discard(key)
            elif state is TaskState.RUNNING:
                self.running_state(key, report)
            else:
                self.change_state(key, state, report)

    def _serve(self) -> None:
        """A pool thread: run workloads until a ``None`` says to stop."""
        while (item := self._inbox.get()) is not None:
            key, workload = item
            if self._closing:
                # Terminated before it started: say nothing, so the engine's
                # recovery finds the token unclaimed and hands the try out again.
                state, report = None, None
            else:
                state, report = self._run(key, workload)
            with self._lock:
                # From here on the process is reaped, so its pid may be reused:
                # _signal() checks this entry before signalling.
                del self._pids[key]
                if key in self._killed:
                    self._killed.discard(key)
                    if state is TaskState.FAILED and report is not None:
                        report.reason = f"killed by operator ({report.reason})"
                if state is not None:
                    self._tasks_done += 1
                if threading.current_thread() in self._threads:  # not told to stop
                    self._idle += 1
            self._outbox.put((key, state, report))

    def _run(self, key: TaskKey, workload: Workload) -> tuple[TaskState | None, TaskReport | None]:
        def started(report: TaskReport) -> None:
            with self._lock:
                self._pids[key] = report.pid
            self._outbox.put((key, TaskState.RUNNING, report))

        worker = threading.current_thread().name
        try:
            report = run_workload(workload, self._claims, worker=worker, on_started=started)
        except NotClaimed:
            log.info("%s was claimed or revoked elsewhere; not starting it", key)
            return None, None
        except Exception as error:
            # A thread that died here would leave the key "running" forever.
            log.exception("%s could not be run", key)
            return TaskState.FAILED, TaskReport(worker=worker, reason=f"could not run: {error}")
        # Only a clean exit has no reason; a timeout has one whatever its exit code.
        succeeded = report.exit_code == 0 and report.reason is None
        return (TaskState.SUCCESS if succeeded else TaskState.FAILED), report

    def _signal(self, key: TaskKey, pid: int, signum: int) -> None:
        """Signal a task's process group, unless that task has ended (its pid may be reused)."""
        with self._lock:
            if self._pids.get(key) != pid:
                return
            try:
                os.killpg(pid, signum)  # the task leads its own process group
            except (ProcessLookupError, PermissionError):
                pass

    # ---- optional capabilities ------------------------------------------------
    def kill(self, key: TaskKey) -> bool:
        """Stop a running try: SIGTERM its process group now, SIGKILL after a grace period."""
        with self._lock:
            pid = self._pids.get(key)
            if pid is None:
                return False
            self._killed.add(key)
        self._signal(key, pid, signal.SIGTERM)
        # Signal only: the pool thread reaps the process and reports how it
        # ended. A timer escalates, because the engine must not wait here.
        escalate = threading.Timer(
            TERMINATE_GRACE_SECONDS, self._signal, args=(key, pid, signal.SIGKILL)
        )
        escalate.daemon = True
        escalate.start()
        return True

    def pool_stats(self) -> PoolStats:
        """How many threads there are, how many are busy, and how much they have done."""
        with self._lock:
            return PoolStats(
                threads=len(self._threads),
                busy=len(self._pids),
                limit=self.parallelism,
                tasks_done=self._tasks_done,
            )

    # ---- lifecycle --------------------------------------------------------------
    def end(self, timeout: float = 10.0) -> None:
        """Let running tasks finish within ``timeout``, then kill what is left."""
        if not self._stop_threads(timeout):
            self.terminate()
        self.sync()

    def terminate(self) -> None:
        """Kill every running task, start no more, and stop the threads."""
        self._closing = True
        with self._lock:
            running = {key: pid for key, pid in self._pids.items() if pid is not None}
            self._killed.update(running)
        for key, pid in running.items():
            self._signal(key, pid, signal.SIGTERM)
        if not self._stop_threads(TERMINATE_GRACE_SECONDS):
            for key, pid in running.items():
                self._signal(key, pid, signal.SIGKILL)
            self._stop_threads(TERMINATE_GRACE_SECONDS)
        self.sync()

    def _stop_threads(self, timeout: float) -> bool:
        """Ask every thread to stop after its current task; True if all stopped in time."""
        deadline = time.monotonic() + timeout
        with self._lock:
            told, self._threads, self._idle = self._threads, [], 0
            self._stopping.extend(told)
            stopping = list(self._stopping)
        # One pill per thread, sent once: a stray pill would stop a thread
        # started later for new work.
        for _ in told:
            self._inbox.put(None)
        for thread in stopping:
            thread.join(max(deadline - time.monotonic(), 0))
        with self._lock:
            self._stopping = [thread for thread in self._stopping if thread.is_alive()]
            return not self._stopping

    # ---- what this executor adds to execconsole --------------------------------
    @classmethod
    def cli_groups(cls) -> list[CliGroup]:
        return [
            CliGroup(
                name="threads",
                help="Try the thread-pool executor from the command line.",
                target="execconsole_threads.cli:app",
            )
        ]

    @classmethod
    def console_panels(cls) -> list[ConsolePanel]:
        return [
            ConsolePanel(
                id="thread-pool",
                title="Thread pool",
                target="execconsole_threads.panel:build_panel",
            )
        ]

    @classmethod
    def key_bindings(cls) -> list[KeyBinding]:
        return [
            KeyBinding(
                key="G",
                description="Grow thread pool",
                action=grow_pool,
                capability="supports_live_scaling",
            )
        ]


def grow_pool(executor: BaseExecutor, selected: TaskKey | None) -> str:
    """Key action: allow one more thread (one more task at a time)."""
    if executor.parallelism == 0:
        return f"{executor.executor_name}: the pool has no limit already"
    executor.set_parallelism(executor.parallelism + 1)
    return f"{executor.executor_name}: the pool may now use {executor.parallelism} threads"
