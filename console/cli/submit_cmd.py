"""``execconsole submit -- CMD [ARG...]``: one ad-hoc task."""

from __future__ import annotations

from typing import Annotated

import typer

from console.cli.main import GlobalOptions
from console.cli.output import emit_json, say


def register(app: typer.Typer) -> None:
    app.command(
        "submit",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": False},
    )(submit)


def submit(
    ctx: typer.Context,
    command: Annotated[
        list[str] | None,
        typer.Argument(help="The command and its arguments, after --.", show_default=False),
    ] = None,
    dag: Annotated[
        str, typer.Option("--dag", help="Workflow id to file the task under.")
    ] = "adhoc",
    task: Annotated[
        str | None, typer.Option("--task", help="Task id (default: the program's name).")
    ] = None,
    priority: Annotated[int, typer.Option("--priority", help="Higher runs first.")] = 1,
    queue: Annotated[
        str, typer.Option("--queue", help="Queue (executors that route by queue use it).")
    ] = "default",
    executor: Annotated[
        str | None, typer.Option("--executor", help="A configured executor (default: the first).")
    ] = None,
    retries: Annotated[int, typer.Option("--retries", help="Further tries after a failure.")] = 0,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Seconds before the try is killed.")
    ] = None,
    shell: Annotated[
        bool, typer.Option("--shell", help="Run the words as one shell command line.")
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the stored task as JSON on stdout.")
    ] = False,
) -> None:
    """Submit one command as a task; the engine owning the store runs it."""
    from console import actions

    options: GlobalOptions = ctx.obj
    runtime = options.runtime()
    store = runtime.store()
    key = actions.submit_command(
        store,
        list(command or []),
        executor=executor or runtime.default_executor,
        configured_executors=runtime.executor_names,
        dag_id=dag,
        task_id=task,
        priority=priority,
        queue=queue,
        retries=retries,
        timeout=timeout,
        shell=shell,
    )
    record = store.get(key)
    assert record is not None
    if json_output:
        emit_json(record.to_json())
    else:
        say(f"submitted {key}")
        if store.lease_owner() is None:
            say(
                "no engine owns this store yet: `execconsole scheduler` or `execconsole console` runs it"
            )
