"""ExecutorOption: one option an executor reads from its ``[executor.<name>]`` section.

An executor class declares what it reads as ``option_specs``; the loader
(``executors.loader.check_options``) refuses anything else, as ``[core]``
keys are refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ExecutorOption:
    """One option an executor reads from its config section (``[executor.<name>]``).

    ``kind`` is "flag" (true or false), "integer", "seconds", "number" or
    "text"; ``minimum`` and ``maximum`` bound a number, both included.
    An executor class declares its options as a class attribute
    ``option_specs: dict[str, ExecutorOption]``; then ``build_executors``
    refuses an option it does not declare (naming the closest declared one)
    and a value of the wrong kind or out of range, as ``[core]`` keys are
    refused. A class that declares none is handed its options unchecked.
    """

    kind: str
    minimum: float | None = None
    maximum: float | None = None

    def problem(self, value: Any) -> str | None:
        """What is wrong with ``value`` (e.g. "must be true or false"), or None if it will do."""
        if self.kind == "flag":
            # As the executors read flags: TOML booleans, or words from the environment.
            if isinstance(value, bool) or str(value).strip().lower() in _FLAG_WORDS:
                return None
            return "must be true or false"
        if self.kind == "text":
            # A variable such as EXECCONSOLE__CELERY__KEY_PREFIX=123 reads as a TOML number.
            ok = isinstance(value, str | int | float) and not isinstance(value, bool)
            return None if ok else "must be a string"
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if self.kind == "integer" and not isinstance(value, int):
            is_number = False
        if is_number and isinstance(value, float) and not math.isfinite(value):
            is_number = False
        low, high = self.minimum, self.maximum
        if is_number and (low is None or value >= low) and (high is None or value <= high):
            return None
        noun = {"integer": "an integer", "seconds": "a number of seconds"}.get(
            self.kind, "a number"
        )
        if low is not None and high is not None:
            return f"must be {noun} from {low:g} to {high:g}"
        if low is not None:
            return f"must be {noun} ≥ {low:g}"
        if high is not None:
            return f"must be {noun} ≤ {high:g}"
        return f"must be {noun}"


_FLAG_WORDS = frozenset({"true", "yes", "on", "1", "false", "no", "off", "0"})
