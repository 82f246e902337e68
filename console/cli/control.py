"""``pause``, ``resume`` and ``parallelism``: requests to the engine that owns the store."""

from __future__ import annotations

from typing import Annotated

import typer

from console.cli.main import GlobalOptions
from console.cli.output import say


def register(app: typer.Typer) -> None:
    app.command("pause")(pause)
    app.command("resume")(resume)
    # "-3" must reach the argument (and be refused with a clear reason), not be
    # taken for an unknown option.
    app.command("parallelism", context_settings={"ignore_unknown_options": True})(parallelism)


def report_request(store, requested, wait: float = 5.0, describe=None) -> None:  # type: ignore[no-untyped-def]
    """Say what became of a request: done, rejected (exit 2), or waiting for an engine.

    ``describe``: turns a request carried out into the line to say (default:
    the engine's own result).
    """
    from console import actions
    from console.cli.errors import fail

    if store.lease_owner() is None:
        say(
            f"request {requested.request_id} ({requested.kind}) stored; the next engine on this store carries it out"
        )
        return
    outcome = actions.wait_for(store, requested.request_id, wait)
    if outcome is None:
        say(
            f"request {requested.request_id} ({requested.kind}) sent; the engine has not picked it up yet"
        )
    elif outcome.status == "rejected":
        fail(outcome.result or "rejected by the engine")
    elif describe is not None:
        say(describe(outcome))
    else:
        say(outcome.result or "done")


def pause(ctx: typer.Context) -> None:
    """Stop starting new tasks; running tasks go on."""
    from console import actions

    store = ctx.obj.runtime().store()
    report_request(store, actions.pause(store))


def resume(ctx: typer.Context) -> None:
    """Start dispatching tasks again."""
    from console import actions

    store = ctx.obj.runtime().store()
    report_request(store, actions.resume(store))


def parallelism(
    ctx: typer.Context,
    value: Annotated[
        int, typer.Argument(help="Tries at once; 0 means no limit.", show_default=False)
    ],
    executor: Annotated[
        str | None, typer.Option("--executor", help="Which executor (default: the first).")
    ] = None,
) -> None:
    """Change an executor's parallelism live (executors that support live scaling)."""
    from console import actions

    options: GlobalOptions = ctx.obj
    runtime = options.runtime()
    if executor is not None and executor not in runtime.executor_names:
        from console.cli.errors import fail

        fail(
            f"executor {executor!r} is not configured: choose one of {', '.join(runtime.executor_names)}"
        )
    from console.cli.store_access import store_on_first_use

    # Opened once the value is found good: a refused one leaves a missing store missing.
    store = store_on_first_use(runtime)
    if runtime.store_is_missing() or store.lease_owner() is None:
        # No engine to ask: the configured executor's capabilities answer now,
        # instead of the next engine rejecting the request in its log.
        _refuse_without_live_scaling(runtime, executor or runtime.default_executor)
    report_request(store, actions.set_parallelism(store, value, executor))


def _refuse_without_live_scaling(runtime, name: str) -> None:  # type: ignore[no-untyped-def]
    from console.cli.errors import fail
    from executors.loader import load_executor_class

    for spec in runtime.executor_specs():
        if spec.name == name and not load_executor_class(spec).supports_live_scaling:
            fail(
                f"executor {name!r} cannot change its parallelism while running (no live scaling, "
                f"see `execconsole executors show {name}`): set parallelism in config.toml "
                "or start the engine with --parallelism N"
            )
