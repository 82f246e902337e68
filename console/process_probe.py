"""CPU and memory of process trees, through psutil, for the console's panels."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass

import psutil

_PROC_CHILDREN = sys.platform.startswith("linux")


@dataclass(frozen=True, slots=True)
class ProcessUsage:
    """CPU and memory of a process tree."""

    cpu_percent: float
    rss: int
    processes: int


class ProcessProbe:
    """Measures process trees, keeping psutil objects across refreshes.

    psutil's first ``cpu_percent()`` of a Process object is always 0.0, so the
    objects live as long as their process, keyed by (pid, create_time) so that
    a reused pid is never mistaken for the old process.
    """

    def __init__(self) -> None:
        self._processes: dict[tuple[int, float], psutil.Process] = {}
        self._seen: set[tuple[int, float]] = set()
        self._children: dict[int, list[int]] | None = None
        self.hostname = socket.gethostname()

    def can_see(self, hostname: str | None) -> bool:
        """Whether processes on ``hostname`` can be measured from here (this machine only)."""
        return hostname in (None, self.hostname)

    def begin(self) -> None:
        """Start a refresh: the parent map is read at most once per refresh."""
        self._seen = set()
        self._children = None

    def end(self) -> None:
        """Forget processes not seen in this refresh."""
        for key in list(self._processes):
            if key not in self._seen:
                del self._processes[key]

    def _process(self, pid: int, create_time: float | None = None) -> psutil.Process | None:
        try:
            if create_time is None:
                create_time = psutil.Process(pid).create_time()
            key = (pid, round(create_time, 2))
            process = self._processes.get(key)
            if process is None:
                process = psutil.Process(pid)
                if abs(process.create_time() - create_time) > 0.01:
                    return None  # the pid was reused by another process
                self._processes[key] = process
                process.cpu_percent(None)  # primes the counter; the first reading is 0.0
            self._seen.add(key)
            return process
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return None

    def _children_of(self, pid: int) -> list[int]:
        """Direct children of ``pid``.

        Linux lists them per thread in /proc (cheap); elsewhere, or when that
        file is missing, one parent map of every process is built per refresh
        (7-8 ms for 100 processes here, so it is the fallback).
        """
        if self._children is None and _PROC_CHILDREN:
            try:
                found: list[int] = []
                for tid in os.listdir(f"/proc/{pid}/task"):
                    with open(f"/proc/{pid}/task/{tid}/children") as handle:
                        found += [int(child) for child in handle.read().split()]
                return found
            except FileNotFoundError:
                if os.path.exists(f"/proc/{pid}"):
                    self._children = {}  # no per-thread lists here: use the parent map
                else:
                    return []  # the process is gone
            except (OSError, ValueError):
                return []
        if not self._children:
            children: dict[int, list[int]] = {}
            for process in psutil.process_iter(["ppid"]):
                ppid = process.info.get("ppid")
                if ppid:
                    children.setdefault(ppid, []).append(process.pid)
            self._children = children
        return self._children.get(pid, [])

    def _descendants(self, pid: int) -> list[int]:
        found: list[int] = []
        frontier = [pid]
        while frontier:
            for child in self._children_of(frontier.pop()):
                found.append(child)
                frontier.append(child)
        return found

    def measure(self, pid: int, create_time: float | None = None) -> ProcessUsage | None:
        """CPU% and RSS of ``pid`` alone; None when it is gone."""
        process = self._process(pid, create_time)
        if process is None:
            return None
        try:
            with process.oneshot():
                return ProcessUsage(process.cpu_percent(None), process.memory_info().rss, 1)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return None

    def measure_tree(self, pid: int, create_time: float | None = None) -> ProcessUsage | None:
        """CPU% and RSS of ``pid`` and every descendant; None when ``pid`` is gone."""
        leader = self.measure(pid, create_time)
        if leader is None:
            return None
        cpu, rss, count = leader.cpu_percent, leader.rss, 1
        for child in self._descendants(pid):
            usage = self.measure(child)
            if usage is not None:
                cpu += usage.cpu_percent
                rss += usage.rss
                count += 1
        return ProcessUsage(cpu, rss, count)


class StaticProbe(ProcessProbe):
    """Fixed readings by pid: for deterministic screenshots and snapshot tests."""

    def __init__(self, readings: Mapping[int, ProcessUsage]) -> None:
        super().__init__()
        self.readings = dict(readings)

    def can_see(self, hostname: str | None) -> bool:
        return True

    def measure(self, pid: int, create_time: float | None = None) -> ProcessUsage | None:
        return self.readings.get(pid)

    def measure_tree(self, pid: int, create_time: float | None = None) -> ProcessUsage | None:
        return self.readings.get(pid)
