"""One duration parser for workflow files and command-line options (console/durations.py)."""

from __future__ import annotations

import pytest

from console.durations import DurationError, parse_duration, parse_seconds_text


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (0, 0.0),
        (2.5, 2.5),
        ("500ms", 0.5),
        ("90s", 90.0),
        ("1h30m", 5400.0),
        ("1h 30m", 5400.0),
        ("10 s", 10.0),
        ("1.5h", 5400.0),
        ("7d", 604_800.0),
        ("2w", 1_209_600.0),
        ("1w2d3h4m5s6ms", 604_800 + 2 * 86_400 + 3 * 3600 + 4 * 60 + 5 + 0.006),
    ],
)
def test_a_number_of_seconds_or_units_largest_first_is_a_duration(
    value: object, seconds: float
) -> None:
    assert parse_duration(value) == pytest.approx(seconds)
    if isinstance(value, str):
        assert parse_seconds_text(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("1m1m", "unit 'm' given twice"),
        ("30m1h", "units out of order"),
        ("500ms1s", "units out of order"),
        ("10", "a number in quotes needs a unit"),
        ("", "not a duration"),
        ("7x", "not a duration"),
        ("-1d", "not a duration"),
        ("1 0s", "not a duration"),
        (True, "not a duration"),
        (float("nan"), "not a finite number"),
        ("9" * 400 + "h", "too large"),
    ],
)
def test_anything_else_is_refused_with_a_reason(value: object, why: str) -> None:
    with pytest.raises(DurationError, match=why):
        parse_duration(value)


def test_on_the_command_line_a_bare_number_is_seconds() -> None:
    assert parse_seconds_text("10") == 10.0
    assert parse_seconds_text("1e3") == 1000.0
    assert parse_seconds_text("-1") == -1.0  # for the caller's bounds to refuse, as any number
    assert parse_seconds_text("inf") == float("inf")
    with pytest.raises(DurationError):
        parse_seconds_text("1m1m")
