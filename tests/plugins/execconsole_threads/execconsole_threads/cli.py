"""``execconsole threads ...``: commands this executor adds to the CLI.

execconsole imports this module only when a ``threads`` command runs (or for
``--help``), so Typer work done here never slows other commands down.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path
from typing import Annotated

import typer

from execconsole_threads.executor import ThreadPoolTaskExecutor
from executors.state import TaskState
from executors.task_key import TaskKey
from executors.workload import Workload

app = typer.Typer(no_args_is_help=True, add_completion=False)


@app.callback()
def main() -> None:
    """The thread-pool executor (from the execconsole-threads plug-in)."""


@app.command()
def smoke(
    tasks: Annotated[int, typer.Option(min=1, help="How many tasks to run.")] = 8,
    threads: Annotated[int, typer.Option(min=1, help="Pool size (parallelism).")] = 4,
    command: Annotated[str, typer.Option(help="Shell command each task runs.")] = "true",
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds to wait for all.")] = 60.0,
) -> None:
    """Run TASKS copies of a command through a fresh pool and say how they ended."""
    with tempfile.TemporaryDirectory(prefix="execconsole-threads-") as home:
        executor = ThreadPoolTaskExecutor(threads, home=home)
        executor.start()
        for number in range(1, tasks + 1):
            key = TaskKey("smoke", f"task{number}", "cli")
            executor.queue_workload(
                Workload(
                    key=key,
                    command=[command],
                    shell=True,
                    log_path=str(Path(home, "logs", f"{key.task_id}.log")),
                    token=uuid.uuid4().hex,
                )
            )
        started = time.monotonic()
        finished: dict[TaskKey, TaskState] = {}
        while len(finished) < tasks and time.monotonic() - started < timeout:
            executor.heartbeat()
            for key, (state, _report) in executor.get_event_buffer().items():
                if state.is_finished:
                    finished[key] = state
            time.sleep(0.01)
        elapsed = time.monotonic() - started
        stats = executor.pool_stats()
        executor.end(timeout=0.0 if len(finished) < tasks else 10.0)

    succeeded = sum(state is TaskState.SUCCESS for state in finished.values())
    typer.echo(
        f"{tasks} tasks: {succeeded} succeeded, {len(finished) - succeeded} failed, "
        f"{tasks - len(finished)} unfinished, in {elapsed:.2f}s on {stats.threads} threads"
    )
    if succeeded < tasks:
        raise typer.Exit(1)
