"""Bad input: one line on stderr, exit code 2, no traceback."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer

EXIT_BAD_INPUT = 2


class BadInput(Exception):
    """Input the operator can fix; the message is the whole story."""


def operator_errors() -> tuple[type[BaseException], ...]:
    """Every exception type whose message is meant for the operator."""
    from console.config import ConfigError
    from console.workflow import WorkflowError
    from executors.loader import ExecutorConfigError
    from executors.task_key import TaskKeyError
    from store.errors import StoreError

    return (BadInput, ConfigError, WorkflowError, ExecutorConfigError, TaskKeyError, StoreError)


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(EXIT_BAD_INPUT)


# SQLite's LIMIT is a signed 64-bit integer; anything larger means "all" anyway.
LIMIT_MAX = 2**63 - 1


def check_limit(limit: int) -> None:
    """``--limit`` of a list: 0 (all) up to what SQLite takes."""
    if limit < 0:
        fail(f"--limit must be 0 (all) or more, not {limit}")
    if limit > LIMIT_MAX:
        fail(f"--limit {limit} is too large: use --limit 0 for all")


def duration_option(option: str, text: str, noun: str = "a duration", examples: str = "") -> float:
    """An option's duration in seconds: a bare number, or number-and-unit parts (console/durations.py).

    Raises:
        BadInput: one line naming the option, the value and what to give.
    """
    from console.durations import EXAMPLES, DurationError, parse_seconds_text

    try:
        return parse_seconds_text(text)
    except DurationError as error:
        reason = "" if str(error) == "not a duration" else f" ({error})"
        raise BadInput(
            f"{option} {shown(text)} is not {noun}{reason}: give seconds or a number and "
            f"a unit, {examples or 'e.g. ' + EXAMPLES}"
        ) from None


def shown(text: str) -> str:
    """``text`` quoted for a message, bytes that are not UTF-8 shown as ``\\xff``.

    Python hands such bytes of an argument over as surrogate escapes
    (``'\\udcff'``), which mean nothing to the operator who typed them.
    """
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that no byte stood for
        return repr(text)
    return "'" + data.decode("utf-8", "backslashreplace") + "'"


def is_utf8(text: str) -> bool:
    """False when ``text`` holds bytes that were not UTF-8 (surrogate escapes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_utf8(option: str, value: str | None, what: str) -> None:
    """Refuse an option's text holding bytes that are not UTF-8: the store holds only UTF-8 text.

    ``what`` names what the value stands for ("workflow id"), for the message:
    no such thing can be stored under bytes that are not UTF-8.
    """
    if value is not None and not is_utf8(value):
        fail(
            f"{option} {shown(value)} is not UTF-8 text, so no {what} can match it: "
            "check how the value was typed or quoted"
        )
