"""The executor framework: BaseExecutor, the workloads it runs, and its capability interface.

Names are imported lazily: a quick command that only needs ``executors.state``
must not pay for importing the whole framework (about 20 ms here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_WHERE = {
    "Adoption": "executors.base",
    "AdoptionOutcome": "executors.base",
    "AdoptionRecord": "executors.base",
    "BaseExecutor": "executors.base",
    "TaskLog": "executors.base",
    "WorkerInfo": "executors.base",
    "TaskState": "executors.state",
    "PartialKey": "executors.task_key",
    "TaskKey": "executors.task_key",
    "TaskKeyError": "executors.task_key",
    "parse_key": "executors.task_key",
    "CliGroup": "executors.vended",
    "ConsolePanel": "executors.vended",
    "KeyBinding": "executors.vended",
    "TaskReport": "executors.workload",
    "Workload": "executors.workload",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'executors' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


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
