"""Executors with one capability turned off, loaded by module path in the capability tests.

They differ from the real ones by a flag only, so a key that goes grey or
disappears with them proves the console reads the flag, not the executor's name.
"""

from __future__ import annotations

from typing import ClassVar

from executors.local import LocalExecutor


class LocalWithoutKill(LocalExecutor):
    """A LocalExecutor that says it cannot kill."""

    name: ClassVar[str] = "nokill"
    supports_kill: ClassVar[bool] = False


class LocalWithoutScaling(LocalExecutor):
    """A LocalExecutor that says it cannot change parallelism while running."""

    name: ClassVar[str] = "fixed"
    supports_live_scaling: ClassVar[bool] = False
