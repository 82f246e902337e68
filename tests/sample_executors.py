"""Executor classes known to no registry, for loading by module path in the loader tests."""

from __future__ import annotations

from typing import ClassVar

from executors.base import BaseExecutor
from executors.task_key import TaskKey
from executors.workload import Workload


class EchoExecutor(BaseExecutor):
    """Says every task succeeded without running it: loader tests never run it."""

    name: ClassVar[str] = "echo"

    def execute_async(self, key: TaskKey, workload: Workload) -> None:
        self.success(key)


class NamelessExecutor(BaseExecutor):
    """Keeps BaseExecutor's placeholder name, so it can only be configured under an alias."""

    def execute_async(self, key: TaskKey, workload: Workload) -> None:
        self.success(key)


class NotAnExecutor:
    """Has an executor-like name but is not a BaseExecutor."""

    name = "impostor"


NOT_A_CLASS = "executors are classes"
