"""TaskKey: the identity of one try of one task, and its text form.

Text form, used on the command line and in the console::

    dag/task/run#try          map_index -1 (not mapped)
    dag/task[3]/run#try       map_index 3

Operators may leave parts off: ``dag/task`` means the latest try of the latest
run; ``dag/task/run`` the latest try of that run; ``dag/task#try`` that try of
the latest run (the console shows keys as ``dag/task#try``, with the run apart,
so operators type them that way). Resolving a partial key is the store's job;
this module only parses and formats.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_SEGMENT = re.compile(r"^[A-Za-z0-9_.\-:+@]+$")

MAX_ID_LENGTH = 200
"""Ids become file and folder names under the logs directory (a try's log is
``<task>[.<map>].<try>.log``), and a name may be at most 255 bytes: a longer id
made its try fail at start (a dag or run id) or lose its output (a task id).
Airflow caps ids at 250 for its own reasons; 200 leaves room for the suffixes."""

ID_RULE = f"letters, digits and _ . - : + @ only, at most {MAX_ID_LENGTH} characters"
"""What ``is_valid_id`` accepts, for messages."""

MAX_TRY_NUMBER = 2**31 - 1
"""Stored as an SQLite integer; far beyond any retry budget a store accepts."""
_TASK_WITH_INDEX = re.compile(r"^(?P<task>.+)\[(?P<index>[0-9]{1,9})\]$")


class TaskKeyError(ValueError):
    """A task key that cannot be parsed; the message names the problem."""


class TaskKey(NamedTuple):
    """One try of one task: what every executor, event and store row is keyed by."""

    dag_id: str
    task_id: str
    run_id: str
    map_index: int = -1
    try_number: int = 1

    def __str__(self) -> str:
        task = self.task_id if self.map_index < 0 else f"{self.task_id}[{self.map_index}]"
        return f"{self.dag_id}/{task}/{self.run_id}#{self.try_number}"

    def with_try(self, try_number: int) -> TaskKey:
        """The same task instance at another try."""
        return self._replace(try_number=try_number)

    @property
    def instance(self) -> tuple[str, str, str, int]:
        """The key without the try: the task instance across all its tries."""
        return (self.dag_id, self.task_id, self.run_id, self.map_index)


class PartialKey(NamedTuple):
    """A key as an operator typed it; missing parts are None."""

    dag_id: str
    task_id: str
    run_id: str | None = None
    map_index: int = -1
    try_number: int | None = None


def is_valid_id(value: str) -> bool:
    """Ids may hold letters, digits and ``_ . - : + @``, up to ``MAX_ID_LENGTH``; no slash, hash or space.

    Ids become folder names under the logs directory, so ``.`` and ``..``
    (or any id of dots alone) are refused.
    """
    return len(value) <= MAX_ID_LENGTH and bool(_SEGMENT.match(value)) and value.strip(".") != ""


def parse_key(text: str) -> PartialKey:
    """Parse ``dag/task[/run][#try]``; raise TaskKeyError naming what is wrong."""
    body, sep, try_text = text.partition("#")
    try_number: int | None = None
    if sep:
        if not (
            try_text.isascii()
            and try_text.isdigit()
            and len(try_text) <= len(str(MAX_TRY_NUMBER))
            and 1 <= int(try_text) <= MAX_TRY_NUMBER
        ):
            raise TaskKeyError(
                f"task key {text!r}: try number after '#' must be a whole number from 1 to {MAX_TRY_NUMBER}"
            )
        try_number = int(try_text)
    parts = body.split("/")
    if len(parts) < 2 or len(parts) > 3 or not all(parts):
        raise TaskKeyError(
            f"task key {text!r}: expected dag/task, dag/task#try, dag/task/run or dag/task/run#try"
        )
    dag_id, task_part = parts[0], parts[1]
    run_id = parts[2] if len(parts) == 3 else None
    map_index = -1
    match = _TASK_WITH_INDEX.match(task_part)
    if match:
        task_part, map_index = match["task"], int(match["index"])
    for label, value in (("dag id", dag_id), ("task id", task_part), ("run id", run_id)):
        if value is not None and not is_valid_id(value):
            raise TaskKeyError(
                f"task key {text!r}: {label} {value!r} is not a valid id; use {ID_RULE}"
            )
    return PartialKey(dag_id, task_part, run_id, map_index, try_number)
