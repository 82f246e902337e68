"""What travels between the engine, executors and workers.

A Workload is everything a worker needs to run one try: plain data, JSON-safe,
so it can cross a multiprocessing pipe or a Celery broker unchanged. A
TaskReport is what comes back with each state change in the event buffer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from executors.task_key import TaskKey


@dataclass(slots=True)
class Workload:
    """One try of one task, ready to run; a value, never changed once built.

    Not a frozen dataclass: building a frozen one costs several times more,
    and the engine and a worker each build one for every try.

    Attributes:
        key: the try this workload runs.
        command: argv list; with ``shell`` true, a one-element list holding the shell string.
        log_path: file that receives the task's stdout and stderr.
        token: a fresh id for this hand-off. Workers claim it before starting the
            process so that a try is never started twice (see executors/claims.py);
            remote executors use it as their own task id.
    """

    key: TaskKey
    command: list[str]
    log_path: str
    token: str
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    timeout: float | None = None
    shell: bool = False
    priority: int = 1
    queue: str = "default"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["key"] = list(self.key)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Workload:
        values = dict(data)
        values["key"] = TaskKey(*values["key"])
        return cls(**values)


@dataclass(slots=True)
class TaskReport:
    """The info half of an event-buffer entry ``(state, info)``.

    A RUNNING report carries where the try runs (pid, hostname, worker); a
    finished report carries how it ended (exit_code or signal, reason). Times are
    ISO-8601 UTC strings. Any field may be None when the executor cannot know it.
    """

    pid: int | None = None
    pid_create_time: float | None = None
    hostname: str | None = None
    worker: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    exit_code: int | None = None
    signal: int | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        # By hand: dataclasses.asdict deep-copies and costs 0.1 ms a call here.
        return {name: getattr(self, name) for name in _REPORT_FIELDS}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskReport:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


_REPORT_FIELDS = tuple(TaskReport.__dataclass_fields__)
