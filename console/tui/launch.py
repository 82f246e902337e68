"""launch(): open the console from the CLI, hosting the engine or attaching to one.

Order matters (FACTS.md): the engine and its executors start, forking their
worker processes or forkserver, *before* Textual starts any thread; the engine
then loops on a thread of its own; the UI runs on the main thread; and when it
quits, the engine shuts down the way the operator chose.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from console.cli.output import say

if TYPE_CHECKING:
    from console.runtime import Runtime
    from console.tui.app import ConsoleApp

SHUTDOWN_GRACE_SECONDS = 10.0
ENGINE_THREAD_JOIN_SECONDS = 30.0


def _log_to_file(runtime: Runtime) -> None:
    """Send logging to <home>/console.log: a line on stderr would tear the screen."""
    runtime.config.ensure_dirs()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.StreamHandler) and not isinstance(
            handler, logging.FileHandler
        ):
            root.removeHandler(handler)
    handler = logging.FileHandler(runtime.config.home / "console.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def launch(
    options: Any,
    *,
    executor: str | None = None,
    parallelism: int | None = None,
    workflow: Any = None,
    run_id: str | None = None,
    read_only: bool = False,
) -> int:
    """Run the console until the operator quits; returns the process exit code.

    Hosts the engine unless another live engine owns the store (then attaches:
    the same panels from the store, actions sent as requests) or ``read_only``
    (then it only watches). ``workflow`` (a validated WorkflowSpec) is
    submitted first, as ``execconsole run`` would.
    """
    from console import actions
    from console.tui.engine_host import EngineHost
    from console.tui.factory import make_app
    from store import StoreOwned

    runtime = options.runtime(executor=executor, parallelism=parallelism)
    store = runtime.store()
    if run_id is not None:
        from executors.task_key import is_valid_id

        if not is_valid_id(run_id):
            from console.cli.errors import BadInput

            raise BadInput(f"--run-id {run_id!r} may hold only letters, digits and _ . - : + @")
    owner = store.lease_owner()
    # Executors are built (and their config checked) before anything is written.
    executors = runtime.build_executors()
    if workflow is not None:
        run_id, keys = actions.submit_workflow(
            store, workflow, default_executor=runtime.default_executor, run_id=run_id
        )
        say(f"submitted {workflow.dag_id}/{run_id}: {len(keys)} tasks")
    _log_to_file(runtime)

    if owner is None and not read_only:
        engine = runtime.build_engine(executors)
        try:
            engine.start()
        except StoreOwned:
            owner = store.lease_owner()  # another engine started first: attach to it
        else:
            return _run_hosted(runtime, engine, EngineHost(engine))
    app = make_app(runtime, executors=executors, attached_to=owner, read_only=read_only)
    try:
        app.run()
    finally:
        _close(app, runtime)
    return app.return_code or 0


def _run_hosted(runtime: Runtime, engine: Any, host: Any) -> int:
    """The console with the engine in this process; shuts it down as the operator chose."""
    from console.tui.factory import make_app

    host.start()
    app = make_app(runtime, engine=engine, host=host)
    mode = "finish"
    try:
        app.run()
        mode = app.return_value or "finish"
    finally:
        # If the UI crashed there is no answer: let running tries finish (bounded).
        stopped = host.stop(ENGINE_THREAD_JOIN_SECONDS)
        if not stopped:
            logging.getLogger(__name__).error(
                "the engine thread did not stop; shutting down anyway"
            )
        in_flight = len(engine.in_flight)
        try:
            engine.shutdown(mode, timeout=SHUTDOWN_GRACE_SECONDS)
        finally:
            _close(app, runtime)
    if mode == "detach" and in_flight:
        say(f"left {in_flight} tasks running; the next engine on this store adopts them")
    elif mode == "kill" and in_flight:
        say(f"killed {in_flight} running tasks")
    if host.error is not None:
        say(f"error: the engine stopped: {host.error}")
        return 1
    return app.return_code or 0


def _close(app: ConsoleApp, runtime: Runtime) -> None:
    app.builder.close()
    app.operator.close()
    runtime.close()
