"""What the console knows about its surroundings; executor-vended panels receive it too."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pendulum

if TYPE_CHECKING:
    from console.engine_status import EngineStatus
    from console.runtime import Runtime
    from executors.base import BaseExecutor

Clock = Callable[[], pendulum.DateTime]


class EngineLink(Protocol):
    """The console's own engine, as the console sees it (``engine_process.ChildEngine``).

    The engine runs in a process of its own; the console reads its status and
    asks it to drain, run an executor's key, or stop.
    """

    on_exit: Callable[[Any], None] | None
    drain_requested: bool

    @property
    def pid(self) -> int: ...

    @property
    def running(self) -> bool: ...

    @property
    def drained(self) -> bool: ...

    def status(self) -> EngineStatus | None: ...

    def release(self) -> None: ...

    def drain(self) -> None: ...

    def run_key(
        self,
        executor: str,
        key: str,
        description: str,
        task: Any,
        reply: Callable[[bool, str], None],
    ) -> bool: ...

    def exit_reason(self) -> str: ...

    def wait_ready(self, timeout: float = ...) -> None: ...

    def respawn(self) -> EngineLink: ...


@dataclass
class ConsoleContext:
    """The console's situation: passed to every vended panel as ``console_context``.

    Attributes:
        runtime: config, store path and executor names.
        executors: configured executors by name (for their capabilities, panels
            and keys; the engine process runs its own instances).
        engine: the console's own engine (a child process it started), or None.
        attached_to: the lease owner when the console attached to an engine
            some other process started.
        read_only: keys that change something are hidden.
        clock: the time (fixed in tests and screenshots).
    """

    runtime: Runtime
    executors: Mapping[str, BaseExecutor]
    engine: EngineLink | None = None
    attached_to: Mapping[str, Any] | None = None
    read_only: bool = False
    clock: Clock = field(default=lambda: pendulum.now("UTC"))

    @property
    def hosted(self) -> bool:
        """The engine is the console's own (it started it, and stops it when it quits)."""
        return self.engine is not None

    @property
    def engine_alive(self) -> bool:
        return self.engine is not None and self.engine.running

    def engine_status(self) -> EngineStatus | None:
        """The latest status of the console's own engine (None if it has none, or it ended)."""
        return self.engine.status() if self.engine is not None else None

    @property
    def attached(self) -> bool:
        return self.attached_to is not None

    @property
    def home(self) -> Path:
        return self.runtime.config.home

    @property
    def store_path(self) -> Path:
        return self.runtime.config.store_path

    @property
    def executor_names(self) -> list[str]:
        return list(self.executors)
