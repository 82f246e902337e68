"""A timed-out try whose killed grandchildren are zombies nobody has reaped yet.

Orphaned grandchildren are reaped by init (or the nearest subreaper), which
may be slow. A zombie has exited already: the supervisor must not wait for
its reap before recording the try. Here this test process is the subreaper
and reaps nothing until the try is recorded, so the zombies outlast the
try for certain, however fast init would have been; with a terminate grace
far beyond the test's deadline, a supervisor waiting for them would never
record the try in time.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from executors.state import TaskState
from tests.executors.conftest import DEADLINE, Driver, MakeLocal, PidReaper, make_workload
from tests.helpers import processes_with_env_marker

PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>


def _set_child_subreaper(on: bool) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


@contextlib.contextmanager
def adopting_orphans() -> Iterator[None]:
    """Orphans of this process's descendants become its children, unreaped, while inside."""
    _set_child_subreaper(True)
    try:
        yield
    finally:
        _set_child_subreaper(False)


def reap(pids: list[int]) -> None:
    """Reap those of ``pids`` this process adopted; one still running is killed first."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG) == (0, 0):  # ours, and not exited
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="Linux only (prctl)")
def test_a_timed_out_try_with_background_children_is_recorded_with_nothing_left_running(
    make_local: MakeLocal, tmp_path: Path, orphans: PidReaper
) -> None:
    # A grace far beyond DEADLINE: waiting for a zombie would outlast the test's wait.
    executor = make_local(1, terminate_grace=2 * DEADLINE)
    driver = Driver(executor)
    marker = uuid.uuid4().hex  # every process of the try's tree inherits it
    pid_file = tmp_path / "children"
    command = f"sleep 100 & echo $! >> {pid_file}; sleep 100 & echo $! >> {pid_file}; wait"
    item = make_workload(tmp_path, command, timeout=1, env={"EXECCONSOLE_TEST_MARKER": marker})
    children: list[int] = []
    try:
        with adopting_orphans():
            executor.queue_workload(item)
            driver.until_finished(item.key)
            # Recorded: checked at once, not polled, as the guarantee is "nothing runs by then".
            still_running = processes_with_env_marker(marker)
            children = [int(line) for line in pid_file.read_text().split()]
            orphans.add(*children)
            states = {}
            for pid in children:
                with contextlib.suppress(psutil.NoSuchProcess):
                    states[pid] = psutil.Process(pid).status()
    finally:
        reap(children)

    assert driver.state(item.key) is TaskState.FAILED
    assert driver.reason(item.key) == "timed out after 1s"
    assert len(children) == 2  # both background children had started
    assert still_running == []
    # They were zombies (or gone) when the try was recorded: exited, not running.
    assert all(state == psutil.STATUS_ZOMBIE for state in states.values()), states
