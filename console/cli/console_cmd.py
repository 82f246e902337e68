"""``execconsole console`` (and ``execconsole`` alone): the terminal UI."""

from __future__ import annotations

import importlib.util
from typing import Annotated, Any

import typer

from console.cli.main import GlobalOptions


def register(app: typer.Typer) -> None:
    app.command("console")(console)


def console_available() -> bool:
    """True once the console package is installed (it is imported only when opened)."""
    return importlib.util.find_spec("console.tui") is not None


def open_console(options: GlobalOptions, **kwargs: Any) -> None:
    if not console_available():
        from console.cli.output import say

        say(
            "the console is not built yet: use `execconsole run FILE --headless` or `execconsole --help`"
        )
        raise typer.Exit(0)
    if kwargs.get("read_only"):
        _refuse_watching_a_missing_store(options)
    import sys

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        from console.cli.errors import fail

        fail(
            "the console needs a terminal (standard input and output are not one): "
            "use `execconsole run FILE --headless`, `execconsole scheduler` or `execconsole tasks list`"
        )
    from console.tui.launch import launch

    raise typer.Exit(launch(options, **kwargs))


def _refuse_watching_a_missing_store(options: GlobalOptions) -> None:
    """A read-only console only watches: it must not create the store it would watch.

    Without --read-only the console starts an engine, which creates the store
    as ``run`` and ``scheduler`` do.
    """
    runtime = options.runtime()
    if runtime.store_is_missing():
        from console.cli.errors import fail

        fail(
            f"no store at {runtime.config.store_path} yet, so nothing to watch: check --store or "
            "EXECCONSOLE_HOME, or open the console without --read-only to start an engine"
        )


def console(
    ctx: typer.Context,
    executor: Annotated[
        str | None,
        typer.Option("--executor", help="Executor(s) to host, e.g. local or local,celery."),
    ] = None,
    parallelism: Annotated[
        int | None, typer.Option("--parallelism", help="Tries per executor at once (0: no limit).")
    ] = None,
    read_only: Annotated[
        bool,
        typer.Option("--read-only", help="Watch only: every key that changes something is hidden."),
    ] = False,
) -> None:
    """Open the console on the store (attaches if another engine owns it)."""
    # Bad options and config are refused first, as by run and scheduler, with or without a terminal.
    ctx.obj.runtime(executor=executor, parallelism=parallelism)
    open_console(ctx.obj, executor=executor, parallelism=parallelism, read_only=read_only)
