"""TryGuard: stops a try's process tree when the pool process supervising it dies.

A try runs in its own session, so it outlives its pool process. When only the
pool process dies, the worker's main process stops the orphan (worker_hooks.py).
When the main process dies (``kill -9``, OOM killer), Celery's pool processes
die with it (they ask the kernel for SIGKILL when their parent goes), and
nobody is left to stop the try: it ran on unsupervised while the engine,
seeing its lease expire, failed it and started the next try. Two copies of one
command ran at once.

So each pool process starts one small guard process, in a session of its own
(a signal to the worker's process group does not reach it), holding the read
end of a pipe. The pool process writes ``start <pid> <create time>`` as soon
as a try's process exists (its quiet start included: task._SpawnWatch) and
``end`` when it has ended. When the pipe reports end of
file, the pool process is gone, however it died; if a try was running, the
guard stops its process group and every descendant (SIGTERM, then SIGKILL
after ``grace`` seconds), checking the create time first so a reused pid is
left alone. With no try running it simply exits.

So the guard's exit, after its pool process died, means the try's tree is
gone: the worker's main process waits for it (its pid is in the try's claim)
before it records the try's end (worker_hooks.py), and only then may the
engine start the next try.

The guard is this file run as a script: it imports nothing from execconsole,
and psutil only when it has a tree to stop.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys


class TryGuard:
    """The pool process's end of the pipe to its guard process."""

    def __init__(self, grace: float) -> None:
        read_end, self._fd = os.pipe()  # both close on exec: a try inherits neither
        os.set_blocking(self._fd, False)  # called where nothing may block (task._on_started)
        self._watching = False
        try:
            self.process = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), repr(grace)],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            os.close(read_end)
        self.create_time = _create_time(self.process.pid)
        """With the pid, names the guard in a try's claim (a pid alone may be reused)."""

    def watch(self, pid: int, create_time: float | None) -> None:
        """A try's process started: stop its tree if this process dies before ``release``."""
        self._watching = True
        self._send(f"start {pid} {create_time if create_time is not None else 0.0!r}\n")

    def release(self) -> None:
        """The try ended: nothing to stop any more (a try too short to be watched costs nothing)."""
        if self._watching:
            self._watching = False
            self._send("end\n")

    def _send(self, line: str) -> None:
        with contextlib.suppress(OSError):  # the guard is gone: nothing it could do anyway
            os.write(self._fd, line.encode())


def _create_time(pid: int) -> float:
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return 0.0


def _stop_tree(pid: int, create_time: float, grace: float) -> None:
    import psutil

    try:
        leader = psutil.Process(pid)
        if create_time and abs(leader.create_time() - create_time) > 0.01:
            return  # the try ended and its pid went to another process
        members = [leader, *leader.children(recursive=True)]
    except psutil.Error:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(OSError):
            os.killpg(pid, sig)
        for member in members:
            with contextlib.suppress(psutil.Error):
                member.send_signal(sig)
        _gone, members = psutil.wait_procs(members, timeout=grace)
        if not members:
            return


def _main(grace: float) -> None:
    current: tuple[int, float] | None = None
    stdin = sys.stdin.buffer
    while line := stdin.readline():
        parts = line.split()
        if parts[:1] == [b"start"] and len(parts) == 3:
            current = (int(parts[1]), float(parts[2]))
        else:
            current = None
    if current is not None:
        print(
            f"execconsole guard: the pool process died under try process {current[0]}; stopping it",
            file=sys.stderr,
        )
        _stop_tree(*current, grace)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _main(float(sys.argv[1]))
