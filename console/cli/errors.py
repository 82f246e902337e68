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
