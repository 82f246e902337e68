"""The executor framework: BaseExecutor, the workloads it runs, and its capability interface."""

from executors.base import (
    Adoption,
    AdoptionOutcome,
    AdoptionRecord,
    BaseExecutor,
    TaskLog,
    WorkerInfo,
)
from executors.state import TaskState
from executors.task_key import PartialKey, TaskKey, TaskKeyError, parse_key
from executors.vended import CliGroup, ConsolePanel, KeyBinding
from executors.workload import TaskReport, Workload

__all__ = [
    "Adoption",
    "AdoptionOutcome",
    "AdoptionRecord",
    "BaseExecutor",
    "CliGroup",
    "ConsolePanel",
    "KeyBinding",
    "PartialKey",
    "TaskKey",
    "TaskKeyError",
    "TaskLog",
    "TaskReport",
    "TaskState",
    "WorkerInfo",
    "Workload",
    "parse_key",
]
