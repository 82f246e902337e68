"""LogSpool: a worker's reusable output file, so that silent short tries create no log file.

Every try's stdout and stderr go to a file, never to a pipe the worker would
have to copy from. Creating that file was the largest cost a try had beyond
its own process: on this machine's ext4 (no journal, many inodes freed by
earlier runs) one creation takes 15-800 us of kernel time, more than
spawning ``/bin/true``. Yet a great many tries print nothing at all.

So a worker that runs tries one at a time lets each try write to its spool, a
hidden file in the directory of the try's log file, and then:

- a try that ends silently within its quiet start leaves the spool empty,
  and the next try writes to the same file: no file created, none deleted,
  and the try has no log file (readers say "no output");
- a try that wrote something, or that outlives its quiet start, gets the
  spool renamed to its log file. The task keeps writing to the same open
  file, so nothing is lost and a live reader finds its log where it always
  was; the next try gets a new spool.

A try is only unseen at its log path during its quiet start (a few
milliseconds), when the engine has not been told it started either.

One thing the spool cannot tell: a process that escaped the try's process
group (``setsid``), outlived it and writes later to the output it inherited
writes into whatever try uses the spool next. Daemons that keep writing to
their parent's stdout are rare; a try that starts one should give it a file
of its own.
"""

from __future__ import annotations

import os
import socket
import sys

SPOOL_PREFIX = ".spool."
"""Spool files are ``<log directory>/.spool.<writer>``: hidden, and named by their writer."""

_HOSTNAME = socket.gethostname()


def writer_name(pid: int) -> str:
    """A process's name among spool writers: its host and pid.

    The host matters where the logs folder is shared (Celery workers of
    several machines writing to one network folder): two pool processes on
    different machines may have the same pid.
    """
    return f"{_HOSTNAME}.{pid}"


_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC


class LogSpool:
    """One writer's spool. Not thread-safe: a worker runs one try at a time."""

    def __init__(self, writer: str) -> None:
        self.writer = writer  # ``writer_name(pid)`` for workers: unique among live writers
        self.path: str | None = None
        self.fd = -1
        self._kept = 0  # spools left holding output that a failed hand-over could not place

    def descriptor_for(self, log_path: str) -> int:
        """The descriptor a try whose log file is ``log_path`` should write to.

        The spool sits in the same directory as the log file, so that handing
        it over is a rename within one directory. When the try's directory is
        not the spool's (a new run), an empty spool follows it there.

        Raises:
            OSError: the directory cannot be made or written, as opening the
                log file itself would have raised.
        """
        directory = os.path.dirname(log_path)
        name = SPOOL_PREFIX + self.writer + (f"-{self._kept}" if self._kept else "")
        path = os.path.join(directory, name)
        if self.fd >= 0 and self.path != path:
            assert self.path is not None
            try:
                os.rename(self.path, path)
                self.path = path
            except OSError:
                self.discard()
        if self.fd < 0:
            try:
                self.fd = os.open(path, _FLAGS, 0o600)
            except FileNotFoundError:
                # Only the first try of a run needs its folder made; checking
                # first would cost a mkdir per try.
                os.makedirs(directory, exist_ok=True)
                self.fd = os.open(path, _FLAGS, 0o600)
            self.path = path
        return self.fd

    def holds_output(self) -> bool:
        """Whether anything was written to the spool since it was last handed over."""
        try:
            return self.fd >= 0 and os.fstat(self.fd).st_size > 0
        except OSError:
            return True  # unknown: hand it over rather than lose output

    def hand_over(self, log_path: str) -> None:
        """Make the spool the try's log file; the next try gets a new spool.

        If the rename fails (the directory was removed, the disk is read-only
        now), the output stays in the spool file, which is then left alone:
        the next spool gets another name.
        """
        if self.fd < 0 or self.path is None:
            return
        try:
            os.rename(self.path, log_path)
        except OSError as error:
            self._kept += 1
            print(
                f"execconsole: output of {log_path} left in {self.path}: {error}", file=sys.stderr
            )
        os.close(self.fd)
        self.fd = -1
        self.path = None

    def discard(self) -> None:
        """Remove the spool (a worker that ends removes its own)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.path is not None:
            try:
                os.unlink(self.path)
            except OSError:
                pass
            self.path = None


def reclaim_spool(log_path: str, writer: str) -> bool:
    """Give the output a dead writer left in its spool to the try it was running.

    Call it only for a try whose writer is gone and had claimed the try but
    not finished it: a writer runs one try at a time and makes a new spool
    only when it starts the next, so a spool it left beside that try's log
    file holds that try's output. Output becomes the log file; an empty
    spool is removed. Returns True if a log file was made.
    """
    spool = os.path.join(os.path.dirname(log_path), SPOOL_PREFIX + writer)
    try:
        size = os.stat(spool).st_size
        if size == 0 or os.path.exists(log_path):
            os.unlink(spool)
            return False
        os.rename(spool, log_path)
    except OSError:
        return False  # no spool there: the try had its log file already, or never started
    return True
