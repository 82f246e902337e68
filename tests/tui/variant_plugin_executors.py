"""The example plug-in's executor with live scaling turned off (its vended key needs it)."""

from __future__ import annotations

from typing import ClassVar

from execconsole_threads.executor import ThreadPoolTaskExecutor


class ThreadsWithoutScaling(ThreadPoolTaskExecutor):
    """The thread-pool plug-in, claiming it cannot scale live."""

    name: ClassVar[str] = "stiffthreads"
    supports_live_scaling: ClassVar[bool] = False
