"""Start a task's process: ``os.posix_spawn`` where that is safe, ``subprocess.Popen`` elsewhere.

Starting a process was the largest CPU cost of a try in a LocalExecutor
worker: ``Popen`` spends about 125 us of the worker's CPU per start (its
Python side builds an error pipe, a list of descriptors to keep, the child's
settings, and reads the pipe back), ``posix_spawn`` about 75 us for the same
process in its own session, stdin from /dev/null and output to the log file.

posix_spawn is used only where it does exactly what Popen would:

- no working directory to change to (Python 3.11's posix_spawn cannot chdir);
- the task inherits this process's own environment, handed over as the bytes
  mapping ``InheritedEnvironment`` keeps up to date (encoding ``os.environ``
  for every start would cost as much as the spawn). Its PATH is this
  process's, so ``posix_spawnp`` looks the program up where Popen would
  (a search that fails is done again by Popen, whose rules differ in corner
  cases: see ``start_task_process``);
- the process has called ``seal_inherited_descriptors``: posix_spawn closes
  nothing, while Popen closes every descriptor above 2 (``close_fds``).
  Python makes its own descriptors non-inheritable (PEP 446), but descriptors
  received from multiprocessing's forkserver, or made by C code, may not be.

Everything else (a cwd, an explicit environment, a process that has not
sealed its descriptors, such as a Celery pool process) goes through Popen.
"""

from __future__ import annotations

import errno
import os
import select
import signal
import subprocess
import time
from collections.abc import Mapping
from typing import Protocol

# Popen's ``restore_signals``: Python ignores SIGPIPE and SIGXFSZ, and an
# ignored signal stays ignored across exec; the task must get the defaults.
_RESTORED_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ)

_sealed = False
"""Whether this process made every descriptor above 2 non-inheritable."""


def _forget_seal() -> None:
    # A forked child may be given descriptors of its own (multiprocessing
    # hands them over inheritable); it must seal again before spawning fast.
    global _sealed
    _sealed = False


os.register_at_fork(after_in_child=_forget_seal)


def seal_inherited_descriptors() -> bool:
    """Make every descriptor above 2 non-inheritable, so posix_spawn may start tasks here.

    Call once, when a worker process starts, before it runs tries; descriptors
    the process makes later through Python's own calls are non-inheritable
    already. Returns False (and Popen stays in use) if /proc cannot be read.
    """
    global _sealed
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return False
    for name in names:
        fd = int(name)
        if fd <= 2:
            continue
        try:
            os.set_inheritable(fd, False)
        except OSError as error:
            if error.errno != errno.EBADF:  # EBADF: the listing's own descriptor, closed since
                return False
    _sealed = True
    return True


class TaskProcess(Protocol):
    """The part of ``subprocess.Popen`` the supervisor uses; ``SpawnedProcess`` has it too."""

    @property
    def pid(self) -> int: ...

    def wait(self, timeout: float | None = None) -> int: ...


class SpawnedProcess:
    """A child started by ``os.posix_spawn``, waited for like a ``Popen``.

    ``wait`` returns what ``Popen.wait`` would: the exit code, or minus the
    signal that killed it; with a timeout it raises ``subprocess.TimeoutExpired``.
    Only the thread that started the process may wait for it (Popen's lock
    is not needed: the supervisor waits from one thread).
    """

    __slots__ = ("args", "pid", "returncode")

    def __init__(self, args: list[str], pid: int) -> None:
        self.args = args
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        """The exit status if the process has ended (reaping it), else None."""
        if self.returncode is None:
            self._reap(os.WNOHANG)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is not None:
            return self.returncode
        if timeout is not None and not _exits_within(self, timeout):
            raise subprocess.TimeoutExpired(self.args, timeout)
        self._reap(0)
        assert self.returncode is not None
        return self.returncode

    def _reap(self, options: int) -> None:
        try:
            pid, status = os.waitpid(self.pid, options)
        except ChildProcessError:
            # Like Popen: SIGCHLD is ignored, or someone else reaped it;
            # its status is lost.
            self.returncode = 0
            return
        if pid == self.pid:
            self.returncode = os.waitstatus_to_exitcode(status)


def _exits_within(process: SpawnedProcess, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for the process to end, without reaping it."""
    try:
        pidfd = os.pidfd_open(process.pid)
    except OSError:
        pidfd = -1  # an old kernel: poll, as Popen.wait(timeout=...) does
    if pidfd >= 0:
        try:
            return bool(select.select([pidfd], [], [], timeout)[0])
        finally:
            os.close(pidfd)
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while process.poll() is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        delay = min(delay * 2, remaining, 0.05)
        time.sleep(delay)
    return True


def start_task_process(
    argv: list[str],
    *,
    stdin: int,
    output: int,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    own_environment: Mapping[bytes, bytes] | None = None,
) -> TaskProcess:
    """Start ``argv`` in a new session, stdin from ``stdin``, stdout and stderr to ``output``.

    Args:
        env: the task's whole environment; None to inherit this process's.
        own_environment: this process's environment, encoded, when the caller
            keeps it (``InheritedEnvironment.encoded``); without it the task
            is started by Popen, which inherits the environment for free.

    Raises:
        OSError: the program could not be started (as Popen raises it: a
            FileNotFoundError if it does not exist, a PermissionError if it
            may not be executed, ...); no process was left behind.
    """
    if (
        _sealed
        and env is None
        and own_environment is not None
        and cwd is None
        and stdin > 2  # a descriptor 0-2 would be overwritten by the dup2s before it is read
        and output > 2
        and argv
        and argv[0]  # posix_spawn refuses an empty program name; Popen reports it as OSError
    ):
        program = argv[0]
        searched = "/" not in program
        try:
            pid = (os.posix_spawnp if searched else os.posix_spawn)(
                program,
                argv,
                own_environment,
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, stdin, 0),
                    (os.POSIX_SPAWN_DUP2, output, 1),
                    (os.POSIX_SPAWN_DUP2, output, 2),
                ],
                setsid=True,
                setsigdef=_RESTORED_SIGNALS,
            )
        except OSError:
            if not searched:
                raise  # one execve, the error Popen's would have had
            # Popen tries every PATH entry and reports the first error that
            # is not ENOENT/ENOTDIR; glibc stops at the first program that
            # cannot run (no "#!" line, say) and prefers EACCES. Where the
            # two could differ (only when the program is not found or cannot
            # run), Popen searches again and has the last word.
        else:
            return SpawnedProcess(argv, pid)
    return subprocess.Popen(
        argv,
        stdin=stdin,
        stdout=output,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        env=env,
        start_new_session=True,
        close_fds=True,
    )
