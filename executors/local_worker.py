"""The loop each LocalExecutor worker process runs, and the messages it exchanges.

A worker takes one message at a time from the shared activity queue, runs the
workload through ``executors.supervisor.run_workload`` and reports on the result
queue. Both queues are ``SOCK_SEQPACKET`` socket pairs (see executors/local.py
for why), so every message is one pickled record and no lock is ever shared
between processes.

This module is preloaded by the forkserver, so it imports only what a worker
needs: no Textual, no store.
"""

from __future__ import annotations

import multiprocessing.popen_forkserver  # noqa: F401  (see below)
import multiprocessing.sharedctypes  # noqa: F401
import os
import pickle
import signal
import socket
from operator import attrgetter
from typing import Any, NamedTuple

from setproctitle import setproctitle

from executors.claims import ClaimBook
from executors.log_spool import LogSpool, writer_name
from executors.spawn import seal_inherited_descriptors
from executors.supervisor import HOSTNAME, NotClaimed, ignored_here_only, now_iso, run_workload
from executors.task_environment import InheritedEnvironment
from executors.task_key import TaskKey
from executors.workload import TaskReport, Workload

# The two multiprocessing modules above are not used here: a new worker
# unpickles its process object and its ``taken`` counter (a sharedctypes
# Value), which imports them, and sharedctypes pulls in ctypes. Imported here,
# they are loaded once by the forkserver, which preloads this module, instead
# of by every worker before its first try (5-10 ms a worker on this machine).

MAX_MESSAGE_BYTES = 128 * 1024
"""Largest record either queue carries; a bigger workload is refused at dispatch."""

PICKLE_PROTOCOL = pickle.HIGHEST_PROTOCOL


# ---- engine -> worker ------------------------------------------------------
class Dispatch(NamedTuple):
    """Run this workload. ``seq`` is the message's place in the activity queue."""

    seq: int
    workload: Workload


class Retire(NamedTuple):
    """The poison pill: the worker that takes it exits."""

    seq: int


# ---- worker -> engine ------------------------------------------------------
class Started(NamedTuple):
    """The task process of dispatch ``seq`` has started (pid, create time, ...)."""

    seq: int
    worker_pid: int
    report: TaskReport


class Finished(NamedTuple):
    """Dispatch ``seq`` has ended; the report says how."""

    seq: int
    worker_pid: int
    report: TaskReport


class Refused(NamedTuple):
    """Dispatch ``seq`` was not started here; its token was claimed or revoked elsewhere."""

    seq: int
    worker_pid: int
    reason: str


class WorkerConfig(NamedTuple):
    """What a worker is told once, when it is spawned."""

    executor_name: str
    claims_dir: str
    log_path: str | None
    terminate_grace: float
    engine_pid: int = 0
    quiet_start: float = 0.0  # see executors.supervisor.run_workload
    spool: bool = True  # silent short tries share a spool instead of creating log files


def engine_alive(engine_pid: int) -> bool:
    """Whether the engine that spawned this worker still lives (0: unknown, assume so)."""
    if not engine_pid:
        return True
    try:
        os.kill(engine_pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def worker_name(executor_name: str, pid: int) -> str:
    """The worker's name in task reports and claim files."""
    return f"{executor_name}:{pid}"


def worker_title(executor_name: str, busy_with: TaskKey | None, tasks_done: int) -> str:
    """The process title; the distinguishing words come first (psutil's name() keeps 15 chars)."""
    if busy_with is None:
        return f"worker:idle [execconsole {executor_name}] {tasks_done} done"
    return f"worker:busy {busy_with} [execconsole {executor_name}]"


# ---- the wire -----------------------------------------------------------------
# Messages cross the queues as pickled tuples of builtins. Pickling the named
# tuples and dataclasses themselves cost 10-25 us a message here (class lookups
# and the reduce protocol, on both ends); plain tuples cost 1-2 us.
_DISPATCH, _RETIRE, _STARTED, _FINISHED, _REFUSED = range(5)
_WORKLOAD_FIELDS = tuple(Workload.__dataclass_fields__)
_WORKLOAD_REST = attrgetter(*_WORKLOAD_FIELDS[1:])  # every field after the key
_REPORT_VALUES = attrgetter(*TaskReport.__dataclass_fields__)


def encode(message: Any) -> bytes:
    """One queue message: a Dispatch, Retire, Started, Finished or Refused."""
    kind = type(message)
    values: tuple[Any, ...]
    if kind is Dispatch:
        workload = message.workload
        values = (_DISPATCH, message.seq, tuple(workload.key), *_WORKLOAD_REST(workload))
    elif kind is Finished or kind is Started:
        tag = _FINISHED if kind is Finished else _STARTED
        values = (tag, message.seq, message.worker_pid, _REPORT_VALUES(message.report))
    elif kind is Refused:
        values = (_REFUSED, message.seq, message.worker_pid, message.reason)
    elif kind is Retire:
        values = (_RETIRE, message.seq)
    else:
        raise TypeError(f"not a queue message: {message!r}")
    return pickle.dumps(values, protocol=PICKLE_PROTOCOL)


def decode_order(data: bytes | memoryview) -> Dispatch | Retire:
    """A message of the activity queue, as ``encode`` made it."""
    values = pickle.loads(data)
    if values[0] == _DISPATCH:
        return Dispatch(values[1], Workload(TaskKey(*values[2]), *values[3:]))
    return Retire(values[1])


def decode_result(data: bytes | memoryview) -> Started | Finished | Refused:
    """A message of the result queue, as ``encode`` made it."""
    values = pickle.loads(data)
    tag = values[0]
    if tag == _FINISHED:
        return Finished(values[1], values[2], TaskReport(*values[3]))
    if tag == _STARTED:
        return Started(values[1], values[2], TaskReport(*values[3]))
    return Refused(values[1], values[2], values[3])


def _detach_from_terminal(log_path: str | None) -> None:
    """Point fds 0-2 away from the console's terminal.

    A worker that kept the terminal as stdin would steal key presses, and one
    writing to it would corrupt the screen. Tracebacks still go somewhere
    useful: the workers' log file under the executor's home.
    """
    null_fd = os.open(os.devnull, os.O_RDWR)
    out_fd = null_fd
    if log_path:
        try:
            os.makedirs(os.path.dirname(log_path), exist_ok=True)
            out_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError:
            out_fd = null_fd
    os.dup2(null_fd, 0)
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    for fd in {null_fd, out_fd}:
        if fd > 2:
            os.close(fd)


def run_worker(
    activity: socket.socket,
    results: socket.socket,
    taken: Any,
    config: WorkerConfig,
) -> None:
    """Take messages from ``activity`` until a poison pill or the engine goes away.

    Args:
        activity: the workers' end of the activity queue, shared by every worker.
        results: the workers' end of the result queue, shared by every worker.
        taken: this worker's own counter (a lock-free multiprocessing Value) of
            messages it has taken; the engine sums all counters to know how many
            messages are still unread.
        config: names and paths that do not change.
    """
    _detach_from_terminal(config.log_path)
    # Descriptors handed over by the forkserver are inheritable; once they are
    # not, tries are started by posix_spawn (executors/spawn.py).
    seal_inherited_descriptors()
    # The engine decides how workers shut down; a Ctrl+C meant for a headless
    # engine must not kill a worker in the middle of a task.
    # Ignored by a handler, not SIG_IGN, which every task would inherit.
    signal.signal(signal.SIGINT, ignored_here_only)
    pid = os.getpid()
    name = worker_name(config.executor_name, pid)
    # Each dispatch reaches one worker only (the activity queue is a seqpacket socket).
    claims = ClaimBook(config.claims_dir, delivered_once=True)
    environment = InheritedEnvironment()  # a worker runs one try at a time, on one thread
    # Likewise: silent short tries share one output file (unless log_every_try).
    spool = LogSpool(writer_name(pid)) if config.spool else None
    engine_gone = False
    tasks_done = 0
    buffer = bytearray(MAX_MESSAGE_BYTES)
    view = memoryview(buffer)

    def report(message: NamedTuple) -> None:
        nonlocal engine_gone
        if engine_gone:
            return
        try:
            results.send(encode(message))
        except OSError:
            # The engine died. Keep the task's outcome in its claim file (the
            # supervisor writes it) for the engine that adopts it.
            engine_gone = True

    try:
        while True:
            try:
                # A try waiting already (the engine prefetches while tries are
                # short) is taken without blocking, and without passing through
                # the idle title for a few microseconds.
                size = activity.recv_into(buffer, 0, socket.MSG_DONTWAIT)
            except BlockingIOError:
                setproctitle(worker_title(config.executor_name, None, tasks_done))
                try:
                    size = activity.recv_into(buffer)
                except OSError:
                    return
            except OSError:
                return
            if size == 0:
                return  # the engine closed its end: nothing more will come
            # Counted before anything else, so the engine's count of unread
            # messages is wrong for as short a time as possible if we die here.
            taken.value += 1
            message = decode_order(view[:size])
            if isinstance(message, Retire):
                return
            seq, workload = message
            if engine_gone or not engine_alive(config.engine_pid):
                # Orphaned: the next engine revokes or adopts what this engine
                # handed out, so a worker must not start anything more on its own.
                return
            setproctitle(worker_title(config.executor_name, workload.key, tasks_done))
            outcome: NamedTuple

            def started(running: TaskReport, seq: int = seq) -> None:
                report(Started(seq, pid, running))

            try:
                final = run_workload(
                    workload,
                    claims,
                    worker=name,
                    on_started=started,
                    terminate_grace=config.terminate_grace,
                    quiet_start=config.quiet_start,
                    environment=environment,
                    spool=spool,
                )
                outcome = Finished(seq, pid, final)
            except NotClaimed:
                outcome = Refused(
                    seq, pid, "not started: its token was claimed or revoked elsewhere"
                )
            except Exception as error:  # one broken workload must not take the worker down
                final = TaskReport(
                    hostname=HOSTNAME,
                    worker=name,
                    ended_at=now_iso(),
                    reason=f"worker {name} could not run it: {error}",
                )
                try:
                    claims.record_finished(workload.token, **final.to_json())
                except (OSError, ValueError):
                    pass
                outcome = Finished(seq, pid, final)
            tasks_done += 1
            report(outcome)
    finally:
        if spool is not None:
            spool.discard()  # empty by now: each try that wrote has had it handed over
