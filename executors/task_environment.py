"""The environment a task process starts with, set in the worker's own environ.

``subprocess.Popen(env=...)`` encodes every variable of the mapping again for
every spawn: with ~80 variables that was the largest single cost of starting a
try in a worker (more than the fork and exec). A worker that runs one try at a
time can instead change only the few variables a try overrides in its own
environment (``putenv`` through ``os.environ``) and let the task inherit it
(``env=None``), putting back afterwards whatever the previous try changed.

Only for single-threaded processes: another thread spawning meanwhile would
see one try's variables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping


class InheritedEnvironment:
    """Applies one try's overrides on top of the environment this process started with."""

    def __init__(self) -> None:
        self._base = dict(os.environ)
        self._changed: set[str] = set()

    def apply(self, overrides: Mapping[str, str]) -> None:
        """Make ``os.environ`` the base environment plus ``overrides``, changing only the difference."""
        for key in self._changed.difference(overrides):
            if key in self._base:
                os.environ[key] = self._base[key]
            else:
                os.environ.pop(key, None)
        for key, value in overrides.items():
            os.environ[key] = value
        self._changed = set(overrides)
