"""Durations, as every part of execconsole reads them: workflow files and command-line options.

A duration is a number of seconds, or a string of parts, each a number and a
unit, largest unit first and each unit once::

    30          seconds (a TOML number; on the command line, a bare number)
    "500ms"     "90s"   "2m"   "1h30m"   "1h 30m"   "7d"   "2w"   "1.5h"

Units: ``w`` (weeks), ``d``, ``h``, ``m``, ``s``, ``ms``. ``"1m1m"`` and
``"30m1h"`` are refused: a unit twice, or out of order, is more likely a typo
than a sum. In a workflow file a quoted number (``timeout = "10"``) is a
string without a unit and is refused, with the hint to drop the quotes; on
the command line, where nothing is quoted, a bare number is seconds.

The callers bound the result (a timeout is at least TIMEOUT_MIN and at most
a year, see console/workflow.py); this module only reads it.
"""

from __future__ import annotations

import math
import re

UNIT_SECONDS = {"w": 604_800.0, "d": 86_400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_UNIT_ORDER = list(UNIT_SECONDS)  # largest first
_PART = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|w|d|h|m|s)\s*")
_NUMBER = re.compile(r"\s*[0-9]+(?:\.[0-9]+)?\s*")

EXAMPLES = "90s, 30m, 1h30m, 7d or 500ms"

# The shortest timeout: a try killed after less than a millisecond never ran,
# and its reason would read "timed out after 1e-09s".
TIMEOUT_MIN = 0.001


class DurationError(ValueError):
    """Not a duration; the message says why in a few lower-case words."""


def parse_duration(value: object) -> float:
    """Seconds from a number or a duration string (see the module docstring).

    Raises:
        DurationError: a boolean, a number that is not finite, a string that
            is not number-and-unit parts, or a quoted number ("needs a unit").
    """
    if isinstance(value, bool):
        raise DurationError("not a duration")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise DurationError("not a finite number")
        return float(value)
    if not isinstance(value, str):
        raise DurationError("not a duration")
    if _NUMBER.fullmatch(value):
        raise DurationError("a number in quotes needs a unit")
    return _parse_parts(value)


def parse_seconds_text(text: str) -> float:
    """A command-line duration: a bare number of seconds, or a duration string.

    A negative number, or one that is not finite ("inf", "nan"), is returned
    as it is, for the caller's bounds to refuse as they refuse any number.

    Raises:
        DurationError: as parse_duration.
    """
    try:
        return float(text)  # as a number option reads it: "90", "1.5", "1e3", "-1", "nan"
    except ValueError:
        return parse_duration(text)


def _parse_parts(text: str) -> float:
    position = 0
    total = 0.0
    last_unit = -1
    while position < len(text):
        match = _PART.match(text, position)
        if match is None:
            raise DurationError("not a duration")
        unit = _UNIT_ORDER.index(match[2])
        if unit == last_unit:
            raise DurationError(f"unit {match[2]!r} given twice")
        if unit < last_unit:
            raise DurationError(f"units out of order: {match[2]!r} after a smaller one")
        last_unit = unit
        total += float(match[1]) * UNIT_SECONDS[match[2]]
        position = match.end()
    if last_unit < 0:
        raise DurationError("not a duration")
    return _finite(total)


def _finite(seconds: float) -> float:
    if not math.isfinite(seconds):
        raise DurationError("too large")
    return seconds
