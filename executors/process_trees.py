"""Process trees of tries: is a try's process still the one we started, and stopping many at once.

A try runs as the leader of its own process group; its tree is the leader
and every descendant. A pid is only trusted together with the process's
create time, since the kernel reuses pids.
"""

from __future__ import annotations

import psutil

from executors.supervisor import signal_group, signal_process, wait_until_gone


def same_process_alive(pid: int | None, create_time: float | None) -> bool:
    """True if ``pid`` runs and is the process that was started at ``create_time``."""
    if not pid:
        return False
    try:
        process = psutil.Process(pid)
        if create_time is not None and abs(process.create_time() - create_time) > 0.01:
            return False  # the pid was reused by another process
        return process.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def signal_each(processes: list[psutil.Process], signum: int) -> None:
    """Signal each process; one that is gone already is not an error."""
    for process in processes:
        signal_process(process, signum)


def process_tree(pid: int, create_time: float | None) -> list[psutil.Process] | None:
    """The process and its descendants; None if ``pid`` is now someone else."""
    try:
        leader = psutil.Process(pid)
        if create_time is not None and abs(leader.create_time() - create_time) > 0.01:
            return None
        return [leader, *leader.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []
    except psutil.AccessDenied:
        return None


def stop_process_trees(roots: list[tuple[int, float | None]], grace: float) -> None:
    """SIGTERM task process groups and all their descendants, then SIGKILL what is left.

    Like ``supervisor.kill_process_tree`` for many trees at once (a zombie
    counts as gone there too: see ``wait_until_gone``).
    """
    members: list[psutil.Process] = []
    groups: list[int] = []
    for pid, create_time in roots:
        tree = process_tree(pid, create_time)
        if tree is None:
            continue  # pid reused: not ours to signal
        groups.append(pid)
        members.extend(tree)
    for pgid in groups:
        signal_group(pgid, 15)
    signal_each(members, 15)
    alive = wait_until_gone(members, grace)
    for pgid in groups:
        signal_group(pgid, 9)
    signal_each(alive, 9)
    wait_until_gone(alive, grace)
