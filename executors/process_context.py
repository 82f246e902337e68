"""The process context LocalExecutor workers are forked from: a forkserver started early.

A console or engine process runs threads (Textual's, a thread pool's) by the
time it needs workers, and forking a threaded process can leave the child
stuck on a lock another thread held. So workers come from multiprocessing's
forkserver: a small single-threaded process started before any thread, which
preloads the worker module. This module starts it, hides the parent's
``__main__`` from new workers, and stops the forkserver and the resource
tracker, within a bound, when the process exits.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import multiprocessing.forkserver
import os
import sys
import threading
import time
from collections.abc import Iterator
from multiprocessing.context import ForkServerContext

from executors import local_worker

_context: ForkServerContext | None = None
_context_lock = threading.Lock()


def prepare_process_context() -> ForkServerContext:
    """Start the forkserver that worker processes are forked from. Idempotent.

    Forking a process that already runs threads (Textual's, a thread pool's)
    can deadlock the child on a lock some other thread held. A forkserver is a
    small single-threaded process, started here, that forks every worker
    instead; it preloads the worker module so a new worker imports nothing.
    Call this before any thread starts; ``LocalExecutor.start`` calls it too.
    """
    global _context, _helpers_stopped_at_exit
    with _context_lock:
        if _context is None:
            context = multiprocessing.get_context("forkserver")
            # The second module makes the forkserver end quickly; it is named,
            # never imported here (see executors/forkserver_exit.py).
            context.set_forkserver_preload([local_worker.__name__, FORKSERVER_EXIT_MODULE])
            with _stdio_on_devnull():
                multiprocessing.forkserver.ensure_running()
            _context = context
            if not _helpers_stopped_at_exit:
                atexit.register(_stop_helper_processes)
                _helpers_stopped_at_exit = True
        return _context


FORKSERVER_EXIT_MODULE = "executors.forkserver_exit"
"""Preloaded by the forkserver alone, so that it ends without an interpreter teardown."""

_helpers_stopped_at_exit = False
_workers_left_running = (
    False  # set through workers_left_running(): some worker outlives this process
)
HELPER_STOP_SECONDS = 2.0  # how long the exit hook waits for the forkserver and tracker


def _stop_helper_processes() -> None:
    """At exit, stop the forkserver and multiprocessing's resource tracker, waiting a little.

    Both exit by themselves once they see this process gone, but only after
    it: whoever waits for our exit (a shell, a supervisor, a test) would still
    find them alive for a moment. Each stops at end of file on a pipe that
    every worker holds too, so the wait is bounded: with workers still alive
    (detached for the next engine, or not yet reaped after a crash) the
    helpers outlive us until the last worker ends, as they always did.
    """
    global _context
    deadline = time.monotonic() + HELPER_STOP_SECONDS
    with contextlib.suppress(Exception):
        from multiprocessing import resource_tracker

        server = multiprocessing.forkserver._forkserver  # type: ignore[attr-defined]
        tracker = resource_tracker._resource_tracker  # type: ignore[attr-defined]
        if _workers_left_running:
            return
        # multiprocessing's own ForkServer._stop and ResourceTracker._stop wait
        # without a bound; these are their steps, with one. Both are told
        # first and then awaited together: each takes 15-40 ms to exit.
        helpers = [(server, "_forkserver_alive_fd", "_forkserver_pid"), (tracker, "_fd", "_pid")]
        for owner, fd_name, _pid_name in helpers:
            fd = getattr(owner, fd_name, None)
            if fd is not None:
                os.close(fd)  # the helper exits at end of file
                setattr(owner, fd_name, None)
        for owner, _fd_name, pid_name in helpers:
            _reap_helper(owner, pid_name, deadline)
    _context = None


def _reap_helper(owner: object, pid_name: str, deadline: float) -> None:
    """Wait for a helper process to exit, until ``deadline``."""
    pid = getattr(owner, pid_name, None)
    if pid is None:
        return
    while True:
        reaped, _status = os.waitpid(pid, os.WNOHANG)
        if reaped:
            setattr(owner, pid_name, None)
            return
        if time.monotonic() >= deadline:
            return
        time.sleep(0.002)


@contextlib.contextmanager
def main_module_hidden() -> Iterator[None]:
    """Keep a new worker from running the engine's main script again.

    multiprocessing tells every new process where the parent's ``__main__``
    came from, and the child runs it (as ``__mp_main__``) before its target.
    For ``execconsole`` that is the whole CLI: Typer, the store, sqlite-utils
    and numpy, 0.3-0.7 s of CPU per worker before its first task (measured).
    A worker needs nothing of it: its target lives in executors.local_worker,
    which the forkserver has loaded already. So the parent's ``__main__``
    looks anonymous while a worker is started.
    """
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved = {
        name: main.__dict__[name] for name in ("__file__", "__spec__") if name in main.__dict__
    }
    main.__dict__.pop("__file__", None)
    main.__dict__["__spec__"] = None
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        for name, value in saved.items():
            setattr(main, name, value)


@contextlib.contextmanager
def _stdio_on_devnull() -> Iterator[None]:
    """Point fds 0-2 at /dev/null while the forkserver is created.

    The forkserver (and the resource tracker it starts) would otherwise hold
    the console's terminal, or the pipe a caller reads our output from, open
    for as long as any worker lives.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved: list[tuple[int, int]] = []
    null_fd = os.open(os.devnull, os.O_RDWR)
    try:
        for fd in (0, 1, 2):
            try:
                saved.append((fd, os.dup(fd)))
            except OSError:
                continue  # closed; leave it closed
            os.dup2(null_fd, fd)
        yield
    finally:
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)
        os.close(null_fd)


def workers_left_running() -> None:
    """Say that some worker outlives this process (detached for the next engine).

    The exit hook then leaves the forkserver and the resource tracker alone:
    they end by themselves once the last worker has gone.
    """
    global _workers_left_running
    _workers_left_running = True
