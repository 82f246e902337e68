"""``execconsole run`` and ``execconsole scheduler``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from console.cli.main import GlobalOptions
from console.cli.output import say


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("scheduler")(scheduler)


def run(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The workflow file (TOML).", show_default=False)],
    headless: Annotated[
        bool, typer.Option("--headless", help="No console: a progress bar on stderr.")
    ] = False,
    executor: Annotated[
        str | None,
        typer.Option("--executor", help="Executor(s) to use, e.g. local or local,celery."),
    ] = None,
    parallelism: Annotated[
        int | None, typer.Option("--parallelism", help="Tries per executor at once (0: no limit).")
    ] = None,
    run_id: Annotated[
        str | None, typer.Option("--run-id", help="Run id (default: manual__<time>_<random>).")
    ] = None,
) -> None:
    """Submit a workflow and run it: in the console, or headless with a progress bar.

    Headless, the exit code is 0 when every task succeeded and 1 when any failed.
    """
    options: GlobalOptions = ctx.obj
    runtime = options.runtime(executor=executor, parallelism=parallelism)
    from console.workflow import load_workflow

    spec = load_workflow(file, known_executors=runtime.executor_names)
    if not headless:
        from console.cli.console_cmd import console_available, open_console

        if console_available():
            open_console(
                options, executor=executor, parallelism=parallelism, workflow=spec, run_id=run_id
            )
            return
    raise typer.Exit(run_headless(runtime, spec, run_id))


def run_headless(runtime, spec, run_id: str | None) -> int:  # type: ignore[no-untyped-def]
    """Submit ``spec`` and drive it to the end; 0 if every task succeeded, else 1."""
    import time

    from console import actions
    from console.progress import ProgressBar

    store = runtime.store()
    if run_id is not None:
        from executors.task_key import is_valid_id

        if not is_valid_id(run_id):
            from console.cli.errors import BadInput

            raise BadInput(f"--run-id {run_id!r} may hold only letters, digits and _ . - : + @")
    owner = store.lease_owner()
    run_id, keys = actions.submit_workflow(
        store, spec, default_executor=runtime.default_executor, run_id=run_id
    )
    say(f"submitted {spec.dag_id}/{run_id}: {len(keys)} tasks")
    bar = ProgressBar(len(keys), label=f"{spec.dag_id} ")

    def counts() -> dict[str, int]:
        return store.count_by_state(dag_id=spec.dag_id, run_id=run_id)

    def finished(_engine: object = None) -> bool:
        return store.unfinished_count(dag_id=spec.dag_id, run_id=run_id) == 0

    if owner is not None:
        say(
            f"engine pid {owner['pid']} on {owner['hostname']} owns this store; following its progress"
        )
        try:
            while not finished():
                bar.update(counts())
                time.sleep(0.2)
        except KeyboardInterrupt:
            say("stopped following; the engine goes on running the workflow")
            return 130
    else:
        from console.headless import host_engine

        host_engine(runtime, until=finished, on_tick=lambda _engine: bar.update(counts()))
    final = counts()
    bar.close(final)
    return report_outcome(store, spec.dag_id, run_id, final, len(keys))


def report_outcome(store, dag_id: str, run_id: str, final: dict[str, int], total: int) -> int:  # type: ignore[no-untyped-def]
    from executors.state import TaskState

    failed = store.list_tasks(
        states=[TaskState.FAILED, TaskState.UPSTREAM_FAILED], dag_id=dag_id, run_id=run_id
    )
    unfinished = total - final.get("success", 0) - len(failed)
    for record in failed:
        say(f"  {record.state:<15} {record.key}  {record.reason or ''}")
    if unfinished > 0:
        say(
            f"{dag_id}/{run_id}: stopped with {unfinished} tasks unfinished; `execconsole scheduler` carries on"
        )
        return 1
    if failed:
        say(f"{dag_id}/{run_id}: {final.get('success', 0)} succeeded, {len(failed)} failed")
        return 1
    say(f"{dag_id}/{run_id}: all {total} tasks succeeded")
    return 0


def scheduler(
    ctx: typer.Context,
    parallelism: Annotated[
        int | None, typer.Option("--parallelism", help="Tries per executor at once (0: no limit).")
    ] = None,
    executor: Annotated[
        str | None,
        typer.Option("--executor", help="Executor(s) to host, e.g. local or local,celery."),
    ] = None,
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Exit once no task is waiting or running.")
    ] = False,
) -> None:
    """The engine without a console: runs what is submitted to the store until stopped."""
    import logging

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    options: GlobalOptions = ctx.obj
    runtime = options.runtime(executor=executor, parallelism=parallelism)
    store = runtime.store()
    from console.headless import host_engine

    def idle(engine) -> bool:  # type: ignore[no-untyped-def]
        return until_idle and not engine.in_flight and store.unfinished_count() == 0

    say(f"scheduler on {store.path} with executors {', '.join(runtime.executor_names)}")
    host_engine(runtime, until=idle)
