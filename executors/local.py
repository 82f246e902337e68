"""LocalExecutor: tries run in parallel by worker processes on this machine.

The data flow::

     engine process                   :   worker processes (forkserver children)
                                      :
     queue_workload()                 :
       -> queued_tasks                :
       -> heartbeat(): trigger_tasks  :
       -> execute_async()             :
             |                        :
             | Dispatch / Retire      :
             v                        :
     +----------------+               :   +----------+   +------------+   +--------------+
     | activity queue |===================>| worker 1 |-->| supervisor |-->| task process |
     | (shared, FIFO) |               :   | worker 2 |   | claim, log |   | own session  |
     +----------------+               :   |   ...    |   | timeout    |   | and group    |
                                      :   +----------+   +------------+   +--------------+
     +----------------+               :        |
     |  result queue  |<=======================+  Started / Finished / Refused
     +----------------+               :
             |                        :
             v                        :
     sync() -> event_buffer -> get_event_buffer() -> engine

Engine to activity queue. ``execute_async`` pickles a ``Dispatch`` (the workload
and its place ``seq`` in the queue) and writes it without blocking; if the
socket is full the message waits in a local backlog that every ``sync`` flushes,
so the engine never waits on its workers. While recent tries are short, the
heartbeat hands out one try per worker beyond ``parallelism`` (``prefetch_depth``):
it waits in the queue, and a worker that finishes a try takes it at once
instead of waiting for the engine to read the report and write the next
dispatch. Only ``parallelism`` workers exist, so no more run at once; a
prefetched try counts as waiting, and ``dequeue`` takes it back by revoking
its token. When tries end within milliseconds, more wait per worker and
``wait_for_events`` lets reports gather for up to a few milliseconds while
every worker has work waiting, so one wake-up of the engine reads several.

Activity queue to workers. The queue is one ``SOCK_SEQPACKET`` socket pair
whose far end every worker shares. A multiprocessing queue would need a reader
lock, and an idle worker holds that lock while it waits: SIGKILL that worker
and the lock is never released, freezing every other worker. A seqpacket
socket hands each record to exactly one reader with no lock at all, keeps the
order in which records were written, and tells the workers when the engine has
gone (end of file). Each worker counts the messages it has taken in its own
lock-free ``multiprocessing.Value``; sent minus the sum of those counters is
the number of unread messages.

Workers to task processes. A worker claims the try's token, runs the command
through ``executors.supervisor.run_workload`` (own session, /dev/null stdin,
the try's log file, its timeout) and sets its process title to say what it is
doing. Output goes first to the worker's spool, which becomes the try's log
file once the try writes or outlives its quiet start; a silent short try
creates no file (executors/log_spool.py). Workers are forked on demand by a
forkserver started early (executors/process_context.py), so creating one
is safe even after the console has started threads, and costs no fresh
interpreter.

Workers to result queue. A worker reports ``Started`` (pid, create time) as soon
as the task process exists and ``Finished`` when it ends; ``Refused`` if the
token was claimed or revoked elsewhere. A try that ends within its first few
milliseconds (the quiet start) is reported once, with ``Finished``. The result queue is a second socket
pair, for the same reasons as the first.

Result queue to event buffer. ``sync`` reads every waiting result without
blocking and turns it into ``running_state`` / ``success`` / ``fail``. It also
reaps workers that died: the try a dead worker was running has its process
tree killed and a FAILED event naming the worker; a try a dead worker had
taken but not yet reported is found through the queue's order and the claim
journals (executors/claims.py), and failed (or its real outcome used) after a short grace. Finally it
spawns workers while work waits, up to ``parallelism``.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import logging
import math
import multiprocessing
import multiprocessing.forkserver
import os
import select
import shutil
import socket
import struct
import tempfile
import termios
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, replace
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

import psutil

from executors import local_worker
from executors.adoption import (
    AdoptedTry,
    adopt_from_claims,
    killed_reason,
    outcome_state,
    poll_adopted,
    read_claim,
)
from executors.base import (
    Adoption,
    AdoptionRecord,
    BaseExecutor,
    WorkerInfo,
)
from executors.claims import CLAIMED, FINISHED, REVOKED, STARTED, ClaimBook
from executors.local_worker import (
    MAX_MESSAGE_BYTES,
    Dispatch,
    Finished,
    Refused,
    Retire,
    Started,
    WorkerConfig,
    decode_result,
    encode,
    worker_name,
    worker_title,
)
from executors.log_spool import reclaim_spool, writer_name
from executors.options import ExecutorOption
from executors.process_context import (
    main_module_hidden,
    prepare_process_context,
    workers_left_running,
)
from executors.process_trees import (
    process_tree,
    same_process_alive,
    signal_each,
    stop_process_trees,
)
from executors.reasons import reason_for_exit
from executors.state import TaskState
from executors.supervisor import (
    HOSTNAME,
    TERMINATE_GRACE_SECONDS,
    kill_process_tree,
    now_iso,
    signal_group,
    wait_until_gone,
)
from executors.task_key import TaskKey
from executors.vended import ConsolePanel
from executors.workload import TaskReport, Workload

log = logging.getLogger(__name__)

QUIET_START_SECONDS = 0.005
"""Tries that end this quickly are reported once, at the end (see ``run_workload``)."""


# ---- the executor's own bookkeeping -------------------------------------------------
@dataclass(slots=True)
class _InFlight:
    """A try written to the activity queue and not yet finished."""

    seq: int
    key: TaskKey
    workload: Workload
    worker_pid: int | None = None  # known once its worker reports Started
    running: TaskReport | None = None
    kill_requested: bool = False
    kill_sent: bool = False
    kill_landed: bool = False  # the kill found the process still running
    suspect_since: float | None = None  # a worker died while this was unaccounted for
    suspect_cause: str = ""
    resolving: bool = False  # a background thread is settling it
    started_mono: float = 0.0  # when its Started report arrived (monotonic)


@dataclass(slots=True)
class _Worker:
    """One worker process, alive or recently dead."""

    process: BaseProcess
    pid: int
    name: str
    taken: Any  # its multiprocessing Value counting messages taken
    busy_with: TaskKey | None = None
    tasks_done: int = 0
    alive: bool = True
    exit_reason: str | None = None
    ended_at: float | None = None
    spawned_at: float = 0.0
    # Set once its forkserver died: the worker is then watched through this pidfd.
    pidfd: int | None = None


# What multiprocessing reports for every forkserver child once the forkserver is gone.
FORKSERVER_GONE_EXITCODE = 255


def _worker_exit_reason(exitcode: int | None) -> str:
    if exitcode is None:
        return "exit status unknown"
    if exitcode == 0:
        return "retired"
    return reason_for_exit(exitcode) or "retired"


class LocalExecutor(BaseExecutor):
    """Run tries in parallel worker processes on this machine.

    Options (``options`` dict, from the config file):
        terminate_grace: seconds between SIGTERM and SIGKILL when a try is
            killed or times out (default 5).
    """

    name: ClassVar[str] = "local"
    is_local: ClassVar[bool] = True
    is_single_threaded: ClassVar[bool] = False
    is_production: ClassVar[bool] = True
    serve_logs: ClassVar[bool] = True
    supports_kill: ClassVar[bool] = True
    supports_live_scaling: ClassVar[bool] = True
    supports_adoption: ClassVar[bool] = True
    option_specs: ClassVar[Mapping[str, ExecutorOption]] = MappingProxyType(
        {
            "terminate_grace": ExecutorOption("seconds", 0, 3600),
            "prefetch": ExecutorOption("flag"),
            "quiet_start": ExecutorOption("seconds", 0, 60),
            "log_every_try": ExecutorOption("flag"),
        }
    )

    LOST_TRY_GRACE: ClassVar[float] = 1.0
    """After a worker dies, how long the others have to report tries they took."""
    DEAD_WORKER_SHOWN_FOR: ClassVar[float] = 10.0
    MAX_SPAWNS_PER_SYNC: ClassVar[int] = 4
    """Each spawn costs a few milliseconds; keep one sync short even when scaling up a lot."""
    ADOPTED_POLL_SECONDS: ClassVar[float] = 0.2
    MAX_START_FAILURES: ClassVar[int] = 3
    """Workers in a row that die before taking any work before waiting work is failed."""
    START_FAILURE_WINDOW: ClassVar[float] = 5.0
    PREFETCH_BELOW_SECONDS: ClassVar[float] = 0.5
    """Tries shorter than this (recent average) get the next one waiting at the workers."""
    RESULT_LINGER_SECONDS: ClassVar[float] = 0.004
    """At most this long between reads of the result queue while workers have work waiting.

    With tries of a millisecond the engine would otherwise wake for every
    report, and its wake-ups cost as much CPU as a worker's try (measured: the
    host's CPU halved with reports read in batches).
    """
    MAX_PREFETCH_PER_WORKER: ClassVar[int] = 8
    RATE_WINDOW_SECONDS: ClassVar[float] = 0.25

    def __init__(
        self,
        parallelism: int = 2,
        *,
        name: str | None = None,
        home: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(parallelism, name=name, home=home, options=options)
        self.terminate_grace = float(self.options.get("terminate_grace", TERMINATE_GRACE_SECONDS))
        self.prefetch = _option_flag(self.options.get("prefetch", True), "prefetch")
        # False (the default): a try that ends silently within its quiet start
        # leaves no log file (executors/log_spool.py). True: every try gets one.
        self.log_every_try = _option_flag(self.options.get("log_every_try", False), "log_every_try")
        quiet_start = self.options.get("quiet_start", QUIET_START_SECONDS)
        try:
            self.quiet_start = float(quiet_start)
        except (TypeError, ValueError):
            raise ValueError(
                f"executor option 'quiet_start' must be a number of seconds, not {quiet_start!r}"
            ) from None
        if not 0 <= self.quiet_start <= 60:
            raise ValueError(
                f"executor option 'quiet_start' must be between 0 and 60 seconds, not {self.quiet_start:g}"
            )
        self._recent_duration: float | None = None  # moving average of try durations
        # (monotonic time, reports read) for each read in the last RATE_WINDOW_SECONDS.
        self._report_reads: deque[tuple[float, int]] = deque()
        self._reports_in_window = 0
        self._started = False
        self._ending = False
        self._stopping_why = ""  # set while end() or terminate() kills what is left
        self._owned_home: str | None = None
        self._claims: ClaimBook | None = None
        self._context: ForkServerContext | None = None

        self._inflight: dict[int, _InFlight] = {}  # by seq, in dispatch order
        self._inflight_by_key: dict[TaskKey, _InFlight] = {}
        self._suspects: deque[_InFlight] = deque()
        self._settled: deque[tuple[int, TaskState, TaskReport]] = deque()  # from threads
        self._adopted: dict[TaskKey, AdoptedTry] = {}
        self._next_adopted_poll = 0.0
        self._helpers: list[threading.Thread] = []

        self._workers: dict[int, _Worker] = {}
        self._pid_by_name: dict[str, int] = {}
        self._pid_by_sentinel: dict[int, int] = {}
        self._backlog: deque[bytes] = deque()
        self._pill_seqs: deque[int] = deque()
        self._start_failures = 0  # workers in a row that died before taking any message
        self._reset_queue_counts()

    def _reset_queue_counts(self) -> None:
        """Counts that describe one activity queue; a message's seq is its place in it."""
        self._next_seq = 0
        self._sent = 0
        self._taken_by_forgotten = 0
        self._max_reported_seq = -1
        self._backlog.clear()
        self._pill_seqs.clear()

    # ---- lifecycle ------------------------------------------------------------
    @classmethod
    def warm_up(cls) -> None:
        """Start the forkserver now: its interpreter boots while the host parses and opens the store."""
        prepare_process_context()

    def start(self) -> None:
        """Create the queues and the forkserver; workers are spawned when work arrives."""
        if self._started:
            return
        self._context = prepare_process_context()
        home = self.home
        if home is None:
            home = self._owned_home = tempfile.mkdtemp(prefix="execconsole-local-")
        self._claims = ClaimBook(Path(home) / "claims")
        self._worker_config = WorkerConfig(
            executor_name=self.executor_name,
            claims_dir=str(Path(home) / "claims"),
            log_path=str(Path(home) / "logs" / f"{self.executor_name}-workers.log"),
            terminate_grace=self.terminate_grace,
            engine_pid=os.getpid(),
            quiet_start=self.quiet_start,
            spool=not self.log_every_try,
        )
        self._activity, self._activity_far = socket.socketpair(
            socket.AF_UNIX, socket.SOCK_SEQPACKET
        )
        self._results, self._results_far = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._activity.setblocking(False)
        self._results.setblocking(False)
        self._reset_queue_counts()
        self._result_buffer = bytearray(MAX_MESSAGE_BYTES)
        self._result_view = memoryview(self._result_buffer)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._watch = select.poll()
        self._watch.register(self._results.fileno(), select.POLLIN)
        self._watch.register(self._wake_r, select.POLLIN)
        self._started = True
        self._ending = False
        self._stopping_why = ""

    def end(self, timeout: float = 10.0) -> None:
        """Let dispatched and adopted tries finish, retire every worker, release everything.

        Tries still in ``queued_tasks`` were never handed over and stay there.

        Whatever still runs at the deadline is terminated, so this returns
        within ``timeout`` plus at most four terminate graces (in practice far
        less: most processes die at the first SIGTERM). Results that arrive
        while waiting go to the event buffer.
        """
        if not self._started:
            return
        self._ending = True
        deadline = time.monotonic() + timeout
        while True:
            self.sync()
            self._top_up_pills()
            if not self._busy():
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._stop_everything(f"executor ended: still running after {timeout:g}s")
                break
            self.wait_for_events(min(remaining, 0.25))
        self._close()

    def detach(self) -> None:
        """Let go of workers and tries without stopping them; the next engine adopts them.

        Workers finish the try in hand, record its outcome in the claim file,
        find the engine gone and exit without taking anything more.
        """
        if not self._started:
            return
        self._ending = True
        for worker in self._workers.values():
            # multiprocessing terminates daemon children when this process
            # exits; detached workers must outlive it, so they leave its books.
            multiprocessing.process._children.discard(worker.process)  # type: ignore[attr-defined]
            if worker.alive:
                workers_left_running()
        self._close()

    def terminate(self) -> None:
        """Stop now: SIGTERM task process groups and workers, SIGKILL what is left."""
        if not self._started:
            return
        self._ending = True
        self._stop_everything("executor terminated")
        self._close()

    def _busy(self) -> bool:
        return bool(
            self._inflight
            or self._adopted
            or any(worker.alive for worker in self._workers.values())
            or any(helper.is_alive() for helper in self._helpers)
        )

    def _stop_everything(self, why: str) -> None:
        """Kill every try and worker, waiting at most four terminate graces."""
        self._stopping_why = why
        self._read_results()
        assert self._claims is not None
        # Tries no worker has started yet must never start now.
        for entry in list(self._inflight.values()):
            if entry.worker_pid is None and self._claims.revoke(entry.workload.token, why=why):
                self._finish(
                    entry,
                    TaskState.FAILED,
                    TaskReport(hostname=HOSTNAME, ended_at=now_iso(), reason=f"not started: {why}"),
                )
        roots = self._task_roots()
        tasks: list[psutil.Process] = []
        for pid, create_time in roots:
            tasks.extend(process_tree(pid, create_time) or [])
            signal_group(pid, 15)
        signal_each(tasks, 15)
        # Workers report how the tries they ran ended; give them the grace.
        tasks = self._wait_collecting(tasks, self.terminate_grace)
        for pid, _create_time in roots:
            signal_group(pid, 9)
        signal_each(tasks, 9)
        tasks = self._wait_collecting(tasks, self.terminate_grace)
        workers = []
        for worker in self._workers.values():
            if worker.alive:
                with contextlib.suppress(psutil.NoSuchProcess):
                    workers.append(psutil.Process(worker.pid))
        signal_each(workers, 15)
        left = wait_until_gone([*tasks, *workers], self.terminate_grace)
        # A worker may have started a try after the claim files were read; the
        # claim file names that process.
        for pid, create_time in self._task_roots():
            late = process_tree(pid, create_time) or []
            signal_group(pid, 9)
            left.extend(late)
        signal_each(left, 9)
        wait_until_gone(left, self.terminate_grace)
        self._read_results()
        self._reap_exited_workers(self.terminate_grace)
        deadline = time.monotonic() + self.terminate_grace
        for helper in self._helpers:
            helper.join(timeout=max(deadline - time.monotonic(), 0.0))
        self._drain_settled()
        for entry in list(self._inflight.values()):
            report = replace(
                entry.running or TaskReport(hostname=HOSTNAME),
                ended_at=now_iso(),
                reason=f"{why}; exit status unknown",
            )
            self._finish(entry, TaskState.FAILED, report)
        for key, adopted in list(self._adopted.items()):
            self.fail(
                key,
                TaskReport(pid=adopted.pid, hostname=HOSTNAME, ended_at=now_iso(), reason=why),
            )
        self._adopted.clear()

    def _reap_exited_workers(self, timeout: float) -> None:
        """Reap workers until none is left alive in the books, or ``timeout`` passes.

        A worker is the forkserver's child: its exit status reaches our
        sentinel only once the forkserver has reaped it, a moment after the
        process became a zombie. Polling once could miss it and leave a dead
        worker counted alive, its death unlogged.
        """
        deadline = time.monotonic() + timeout
        while True:
            self._reap_workers()
            if not any(worker.alive for worker in self._workers.values()):
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(remaining, 0.02))

    def _wait_collecting(
        self, processes: list[psutil.Process], timeout: float
    ) -> list[psutil.Process]:
        """Wait for task processes to go and their workers to report them, reading results.

        Reading as we wait also means no worker stays blocked on a full result queue.
        """
        deadline = time.monotonic() + timeout
        while True:
            self._read_results()
            self._reap_workers()
            processes = wait_until_gone(processes, 0)
            unreported = any(
                entry.worker_pid in self._workers and self._workers[entry.worker_pid].alive
                for entry in self._inflight.values()
            )
            if (not processes and not unreported) or time.monotonic() >= deadline:
                return processes
            time.sleep(0.02)

    def _task_roots(self) -> list[tuple[int, float | None]]:
        """Pids (with create times) of every task process this executor may have started."""
        assert self._claims is not None
        roots: list[tuple[int, float | None]] = []
        for entry in self._inflight.values():
            if entry.running is not None and entry.running.pid:
                roots.append((entry.running.pid, entry.running.pid_create_time))
                continue
            record = read_claim(self._claims, entry.workload.token) or {}
            if record.get("state") == STARTED and record.get("pid"):
                roots.append((record["pid"], record.get("pid_create_time")))
        for adopted in self._adopted.values():
            if adopted.pid:
                roots.append((adopted.pid, adopted.create_time))
        return roots

    def _close(self) -> None:
        for worker in self._workers.values():
            self._forget_sentinel(worker)
        self._workers.clear()
        self._pid_by_name.clear()
        for closeable in (self._activity, self._activity_far, self._results, self._results_far):
            closeable.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._backlog.clear()
        self._suspects.clear()
        self._settled.clear()
        self._started = False
        if self._owned_home:
            shutil.rmtree(self._owned_home, ignore_errors=True)
            self._owned_home = None

    # ---- the heartbeat ------------------------------------------------------------
    def heartbeat(self) -> int:
        """Read finished tries first, so the slots they free are refilled in the same beat."""
        if self._started:
            self._read_results()
        return super().heartbeat()

    def execute_async(self, key: TaskKey, workload: Workload) -> None:
        """Write the workload to the activity queue; never blocks."""
        if not self._started:
            raise RuntimeError(f"executor {self.executor_name!r}: call start() before heartbeat()")
        seq = self._next_seq
        data = encode(Dispatch(seq, workload))
        if len(data) > MAX_MESSAGE_BYTES:
            self.fail(
                key,
                TaskReport(
                    hostname=HOSTNAME,
                    ended_at=now_iso(),
                    reason=f"not started: its workload is {len(data)} bytes; "
                    f"a worker message holds at most {MAX_MESSAGE_BYTES}",
                ),
            )
            return
        self._next_seq += 1
        entry = _InFlight(seq, key, workload)
        self._inflight[seq] = entry
        self._inflight_by_key[key] = entry
        self._write(data)

    def sync(self) -> None:
        """Collect results, reap dead workers, settle lost tries, spawn workers. Never blocks."""
        if not self._started:
            return
        self._read_results()
        if self._backlog:
            self._flush_backlog()
        self._reap_workers()  # before settling: it drains the helpers' wake-up pipe
        if self._settled:
            self._drain_settled()
        if self._suspects:
            self._audit_suspects()
        self._balance_workers()
        if self._adopted:
            self._poll_adopted()

    def wait_handles(self) -> list[Any]:
        """The result queue, the helpers' wake-up pipe and every live worker's sentinel."""
        if not self._started:
            return []
        return [self._results, self._wake_r, *self._pid_by_sentinel]

    def wait_for_events(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds until a result, a worker exit or a settled try.

        Like waiting on ``wait_handles()``, with this executor's own timers
        (adopted tries, the lost-try grace) taken into account. Returns True if
        something is ready.
        """
        if not self._started:
            time.sleep(timeout)
            return False
        if self._backlog or self._settled:
            return True
        if self._adopted:
            timeout = min(timeout, max(self._next_adopted_poll - time.monotonic(), 0.0))
        if self._suspects:
            timeout = min(timeout, self.LOST_TRY_GRACE / 4)
        linger = self._linger() if timeout > 0 else 0.0
        if linger > 0.0:
            # Let reports gather while the workers work through what waits for
            # them: one wake-up then reads several (a dying worker is noticed
            # at most this much later).
            pause = min(linger, timeout)
            time.sleep(pause)
            timeout -= pause
        return bool(self._watch.poll(max(timeout, 0.0) * 1000))

    # ---- the activity queue ---------------------------------------------------
    def _write(self, data: bytes) -> None:
        if not self._backlog:
            try:
                self._activity.send(data)
                self._sent += 1
                return
            except BlockingIOError:
                pass
        self._backlog.append(data)

    def _flush_backlog(self) -> None:
        while self._backlog:
            try:
                self._activity.send(self._backlog[0])
            except BlockingIOError:
                return
            self._backlog.popleft()
            self._sent += 1

    def _send_pill(self) -> None:
        seq = self._next_seq
        self._next_seq += 1
        self._pill_seqs.append(seq)
        self._write(encode(Retire(seq)))

    def _taken_total(self) -> int:
        """How many messages workers have taken from the activity queue, ever."""
        workers = list(self._workers.values())  # gauges() may run on another thread
        return self._taken_by_forgotten + sum(worker.taken.value for worker in workers)

    @property
    def unread_messages(self) -> int:
        """Messages written to the activity queue (or waiting to be) that no worker has taken."""
        if not self._started:
            return 0
        return max(self._sent - self._taken_total(), 0) + len(self._backlog)

    def _received_prefix(self) -> int:
        """Every message with a smaller seq has been taken by some worker.

        The queue keeps order, so a message is taken once the counters say so,
        once any later message has been reported on, or once the kernel says
        the socket holds nothing unread. The last check covers a worker killed
        between taking a message and counting it.
        """
        taken = max(self._taken_total(), self._max_reported_seq + 1)
        if taken < self._sent and _unread_bytes(self._activity) == 0:
            taken = self._sent
        return taken

    def _unread_pills(self) -> int:
        taken = self._taken_total()
        while self._pill_seqs and self._pill_seqs[0] < taken:
            self._pill_seqs.popleft()
        return len(self._pill_seqs)

    def _top_up_pills(self) -> None:
        """While ending: one poison pill waits for every live worker."""
        alive = sum(1 for worker in self._workers.values() if worker.alive)
        for _ in range(alive - self._unread_pills()):
            self._send_pill()

    # ---- results --------------------------------------------------------------
    def _read_results(self) -> None:
        finished = self._read_waiting_results()
        if finished:
            self._note_reports(finished)

    def _read_waiting_results(self) -> int:
        """Turn every report waiting in the result queue into events; return how many ended a try."""
        results, view = self._results, self._result_view
        now = 0.0
        finished = 0
        while True:
            try:
                size = results.recv_into(self._result_buffer)
            except BlockingIOError:
                return finished
            except OSError:
                return finished  # closed
            message = decode_result(view[:size])
            now = now or time.monotonic()
            self._start_failures = 0
            if message.seq > self._max_reported_seq:
                self._max_reported_seq = message.seq
            entry = self._inflight.get(message.seq)
            worker = self._workers.get(message.worker_pid)
            if type(message) is Started:
                if entry is None:
                    continue  # settled already (revoked or failed while it was on its way)
                entry.worker_pid = message.worker_pid
                entry.running = message.report
                entry.started_mono = now
                if worker is not None:
                    worker.busy_with = entry.key
                self.running_state(entry.key, message.report)
                if entry.kill_requested and not entry.kill_sent:
                    self._kill_in_background(entry)
            elif type(message) is Finished:
                finished += 1
                if worker is not None:
                    worker.busy_with = None
                    worker.tasks_done += 1
                if entry is not None:
                    # No Started report: it ended within its quiet start.
                    self._note_duration(now - entry.started_mono if entry.started_mono else 0.0)
                    self._finish_with_report(entry, message.report)
            elif type(message) is Refused:
                if worker is not None:
                    worker.tasks_done += 1
                if entry is not None:
                    self._finish(
                        entry,
                        TaskState.FAILED,
                        TaskReport(
                            hostname=HOSTNAME,
                            worker=worker.name if worker else None,
                            ended_at=now_iso(),
                            reason=message.reason,
                        ),
                    )

    def _note_reports(self, count: int) -> None:
        now = time.monotonic()
        reads = self._report_reads
        reads.append((now, count))
        self._reports_in_window += count
        cutoff = now - self.RATE_WINDOW_SECONDS
        while reads[0][0] < cutoff:
            self._reports_in_window -= reads.popleft()[1]

    def report_rate(self) -> float:
        """Tries ended per second, over at most the last ``RATE_WINDOW_SECONDS``.

        Counted from the oldest read still in the window: the reports read
        since then, over the time since then. Dividing by the whole window
        instead underestimated the rate for a window's length after every
        start (or pause) of work; with the rate a few times too low, the engine
        lingered milliseconds over reports while both workers had run dry
        (measured: a 2 ms wait every other try for the first hundred tries).
        From the engine's thread only: it drops the entries that have aged out.
        """
        reads = self._report_reads
        now = time.monotonic()
        cutoff = now - self.RATE_WINDOW_SECONDS
        while reads and reads[0][0] < cutoff:
            self._reports_in_window -= reads.popleft()[1]
        if len(reads) < 2:
            return 0.0  # no interval to measure over yet
        first_read_at, first_count = reads[0]
        return (self._reports_in_window - first_count) / max(now - first_read_at, 0.001)

    def _note_duration(self, seconds: float) -> None:
        previous = self._recent_duration
        self._recent_duration = seconds if previous is None else previous + (seconds - previous) / 8

    # ---- prefetch ---------------------------------------------------------------------
    def prefetch_depth(self) -> int:
        """Tries waiting at the workers while recent tries are short; none otherwise.

        A worker that finishes a try would otherwise wait for the engine to read
        its report and write the next dispatch: with tries of a few milliseconds
        that hop is most of the cost (workers measured idle a third of the
        time). A waiting try is taken the moment any worker is free. Long tries
        gain nothing from it, and a waiting try can no longer be overtaken by a
        higher priority, so they get none.

        One waits per worker; more (up to ``MAX_PREFETCH_PER_WORKER``) while
        tries end so fast that the workers would run dry during twice
        ``RESULT_LINGER_SECONDS``, so the engine can read reports in batches
        (see ``wait_for_events``) without the workers waiting for it.
        """
        if not self.prefetch or self._ending or self._recent_duration is None:
            return 0
        if self._recent_duration >= self.PREFETCH_BELOW_SECONDS:
            return 0
        wanted = 2 * self.RESULT_LINGER_SECONDS * self.report_rate()
        per_worker = min(max(math.ceil(wanted / self.parallelism), 1), self.MAX_PREFETCH_PER_WORKER)
        return self.parallelism * per_worker

    def _linger(self) -> float:
        """How long the next wait may leave reports unread: workers keep busy meanwhile.

        Half the time the workers need to take what waits for them in the
        activity queue at the recent rate, at most ``RESULT_LINGER_SECONDS``;
        nothing unless every worker has a try waiting.
        """
        if not self.prefetch or self._ending:
            return 0.0
        waiting = self._sent - self._taken_total()
        if waiting < self.parallelism:
            return 0.0
        rate = self.report_rate()
        if rate <= 0.0:
            return 0.0
        return min(self.RESULT_LINGER_SECONDS, 0.5 * waiting / rate)

    def prefetched(self) -> list[TaskKey]:
        """Tries written to the activity queue that no worker has reported started."""
        entries = list(self._inflight.values())  # gauges() may run on another thread
        return [
            entry.key for entry in entries if entry.running is None and not entry.kill_requested
        ]

    def dequeue(self, key: TaskKey) -> bool:
        """Take back a queued try, or a prefetched one no worker has claimed yet (revoked)."""
        if super().dequeue(key):
            return True
        entry = self._inflight_by_key.get(key)
        if entry is None or entry.running is not None or entry.kill_requested:
            return False
        if self._claims is None or not self._claims.revoke(
            entry.workload.token, why="taken back before it started"
        ):
            return False  # a worker claimed it: it runs, and reports as usual
        # The worker that reads the message finds the revocation and refuses it;
        # with the entry gone, that Refused is ignored.
        self._inflight.pop(entry.seq, None)
        del self._inflight_by_key[key]
        self.running.discard(key)
        return True

    def _finish_with_report(self, entry: _InFlight, report: TaskReport) -> None:
        # A try that ended by itself before the kill reached it keeps its own outcome.
        if entry.kill_requested and entry.kill_landed:
            report.reason = killed_reason(report)
            self._finish(entry, TaskState.FAILED, report)
            return
        state = outcome_state(report)
        if state is TaskState.FAILED and self._stopping_why:
            report.reason = f"{self._stopping_why}; {report.reason}"
        self._finish(entry, state, report)

    def _finish(self, entry: _InFlight, state: TaskState, report: TaskReport) -> None:
        self._inflight.pop(entry.seq, None)
        if self._inflight_by_key.get(entry.key) is entry:
            del self._inflight_by_key[entry.key]
        self.change_state(entry.key, state, report)

    def _drain_settled(self) -> None:
        while self._settled:
            seq, state, report = self._settled.popleft()
            entry = self._inflight.get(seq)
            if entry is not None:
                self._finish(entry, state, report)

    # ---- workers ----------------------------------------------------------------
    def _spawn_worker(self) -> None:
        assert self._context is not None
        taken = self._context.Value(ctypes.c_ulonglong, 0, lock=False)
        process = self._context.Process(
            target=local_worker.run_worker,
            args=(self._activity_far, self._results_far, taken, self._worker_config),
            name=f"{self.executor_name}-worker",
            # A daemon worker is terminated if the engine exits without end(),
            # instead of the interpreter waiting on it forever.
            daemon=True,
        )
        with main_module_hidden():
            process.start()
        pid = process.pid
        assert pid is not None
        name = worker_name(self.executor_name, pid)
        self._workers[pid] = _Worker(
            process=process, pid=pid, name=name, taken=taken, spawned_at=time.monotonic()
        )
        self._pid_by_name[name] = pid
        self._pid_by_sentinel[process.sentinel] = pid
        self._watch.register(process.sentinel, select.POLLIN)

    def _forget_sentinel(self, worker: _Worker) -> None:
        if worker.pidfd is not None:
            pidfd, worker.pidfd = worker.pidfd, None
            self._pid_by_sentinel.pop(pidfd, None)
            with contextlib.suppress(KeyError, ValueError):
                self._watch.unregister(pidfd)
            os.close(pidfd)
            return
        try:
            sentinel = worker.process.sentinel
        except ValueError:
            return  # closed already
        if self._pid_by_sentinel.pop(sentinel, None) is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._watch.unregister(sentinel)

    def _outlived_its_forkserver(self, worker: _Worker) -> bool:
        """Whether a worker reported dead is alive: its forkserver died, not it.

        A forkserver child's exit status reaches us through the forkserver;
        once that process is gone, multiprocessing reports exit code 255 for
        every worker, alive or not. A live worker goes on with its try and
        reports it as ever; from now on a pidfd tells when it exits (its exit
        status died with the forkserver). New workers come from a new forkserver.
        """
        try:
            pidfd = os.pidfd_open(worker.pid)
        except OSError:
            return False  # gone indeed (or a kernel without pidfds: settle it as dead)
        if select.select([pidfd], [], [], 0)[0]:
            os.close(pidfd)  # exited too (a zombie until init reaps it)
            return False
        self._forget_sentinel(worker)
        worker.pidfd = pidfd
        self._pid_by_sentinel[pidfd] = worker.pid
        self._watch.register(pidfd, select.POLLIN)
        log.warning(
            "%s: the worker processes' forkserver died; worker %d goes on, watched by its pid",
            self.executor_name,
            worker.pid,
        )
        return True

    def _reap_workers(self) -> None:
        """Notice workers that exited; settle what a dead one had in hand."""
        ready = self._watch.poll(0)
        now = time.monotonic()
        for fd, _events in ready:
            if fd == self._wake_r:
                # A helper thread's nudge; what it settled is in _settled already.
                with contextlib.suppress(OSError):
                    os.read(self._wake_r, 4096)
                continue
            pid = self._pid_by_sentinel.get(fd)
            if pid is None:
                continue
            worker = self._workers[pid]
            exitcode: int | None
            if worker.pidfd is not None:
                # Its exit status died with the forkserver: only a try in hand says it failed.
                exitcode = 0
                exit_reason = "exit status unknown: its forkserver had died"
            else:
                exitcode = worker.process.exitcode
                if exitcode is None:
                    continue
                if exitcode == FORKSERVER_GONE_EXITCODE and self._outlived_its_forkserver(worker):
                    continue
                exit_reason = _worker_exit_reason(exitcode)
            self._forget_sentinel(worker)
            worker.process.close()
            worker.alive = False
            worker.ended_at = now
            worker.exit_reason = exit_reason
            busy_key, worker.busy_with = worker.busy_with, None
            if exitcode != 0 and worker.taken.value == 0:
                if now - worker.spawned_at < self.START_FAILURE_WINDOW:
                    self._start_failures += 1
            if exitcode != 0 or busy_key is not None:
                self._worker_died(worker, now)
        for pid, worker in list(self._workers.items()):
            if (
                not worker.alive
                and worker.ended_at
                and now - worker.ended_at > self.DEAD_WORKER_SHOWN_FOR
            ):
                self._taken_by_forgotten += worker.taken.value
                del self._workers[pid]
                self._pid_by_name.pop(worker.name, None)

    def _worker_died(self, worker: _Worker, now: float) -> None:
        cause = f"worker {worker.pid} died ({worker.exit_reason})"
        if self._stopping_why:
            # This executor is stopping its own workers: expected, not a warning.
            cause = f"{self._stopping_why}; {cause}"
            log.info("%s %s", self.executor_name, cause)
        else:
            log.warning("%s %s", self.executor_name, cause)
        for entry in list(self._inflight.values()):
            if entry.worker_pid == worker.pid:
                self._resolve(entry, cause)
            elif entry.worker_pid is None and entry.suspect_since is None:
                # It may be the message this worker had just taken; the audit
                # decides once the other workers have had time to report theirs.
                entry.suspect_since = now
                entry.suspect_cause = cause
                self._suspects.append(entry)

    def _audit_suspects(self) -> None:
        """Settle tries a dead worker may have taken from the queue but never reported."""
        now = time.monotonic()
        received: int | None = None
        while self._suspects:
            entry = self._suspects[0]
            if self._inflight.get(entry.seq) is not entry or entry.worker_pid is not None:
                self._suspects.popleft()  # reported or settled meanwhile
                entry.suspect_since = None
                continue
            assert entry.suspect_since is not None
            if now - entry.suspect_since < self.LOST_TRY_GRACE:
                return
            if received is None:
                received = self._received_prefix()
            if entry.seq >= received:
                return  # still unread in the queue; later ones are too
            self._suspects.popleft()
            self._resolve(entry, entry.suspect_cause)

    def _resolve(self, entry: _InFlight, cause: str) -> None:
        """Find out from the claim file what became of a try whose worker may be dead."""
        assert self._claims is not None
        token = entry.workload.token
        if entry.resolving:
            return
        if entry.worker_pid is None and self._claims.revoke(token, why=cause):
            self._finish(
                entry,
                TaskState.FAILED,
                TaskReport(
                    hostname=HOSTNAME,
                    ended_at=now_iso(),
                    reason=f"lost: taken from the queue by a worker that died before starting it; {cause}",
                ),
            )
            return
        record = read_claim(self._claims, token) or {}
        owner = record.get("worker_pid") or self._pid_by_name.get(record.get("worker") or "")
        owner_worker = self._workers.get(owner) if owner else None
        if owner_worker is not None and owner_worker.alive:
            entry.suspect_since = None  # a live worker has it and will report
            return
        state = record.get("state")
        if owner and state in (CLAIMED, STARTED) and entry.workload.log_path:
            reclaim_spool(entry.workload.log_path, writer_name(owner))
        if state == FINISHED:
            self._finish_with_report(entry, TaskReport.from_json(record))
        elif state == STARTED or entry.running is not None:
            running = entry.running or TaskReport.from_json(record)
            report = TaskReport(
                pid=running.pid,
                pid_create_time=running.pid_create_time,
                hostname=HOSTNAME,
                worker=running.worker,
                started_at=running.started_at,
                reason=f"{cause} while running it",
            )
            self._reap_in_background(entry, report)
        elif state == REVOKED:
            self._finish(
                entry,
                TaskState.FAILED,
                TaskReport(
                    hostname=HOSTNAME,
                    ended_at=now_iso(),
                    reason="not started: its token was revoked",
                ),
            )
        else:
            self._finish(
                entry,
                TaskState.FAILED,
                TaskReport(
                    hostname=HOSTNAME, ended_at=now_iso(), reason=f"lost: {cause} while starting it"
                ),
            )

    def _reap_in_background(self, entry: _InFlight, report: TaskReport) -> None:
        """Kill an orphaned task's tree off the engine thread; its FAILED event follows."""
        entry.resolving = True
        roots = [(report.pid, report.pid_create_time)] if report.pid else []

        def reap() -> None:
            try:
                stop_process_trees(roots, min(self.terminate_grace, 2.0))
            except Exception:  # the event must be sent even if the kill went wrong
                log.exception("could not stop the process tree of %s", entry.key)
            report.ended_at = now_iso()
            self._settled.append((entry.seq, TaskState.FAILED, report))
            self._wake()

        self._start_helper(reap, f"reap {entry.key}")

    def _kill_in_background(self, entry: _InFlight) -> None:
        running = entry.running
        if running is None or not running.pid:
            return
        entry.kill_sent = True
        pid, create_time = running.pid, running.pid_create_time

        def kill() -> None:
            if same_process_alive(pid, create_time):
                entry.kill_landed = True
                kill_process_tree(pid, self.terminate_grace)

        self._start_helper(kill, f"kill {entry.key}")

    def _start_helper(self, target: Any, name: str) -> None:
        self._helpers = [helper for helper in self._helpers if helper.is_alive()]
        helper = threading.Thread(target=target, name=name, daemon=True)
        self._helpers.append(helper)
        helper.start()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def _balance_workers(self) -> None:
        """Spawn workers while dispatched work outnumbers the workers that will take it."""
        alive = sum(1 for worker in self._workers.values() if worker.alive)
        if self._ending:
            # Pills are queued behind the remaining work; only a pool with no
            # worker left at all needs a new one to finish that work.
            if alive == 0 and self._inflight and self.unread_messages > self._unread_pills():
                if self._try_spawn():
                    self._top_up_pills()
            return
        if self._start_failures >= self.MAX_START_FAILURES:
            self._fail_unstarted_work()
            return
        wanted = len(self._inflight)
        if self.parallelism:
            wanted = min(wanted, self.parallelism)
        staying = alive - (self._unread_pills() if self._pill_seqs else 0)
        for _ in range(min(wanted - staying, self.MAX_SPAWNS_PER_SYNC)):
            if not self._try_spawn():
                break

    def _try_spawn(self) -> bool:
        """Spawn a worker; a failure (no memory, no forkserver) counts as a start failure."""
        try:
            self._spawn_worker()
        except OSError as error:
            log.error("%s: could not start a worker process: %s", self.executor_name, error)
            self._start_failures += 1
            return False
        return True

    def _fail_unstarted_work(self) -> None:
        """Workers die as soon as they start: fail what waits rather than spawn forever."""
        assert self._claims is not None
        reason = (
            f"not started: worker processes exit as soon as they start "
            f"({self._last_exit_reason()}); see {self._worker_config.log_path}"
        )
        log.error("%s: %s", self.executor_name, reason)
        for entry in list(self._inflight.values()):
            if entry.worker_pid is None and self._claims.revoke(entry.workload.token, why=reason):
                self._finish(
                    entry,
                    TaskState.FAILED,
                    TaskReport(hostname=HOSTNAME, ended_at=now_iso(), reason=reason),
                )
        # The next work to arrive gets fresh workers: the cause may have passed.
        self._start_failures = 0

    def _last_exit_reason(self) -> str:
        dead = [w for w in self._workers.values() if not w.alive and w.ended_at is not None]
        if not dead:
            return "exit status unknown"
        return max(dead, key=lambda w: w.ended_at or 0.0).exit_reason or "exit status unknown"

    # ---- optional capabilities ------------------------------------------------
    def set_parallelism(self, parallelism: int) -> None:
        """Change parallelism now: more workers spawn as work waits; idle ones retire.

        Workers retire by taking a poison pill, which a worker only reads
        between tries, so no running try is ever cut short.
        """
        super().set_parallelism(parallelism)
        if not self._started or not parallelism:
            return
        alive = sum(1 for worker in self._workers.values() if worker.alive)
        for _ in range(alive - self._unread_pills() - parallelism):
            self._send_pill()

    def kill(self, key: TaskKey) -> bool:
        """Kill a running try's process tree; its FAILED event ("killed by operator") follows.

        A try no worker has started yet is revoked and failed at once. Returns
        False if the key is not running here.
        """
        adopted = self._adopted.get(key)
        if adopted is not None:
            if not adopted.kill_requested and adopted.pid:
                adopted.kill_requested = True
                pid, create_time = adopted.pid, adopted.create_time

                def kill() -> None:
                    if same_process_alive(pid, create_time):
                        kill_process_tree(pid, self.terminate_grace)

                self._start_helper(kill, f"kill {key}")
            return True
        entry = self._inflight_by_key.get(key)
        if entry is None:
            return False
        if entry.kill_requested:
            return True
        entry.kill_requested = True
        if entry.running is not None:
            self._kill_in_background(entry)
            return True
        assert self._claims is not None
        if self._claims.revoke(entry.workload.token, why="killed by operator"):
            self._finish(
                entry,
                TaskState.FAILED,
                TaskReport(
                    hostname=HOSTNAME,
                    ended_at=now_iso(),
                    reason="killed by operator before it started",
                ),
            )
            return True
        record = read_claim(self._claims, entry.workload.token) or {}
        if record.get("state") == STARTED and record.get("pid"):
            entry.running = TaskReport.from_json(record)
            self._kill_in_background(entry)
        # Otherwise a worker is starting it right now; its Started report kills it.
        return True

    def adopt(self, records: list[AdoptionRecord]) -> dict[TaskKey, Adoption]:
        """Take over tries a dead engine left in flight, using their claim files.

        A token nobody claimed is revoked (NEVER_STARTED); a try whose process
        still runs is ADOPTED, watched by ``sync`` and reported when it ends; a
        try that ended is FINISHED with the old worker's report; anything else
        is LOST.
        """
        if not self._started:
            self.start()
        assert self._claims is not None
        outcomes, watched = adopt_from_claims(self._claims, records)
        for key, adopted in watched.items():
            self._adopted[key] = adopted
            self.running.add(key)
        return outcomes

    def _poll_adopted(self) -> None:
        now = time.monotonic()
        if now < self._next_adopted_poll:
            return
        self._next_adopted_poll = now + self.ADOPTED_POLL_SECONDS
        assert self._claims is not None
        for key, state, report in poll_adopted(
            self._adopted, self._claims, now, self.terminate_grace, self.executor_name
        ):
            self.change_state(key, state, report)

    def forget_finished(self, in_flight_tokens: set[str]) -> None:
        """Delete the claim files of tries whose outcome the engine has committed."""
        if self._claims is not None:
            self._claims.prune(in_flight_tokens)

    def worker_processes(self) -> list[WorkerInfo]:
        """Live workers, and dead ones for a few seconds with why they ended.

        Safe to call from another thread: it reads a snapshot.
        """
        infos = []
        for worker in list(self._workers.values()):
            title = worker_title(self.executor_name, worker.busy_with, worker.tasks_done)
            infos.append(
                WorkerInfo(
                    pid=worker.pid,
                    title=title,
                    busy_with=worker.busy_with,
                    tasks_done=worker.tasks_done,
                    alive=worker.alive,
                    exit_reason=worker.exit_reason,
                )
            )
        return infos

    @classmethod
    def console_panels(cls) -> list[ConsolePanel]:
        """The Workers tab: one row per worker process, from ``worker_processes``."""
        return [
            ConsolePanel(id="workers", title="Workers", target="executors.local_panel:WorkersPanel")
        ]

    # ---- observability -----------------------------------------------------------
    def gauges(self) -> dict[str, int]:
        """The base gauges plus live workers and unread activity-queue messages."""
        gauges = super().gauges()
        prefix = f"executor.{self.executor_name}"
        gauges[f"{prefix}.workers"] = sum(1 for w in list(self._workers.values()) if w.alive)
        gauges[f"{prefix}.unread_messages"] = self.unread_messages
        return gauges

    def debug_dump(self) -> str:
        lines = [super().debug_dump()]
        lines.append(
            f"  activity queue: sent {self._sent}, unread {self.unread_messages}, "
            f"backlog {len(self._backlog)}, adopted {len(self._adopted)}"
        )
        for info in self.worker_processes():
            state = "alive" if info.alive else f"dead ({info.exit_reason})"
            lines.append(f"  worker {info.pid} {state}: {info.title}")
        return "\n".join(lines)


def _option_flag(value: Any, name: str) -> bool:
    """A boolean executor option, from TOML (a bool) or the environment (a string)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "yes", "on", "1"}:
        return True
    if text in {"false", "no", "off", "0"}:
        return False
    raise ValueError(f"executor option {name!r} must be true or false, not {value!r}")


def _unread_bytes(sock: socket.socket) -> int:
    """Bytes the socket has sent that its peer has not read yet (SIOCOUTQ)."""
    try:
        raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    except OSError:
        return -1
    return int(struct.unpack("i", raw)[0])


__all__ = ["LocalExecutor"]
