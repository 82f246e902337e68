"""launch(): open the console from the CLI, on its own engine process or attached to one.

When no engine owns the store, the console starts one as a child process
(``console.tui.engine_process``: the headless engine, in a session of its own)
and attaches to it; the UI and the engine never share an interpreter, so
rendering never slows dispatch. When the console quits, it tells its engine
what the operator chose for running tasks (let them finish, kill them, or
leave them to the next engine) and waits for it to end. If another process
already owns the store, the console attaches to that engine instead, and
leaves it running when it quits.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from console.cli.output import plural, say, tasks

if TYPE_CHECKING:
    from console.runtime import Runtime
    from console.tui.app import ConsoleApp
    from store import Store


class HeldLog(logging.Handler):
    """A read-only console's warnings and errors, kept in memory and said once it has closed.

    A read-only console writes nothing, console.log included; a line on
    stderr while it runs would tear the screen.
    """

    def __init__(self, limit: int = 20) -> None:
        super().__init__(logging.WARNING)
        self.lines: deque[str] = deque(maxlen=limit)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:
            self.handleError(record)


def _route_logging(runtime: Runtime, read_only: bool) -> HeldLog | None:
    """Send logging to <home>/console.log, or (read-only) hold it in memory: never to stderr."""
    root = logging.getLogger()
    for old in list(root.handlers):
        if isinstance(old, logging.StreamHandler) and not isinstance(old, logging.FileHandler):
            root.removeHandler(old)
    held: HeldLog | None = None
    handler: logging.Handler
    if read_only:
        handler = held = HeldLog()
    else:
        runtime.config.ensure_dirs()
        handler = logging.FileHandler(runtime.config.home / "console.log", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return held


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

    Starts its own engine process unless another live engine owns the store
    (then attaches: the same panels from the store, actions sent as requests)
    or ``read_only`` (then it only watches). ``workflow`` (a validated
    WorkflowSpec) is submitted first, as ``execconsole run`` would.
    """
    from console import actions
    from console.tui.engine_process import ChildEngine, EngineOwned, EngineStartFailed

    runtime = options.runtime(executor=executor, parallelism=parallelism)
    store = runtime.store()
    if run_id is not None:
        from executors.task_key import ID_RULE, is_valid_id

        if not is_valid_id(run_id):
            from console.cli.errors import BadInput

            raise BadInput(f"--run-id {run_id!r} is not a valid id; use {ID_RULE}")
    owner = store.lease_owner()
    # Executors are built (and their config checked) before anything is written.
    # A read-only console writes nothing at all: no folders, no console.log.
    executors = runtime.build_executors(create_dirs=not read_only)
    if workflow is not None:
        run_id, keys = actions.submit_workflow(
            store, workflow, default_executor=runtime.default_executor, run_id=run_id
        )
        say(f"submitted {workflow.dag_id}/{run_id}: {tasks(len(keys))}")
    held = _route_logging(runtime, read_only)

    engine: ChildEngine | None = None
    if owner is None and not read_only:
        engine = ChildEngine.spawn(runtime, hold=True)  # released by the app's first screen
    try:
        # Textual is imported while the engine process starts.
        from console.tui.factory import make_app

        if engine is not None:
            try:
                engine.wait_ready()
            except EngineOwned:
                engine = None
                owner = store.lease_owner()  # another engine started first: attach to it
            except EngineStartFailed as error:
                engine = None
                say(
                    f"error: the engine could not start: {error} (see {runtime.config.home}/engine.log)"
                )
                return 1
        app = make_app(
            runtime,
            executors=executors,
            engine=engine,
            attached_to=owner if engine is None else None,
            read_only=read_only,
        )
    except BaseException:
        if engine is not None:
            engine.stop("finish")
        raise
    mode = "finish"
    try:
        app.run()
        mode = app.return_value or "finish"
    finally:
        # If the UI crashed there is no answer: let running tries finish (bounded).
        # (The engine may have been restarted while the console ran: stop the current one.)
        current: Any = app.context.engine
        if current is not None:
            stop_engine(current, mode, store)
        _close(app, runtime)
        if held is not None and held.lines:
            say("the console logged (read-only, so not to console.log):")
            for line in held.lines:
                say(line)
    if app.context.engine is not None and app.engine_error is not None:
        say(f"error: {app.engine_error}")
        return 1
    return app.return_code or 0


def stop_engine(engine: Any, mode: str, store: Store | None = None) -> None:
    """Tell the console's engine how to stop, wait for it, and say what became of the tasks.

    Tries are counted as the header counts them: running, or handed out to an
    executor and not started (those go back to the store whatever the mode).
    After a drain, what was left for the next engine is read from ``store``.
    """
    status = engine.status()
    running, handed_out = _running_and_handed_out(status)
    if engine.running and mode != "detach" and (running or handed_out):
        what = "killing" if mode == "kill" else "waiting for"
        line = f"stopping the engine: {what} {plural(running, 'running task')}"
        if handed_out:
            line += f"; {handed_out} queued but not started go back to the store, scheduled"
        say(line)
    engine.stop(mode)
    stopped = engine.stopped or {}
    left = int(stopped.get("running", running))
    if stopped.get("mode") == "detach" and left:
        say(f"left {plural(left, 'task')} running; the next engine on this store adopts them")
    elif stopped.get("mode") == "kill" and left:
        say(f"killed {plural(left, 'running task')}")
    elif stopped.get("drained") and store is not None:
        say(drained_line(store.unfinished_count()))


def drained_line(waiting: int) -> str:
    """What a drain left behind: the tasks that never started stay scheduled in the store.

    The console closed on its own once the last running task ended; without
    this line the operator cannot tell whether anything is left to run.
    """
    if not waiting:
        return "drained: every task has ended; nothing is left to run"
    return (
        f"drained: nothing runs; {plural(waiting, 'task')} left scheduled for the next engine "
        "(`execconsole scheduler`, or open the console again)"
    )


def _running_and_handed_out(status: Any) -> tuple[int, int]:
    """(running, handed out) by the engine's last status, summed over its executors."""
    if status is None:
        return 0, 0
    executors = status.executors.values()
    return sum(e.running for e in executors), sum(e.backlog for e in executors)


def _close(app: ConsoleApp, runtime: Runtime) -> None:
    app.builder.close()
    app.operator.close()
    runtime.close()
