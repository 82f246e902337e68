"""The environment a task process starts with, set in the worker's own environ.

``subprocess.Popen(env=...)`` encodes every variable of the mapping again for
every spawn: with ~80 variables that was the largest single cost of starting a
try in a worker (more than the fork and exec). A worker that runs one try at a
time can instead change only the few variables a try overrides in its own
environment (``putenv`` through ``os.environ``) and let the task inherit it
(``env=None``), putting back afterwards whatever the previous try changed.

``posix_spawn`` cannot inherit: it takes the environment as a mapping. So the
same few changes are made to ``encoded``, a bytes copy of the environment that
``os.posix_spawn`` takes as it is (passing ``os.environ`` instead costs 60 us
more a spawn here, with 38 variables: it decodes every one and encodes it back).

Only for single-threaded processes: another thread spawning meanwhile would
see one try's variables. And only ``apply`` may change the process's
environment once this object exists, or ``encoded`` would miss the change.
"""

from __future__ import annotations

import os
from collections.abc import Mapping


class InheritedEnvironment:
    """Applies one try's overrides on top of the environment this process started with."""

    def __init__(self) -> None:
        self._base = dict(os.environ)
        self._applied: dict[str, str] = {}  # the overrides in force, with their values
        self.encoded: dict[bytes, bytes] = dict(os.environb)
        """This process's environment as ``os.environ`` now holds it, encoded as exec needs it."""

    def apply(self, overrides: Mapping[str, str]) -> None:
        """Make ``os.environ`` the base environment plus ``overrides``, changing only the difference."""
        applied = self._applied
        if not overrides and not applied:
            return  # the usual try: nothing to set, nothing to put back
        encoded = self.encoded
        for key in [key for key in applied if key not in overrides]:
            del applied[key]
            if key in self._base:
                os.environ[key] = self._base[key]
                encoded[os.fsencode(key)] = os.fsencode(self._base[key])
            else:
                os.environ.pop(key, None)
                encoded.pop(os.fsencode(key), None)
        for key, value in overrides.items():
            if applied.get(key) == value:
                # The engine's EXECCONSOLE_* variables: tries in a row mostly
                # share the dag, run, map index and try number.
                continue
            # os.environ first: it refuses what exec could not take ("=" in a
            # name, a NUL), before ``encoded`` would hold it.
            os.environ[key] = value
            encoded[os.fsencode(key)] = os.fsencode(value)
            applied[key] = value
