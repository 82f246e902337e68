"""What ``submit --wait`` and ``tasks wait`` print, and the exit code they end with.

Exit codes, for scripts: 0 every task succeeded, 1 some task failed (or was
upstream_failed), 124 the wait timed out with tasks unfinished (as
timeout(1) does), 130 the operator stopped waiting with Ctrl-C. Neither of
the last two touches the tasks: they go on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import typer

from console.cli.errors import fail
from console.cli.output import emit_json, say, seconds, tasks
from store.records import TaskRecord
from store.store import Store

EXIT_FAILED = 1
EXIT_TIMED_OUT = 124
EXIT_INTERRUPTED = 130

# A year, as for a task's own timeout: anything longer is a typo.
_WAIT_MAX = 365 * 24 * 3600.0


def wait_timeout_seconds(text: str | None, option: str) -> float | None:
    """A wait's --timeout in seconds (a number, or a duration such as 90s or 1h), None for none."""
    from console.cli.errors import duration_option

    if text is None:
        return None
    value = duration_option(option, text)
    if not (math.isfinite(value) and 0 < value <= _WAIT_MAX):
        fail(
            f"{option} must be more than 0 and at most {_WAIT_MAX:.0f} seconds (a year), "
            f"not {value:g}; leave it out to wait until the tasks end"
        )
    return value


def wait_and_report(
    store: Store, records: Sequence[TaskRecord], timeout: float | None, json_output: bool
) -> None:
    """Wait for ``records``' task instances to end, print how each ended, exit accordingly."""
    from console.task_wait import latest_try, wait_for_tasks

    try:
        outcome = wait_for_tasks(store, records, timeout=timeout, note=lambda m: say(f"note: {m}"))
    except KeyboardInterrupt:
        say("stopped waiting; the tasks go on: `execconsole tasks list --latest` shows them")
        if json_output:
            # Still the one document --json promises: a script that stopped
            # waiting learns where each task stands (and, after submit, its key).
            emit_json([latest_try(store, record).to_json() for record in records])
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if json_output:
        emit_json([record.to_json() for record in outcome.latest])
    for record in outcome.latest:
        say(_ending(record))
    if outcome.timed_out:
        left = outcome.unfinished
        goes_on = "it goes on" if len(left) == 1 else "they go on"
        say(f"stopped waiting after {timeout:g}s with {tasks(len(left))} unfinished; {goes_on}")
        raise typer.Exit(EXIT_TIMED_OUT)
    if outcome.failed:
        raise typer.Exit(EXIT_FAILED)


def _ending(record: TaskRecord) -> str:
    tries = f" (try {record.try_number})" if record.try_number > 1 else ""
    line = f"{record.key}: {record.state}{tries}"
    if record.duration is not None:
        line += f" in {seconds(record.duration)}"
    if record.reason:
        line += f": {record.reason}"  # "exited with code 3", "timed out after 5s", ...
    elif record.exit_code:
        line += f", exit code {record.exit_code}"
    return line
