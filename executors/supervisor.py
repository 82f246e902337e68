"""Run one workload as an OS process and say how it ended.

Shared by every worker that runs tasks on its own machine (the LocalExecutor's
workers, the SequentialExecutor, Celery workers). The task process:

- runs in its own session and process group, so a kill or timeout reaches
  every grandchild it started;
- reads stdin from /dev/null and writes stdout and stderr to the try's log
  file, never to the terminal the console is drawing on;
- is claimed before it starts (``ClaimBook``), so no try ever runs twice.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import psutil

from executors.claims import ClaimBook
from executors.log_spool import LogSpool
from executors.reasons import reason_for_exit
from executors.spawn import TaskProcess, start_task_process
from executors.task_environment import InheritedEnvironment
from executors.workload import TaskReport, Workload

TERMINATE_GRACE_SECONDS = 5.0

HOSTNAME = socket.gethostname()


def now_iso() -> str:
    """Now, in UTC, as ISO-8601 the way pendulum writes it ("...T00:13:02.296466Z").

    Built from the standard library: two of these are taken for every try, and
    pendulum's own formatting costs several times more (measured with py-spy).
    """
    return iso_from_ns(time.time_ns())


_SECOND_TEXT: tuple[int, str] = (0, "1970-01-01T00:00:00")
"""The last whole second formatted, and its text; one tuple, so threads never mix two."""


def iso_from_ns(ns: int) -> str:
    """``datetime.fromtimestamp(ns / 1e9, UTC).isoformat()`` ending in "Z" instead of "+00:00".

    Like ``datetime.now`` it truncates to the microsecond, and like
    ``isoformat`` it leaves the fraction out when that is zero. Only the
    microseconds are formatted for every call: the date and time of day once a
    second (2 us a call instead of 5 here, and less Python run cold after a
    spawn).
    """
    global _SECOND_TEXT
    second, nanos = divmod(ns, 1_000_000_000)
    cached_second, text = _SECOND_TEXT
    if second != cached_second:
        text = datetime.fromtimestamp(second, UTC).isoformat()[:-6]
        _SECOND_TEXT = (second, text)
    micros = nanos // 1000
    return f"{text}.{micros:06d}Z" if micros else f"{text}Z"


_DEVNULL = -1  # opened once per process, for tasks' stdin
_PID = os.getpid()  # os.getpid() is a syscall; the try's claim names this process


def _forget_process_state() -> None:
    # A forked child is another process: it names itself, and opens its own /dev/null.
    global _DEVNULL, _PID
    _DEVNULL = -1
    _PID = os.getpid()


os.register_at_fork(after_in_child=_forget_process_state)


def _devnull() -> int:
    """A descriptor on /dev/null for tasks' stdin; ``subprocess.DEVNULL`` opens one per spawn."""
    global _DEVNULL
    if _DEVNULL < 0:
        _DEVNULL = os.open(os.devnull, os.O_RDONLY)
    return _DEVNULL


def ignored_here_only(signum: int, frame: FrameType | None) -> None:
    """A signal handler that does nothing: the signal is ignored by this process only.

    An ignored signal (``SIG_IGN``) stays ignored across exec, so a worker
    ignoring SIGINT (a Ctrl+C meant for the engine) would pass that on to
    every task it starts, and ``kill -INT`` would do nothing to them. A
    handler ignores it as well here, and exec gives the task the default back.
    """


def stop_passing_on_ignored(*signums: int) -> None:
    """Swap ``SIG_IGN`` for ``ignored_here_only`` on these signals (main thread only)."""
    for signum in signums:
        if signal.getsignal(signum) == signal.SIG_IGN:
            signal.signal(signum, ignored_here_only)


class NotClaimed(Exception):
    """The try's token was claimed or revoked elsewhere: it must not run here."""


def wait_until_gone(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait for processes to exit; return those still running at ``timeout``.

    A zombie counts as gone: it has exited and holds no resources but its
    pid. A killed try's grandchildren are orphans, and only init (or a
    subreaper) reaps those, slowly on a busy machine; waiting for the reap,
    as ``psutil.wait_procs`` does for processes that are not our children,
    held a timed-out try up for seconds after its tree was dead.
    """
    deadline = time.monotonic() + timeout
    alive = list(processes)
    while alive:
        still = []
        for process in alive:
            try:
                if process.status() != psutil.STATUS_ZOMBIE:
                    still.append(process)
            except psutil.NoSuchProcess:
                pass
        alive = still
        if not alive or time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    return alive


def kill_process_tree(pid: int, grace: float = TERMINATE_GRACE_SECONDS) -> None:
    """SIGTERM a task's process group and every descendant, then SIGKILL what is left.

    Descendants that left the group (``setsid``) are found through psutil
    before the first signal, so a timeout kills grandchildren too.
    """
    try:
        leader = psutil.Process(pid)
        members = [leader, *leader.children(recursive=True)]
    except psutil.NoSuchProcess:
        members = []
    signal_group(pid, signal.SIGTERM)
    for member in members:
        signal_process(member, signal.SIGTERM)
    alive = wait_until_gone(members, grace)
    signal_group(pid, signal.SIGKILL)
    for member in alive:
        signal_process(member, signal.SIGKILL)
    wait_until_gone(alive, grace)


def _stop_own_child(process: TaskProcess, grace: float) -> int:
    """SIGTERM then SIGKILL a task we started, and its whole tree; return its exit status.

    The leader is reaped with its own ``wait`` (Popen's, or SpawnedProcess's;
    never psutil's), so the status it died with is the one reported, not a 0
    from a double reap.
    """
    try:
        descendants = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    signal_group(process.pid, signal.SIGTERM)
    for member in descendants:
        signal_process(member, signal.SIGTERM)
    try:
        returncode = process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        signal_group(process.pid, signal.SIGKILL)
        returncode = process.wait()
    alive = wait_until_gone(descendants, grace)
    for member in alive:
        signal_process(member, signal.SIGKILL)
    # The try is reported once this returns: nothing of its tree may still run then.
    wait_until_gone(alive, grace)
    return returncode


def signal_group(pgid: int, signum: int) -> None:
    """Signal a whole process group; a group that is gone already is not an error."""
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def signal_process(process: psutil.Process, signum: int) -> None:
    """Signal one process; one that is gone already is not an error."""
    try:
        process.send_signal(signum)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        pass


def _open_log(path: str) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
    try:
        return os.open(path, flags, 0o600)
    except FileNotFoundError:
        # Only the first try of a run needs its folder made; checking first
        # would cost a mkdir per task (0.7 ms here).
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, flags, 0o600)


_BASE_ENVIRONMENT: dict[str, str] | None = None


def _base_environment() -> dict[str, str]:
    """This process's environment, decoded once (os.environ decodes on every read)."""
    global _BASE_ENVIRONMENT
    if _BASE_ENVIRONMENT is None:
        _BASE_ENVIRONMENT = dict(os.environ)
    return _BASE_ENVIRONMENT


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_BOOT_TIME: float | None = None


def process_create_time(pid: int) -> float | None:
    """The same value as ``psutil.Process(pid).create_time()``, read in one syscall.

    psutil builds a Process object and parses /proc twice (0.36 ms a task
    here); the start time is field 22 of /proc/<pid>/stat, in clock ticks
    since boot.
    """
    global _BOOT_TIME
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    if _BOOT_TIME is None:
        _BOOT_TIME = psutil.boot_time()
    return int(fields[19]) / _CLOCK_TICKS + _BOOT_TIME


def _wait_exit(process: TaskProcess, pidfd: int | None, timeout: float | None) -> bool:
    """Wait until the process exits or ``timeout`` passes; True if it exited.

    A pidfd wakes us the moment the process ends. ``Popen.wait(timeout=...)``
    instead polls with sleeps of up to 50 ms, which would add that much to every
    try that has a timeout.
    """
    if pidfd is None:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        if poller.poll(None if remaining is None else remaining * 1000):
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return False


def _open_pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None  # an old kernel: fall back to Popen's own waiting


def run_workload(
    workload: Workload,
    claims: ClaimBook | None,
    *,
    worker: str,
    on_started: Callable[[TaskReport], None] | None = None,
    terminate_grace: float = TERMINATE_GRACE_SECONDS,
    quiet_start: float = 0.0,
    environment: InheritedEnvironment | None = None,
    spool: LogSpool | None = None,
) -> TaskReport:
    """Run ``workload`` to the end and return its report.

    Args:
        quiet_start: a try that ends within this many seconds is reported only
            once, when it ends: ``on_started`` is not called for it and its
            process's create time is not read. For tries of a few milliseconds
            that halves the messages and the engine's work. The claim records
            the pid at once either way (without a create time during the quiet
            start; see ``read_claim`` in executors/adoption.py).
        environment: in a single-threaded worker, the try's variables are set
            in this process's own environment and inherited, instead of a whole
            new environment being encoded for every spawn.
        spool: a worker's reusable output file (see executors/log_spool.py).
            With a quiet start, the try writes there first; it becomes the
            try's log file once the try has written something or outlived its
            quiet start, so a silent short try creates no file at all.

    Raises:
        NotClaimed: the token was claimed or revoked already; nothing was started.
    """
    if claims is not None and not claims.claim(workload.token, worker=worker, worker_pid=_PID):
        raise NotClaimed(str(workload.key))

    quiet = quiet_start > 0 and (workload.timeout is None or workload.timeout > quiet_start)
    # The spool is only worth it for tries that may end within the quiet start.
    spooled = spool if quiet else None
    log_fd = (
        _open_log(workload.log_path)
        if spooled is None
        else spooled.descriptor_for(workload.log_path)
    )
    started_at = now_iso()
    # Inherit this process's environment where possible, rather than encoding
    # every variable again for every spawn.
    env: dict[str, str] | None = None
    own_environment = None
    if environment is not None:
        environment.apply(workload.env)
        own_environment = environment.encoded
    elif workload.env:
        env = {**_base_environment(), **workload.env}
    command = workload.command
    # What Popen(shell=True) would run.
    argv = ["/bin/sh", "-c", command[0]] if workload.shell else command
    try:
        process = start_task_process(
            argv,
            stdin=_devnull(),
            output=log_fd,
            cwd=workload.cwd or None,
            env=env,
            own_environment=own_environment,
        )
    except OSError as error:
        problem = f"could not start {command[0]!r}: {error.strerror or error}"
        detail = f"could not start {command[0]!r}: {error}"
        if workload.cwd and not os.path.isdir(workload.cwd):
            # posix_spawn reports a missing working directory as the program's ENOENT.
            problem = detail = (
                f"could not start {command[0]!r}: its working directory {workload.cwd!r} does not exist"
            )
        os.write(log_fd, f"execconsole: {detail}\n".encode())
        if spooled is None:
            os.close(log_fd)
        else:
            spooled.hand_over(workload.log_path)
        report = TaskReport(
            hostname=HOSTNAME,
            worker=worker,
            started_at=started_at,
            ended_at=now_iso(),
            exit_code=127 if isinstance(error, FileNotFoundError) else 126,
            reason=problem,
        )
        if claims is not None:
            claims.record_finished(workload.token, **report.to_json())
        return report
    if spooled is None:
        os.close(log_fd)
    pid = process.pid
    pidfd = _open_pidfd(pid)
    try:
        create_time: float | None = None
        if quiet:
            # The pid goes on record at once (the try's process must be findable
            # if this worker dies now); its create time only if it outlives the
            # quiet start.
            if claims is not None:
                claims.record_started(
                    workload.token, pid=pid, hostname=HOSTNAME, worker=worker, started_at=started_at
                )
            ended = _wait_exit(process, pidfd, quiet_start)
        else:
            ended = False
        if not ended:
            if spooled is not None:
                # Before anyone is told it runs: a live reader finds its log file.
                spooled.hand_over(workload.log_path)
                spooled = None
            create_time = process_create_time(pid)
            running = TaskReport(
                pid=pid,
                pid_create_time=create_time,
                hostname=HOSTNAME,
                worker=worker,
                started_at=started_at,
            )
            if claims is not None:
                claims.record_started(workload.token, **running.to_json())
            if on_started is not None:
                on_started(running)
            remaining = workload.timeout
            if remaining is not None and quiet:
                remaining = max(remaining - quiet_start, 0.0)
            ended = _wait_exit(process, pidfd, remaining)
    except BaseException:
        # Whatever went wrong, this try's output must not become the next one's.
        if spooled is not None:
            spooled.hand_over(workload.log_path)
        raise
    finally:
        if pidfd is not None:
            os.close(pidfd)

    # Grandchildren left in the group after the leader exited are part of the
    # try; leaving them would leave processes behind.
    timed_out = not ended
    if timed_out:
        returncode = _stop_own_child(process, terminate_grace)
        signal_group(pid, signal.SIGKILL)
    else:
        # Before the leader is reaped: its zombie keeps the group, so the id
        # cannot have passed to another group yet, and killpg finds the group
        # and does not fail (a ProcessLookupError raised and caught every try
        # cost more than the signal).
        signal_group(pid, signal.SIGKILL)
        returncode = process.wait()
    if spooled is not None and spooled.holds_output():
        spooled.hand_over(workload.log_path)

    report = TaskReport(
        pid=pid,
        pid_create_time=create_time,
        hostname=HOSTNAME,
        worker=worker,
        started_at=started_at,
        ended_at=now_iso(),
        exit_code=returncode if returncode >= 0 else None,
        signal=-returncode if returncode < 0 else None,
        reason=(
            f"timed out after {workload.timeout:g}s" if timed_out else reason_for_exit(returncode)
        ),
    )
    if claims is not None:
        claims.record_finished(workload.token, **report.to_json())
    return report


def wait_for_exit(pid: int, create_time: float | None, poll: float = 0.2) -> None:
    """Block until a process that is not our child has gone (for adopted tries)."""
    while True:
        try:
            process = psutil.Process(pid)
            if create_time is not None and abs(process.create_time() - create_time) > 0.01:
                return
            if process.status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(poll)
