"""What an engine reports of itself, as plain data: the figures the store does not hold.

The console's engine runs in a child process (``console.tui.engine_process``)
and sends an ``EngineStatus`` a few times a second as a JSON line; the
console's snapshot builder reads the latest. This module is headless.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from console.engine import Engine


@dataclass(frozen=True, slots=True)
class ExecutorStatus:
    """One executor's figures as its engine knows them."""

    parallelism: int
    running: int
    backlog: int  # handed to the executor, not yet started
    open_slots: int | None  # None: no limit


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    """One worker process of a local executor (``executors.base.WorkerInfo`` as plain data)."""

    pid: int
    title: str
    task: str | None
    tasks_done: int
    alive: bool = True
    exit_reason: str | None = None


@dataclass(frozen=True, slots=True)
class EngineStatus:
    """What an engine reports of itself: the figures the store does not hold.

    The console's engine process sends one a few times a second as a JSON line
    (``to_json``); ``from_engine`` takes it from an engine in this process.
    """

    pid: int
    paused: bool
    draining: bool
    in_flight: int  # tries handed to executors and not yet finished
    executors: Mapping[str, ExecutorStatus]
    workers: Mapping[str, tuple[WorkerStatus, ...]]
    last_message: str | None = None

    @classmethod
    def from_engine(cls, engine: Engine) -> EngineStatus:
        executors = {}
        workers = {}
        for name, executor in engine.executors.items():
            prefetched = len(executor.prefetched())  # handed out, waiting at a worker
            executors[name] = ExecutorStatus(
                parallelism=executor.parallelism,
                running=len(executor.running) - prefetched,
                backlog=len(executor.queued_tasks) + prefetched,
                open_slots=executor.open_slots() if executor.parallelism else None,
            )
            if executor.is_local:
                try:
                    infos = executor.worker_processes()
                except Exception:  # a status must never take the engine down
                    infos = []
                workers[name] = tuple(
                    WorkerStatus(
                        pid=info.pid,
                        title=info.title,
                        task=str(info.busy_with) if info.busy_with is not None else None,
                        tasks_done=info.tasks_done,
                        alive=info.alive,
                        exit_reason=info.exit_reason,
                    )
                    for info in infos
                )
        return cls(
            pid=os.getpid(),
            paused=engine.paused,
            draining=engine.draining,
            in_flight=len(engine.in_flight),
            executors=executors,
            workers=workers,
            last_message=newest_message(engine.messages),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "paused": self.paused,
            "draining": self.draining,
            "in_flight": self.in_flight,
            "executors": {
                name: [e.parallelism, e.running, e.backlog, e.open_slots]
                for name, e in self.executors.items()
            },
            "workers": {
                name: [[w.pid, w.title, w.task, w.tasks_done, w.alive, w.exit_reason] for w in rows]
                for name, rows in self.workers.items()
            },
            "last_message": self.last_message,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EngineStatus:
        return cls(
            pid=int(data["pid"]),
            paused=bool(data["paused"]),
            draining=bool(data["draining"]),
            in_flight=int(data["in_flight"]),
            executors={name: ExecutorStatus(*values) for name, values in data["executors"].items()},
            workers={
                name: tuple(WorkerStatus(*values) for values in rows)
                for name, rows in data["workers"].items()
            },
            last_message=data.get("last_message"),
        )


def newest_message(messages: deque[str]) -> str | None:
    try:
        return messages[-1] if messages else None
    except IndexError:  # emptied by another thread between the two reads
        return None
