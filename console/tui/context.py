"""What the console knows about its surroundings; executor-vended panels receive it too."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pendulum

if TYPE_CHECKING:
    from console.engine import Engine
    from console.runtime import Runtime
    from console.tui.engine_host import EngineHost
    from executors.base import BaseExecutor

Clock = Callable[[], pendulum.DateTime]


@dataclass
class ConsoleContext:
    """The console's situation: passed to every vended panel as ``console_context``.

    Attributes:
        runtime: config, store path and executor names.
        executors: configured executors by name (started ones when the engine is hosted here).
        engine: the engine hosted in this process, or None.
        host: the thread running that engine, or None.
        attached_to: the lease owner when another process hosts the engine.
        read_only: keys that change something are hidden.
        clock: the time (fixed in tests and screenshots).
    """

    runtime: Runtime
    executors: Mapping[str, BaseExecutor]
    engine: Engine | None = None
    host: EngineHost | None = None
    attached_to: Mapping[str, Any] | None = None
    read_only: bool = False
    clock: Clock = field(default=lambda: pendulum.now("UTC"))

    @property
    def hosted(self) -> bool:
        """The engine runs in this process (so executor code can run on its thread)."""
        return self.engine is not None

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

    def call_on_engine(self, function: Callable[[], None]) -> bool:
        """Run ``function`` on the engine's thread; False when the engine is not hosted here."""
        if self.host is not None:
            self.host.call_soon(function)
            return True
        if self.engine is not None:
            self.engine.call_soon(function)
            return True
        return False
