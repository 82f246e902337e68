"""make_app: the one way to build the console, shared by launch(), the tests and the screenshots."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pendulum

from console.process_probe import ProcessProbe
from console.snapshot import Snapshot, SnapshotBuilder
from console.tui.app import ConsoleApp
from console.tui.context import ConsoleContext, EngineLink
from console.tui.operator import OperatorActions

if TYPE_CHECKING:
    from console.runtime import Runtime
    from executors.base import BaseExecutor


def make_app(
    runtime: Runtime,
    *,
    engine: EngineLink | None = None,
    executors: Mapping[str, BaseExecutor] | None = None,
    attached_to: Mapping[str, Any] | None = None,
    read_only: bool = False,
    clock: Callable[[], pendulum.DateTime] | None = None,
    polling: bool = True,
    refresh_interval: float | None = None,
    probe: ProcessProbe | None = None,
    snapshot_hook: Callable[[Snapshot], Snapshot] | None = None,
) -> ConsoleApp:
    """Build the console app.

    Args:
        runtime: config, store and executor choices (``Runtime.load``).
        engine: the console's own engine (``engine_process.ChildEngine``, ready);
            None when attached to another process's engine, or only watching.
            The app closes when it drains and says so if it dies.
        executors: the executors to show and ask about; defaults to ones built
            (not started) from the runtime, for their capabilities, panels and keys.
        attached_to: the lease owner (``store.lease_owner()``) when attached.
        read_only: hide every key that changes something.
        clock: the time; tests and screenshots pass a fixed one.
        polling: refresh live (off: one snapshot at start, for deterministic scenes).
        refresh_interval: seconds between polls (at most 0.5: twice a second or more).
        probe: how process trees are measured (a StaticProbe for scenes).
        snapshot_hook: a last change to each snapshot (scenes add fixed worker rows).
    """
    if executors is None:
        executors = runtime.build_executors()
    clock = clock or (lambda: pendulum.now("UTC"))
    context = ConsoleContext(
        runtime=runtime,
        executors=executors,
        engine=engine,
        attached_to=attached_to,
        read_only=read_only,
        clock=clock,
    )
    builder = SnapshotBuilder(
        runtime.config.store_path,
        executors=executors,
        engine_status=context.engine_status if engine is not None else None,
        attached_to=attached_to,
        clock=clock,
        probe=probe or ProcessProbe(),
        default_parallelism=runtime.parallelism,
    )
    operator = OperatorActions(
        runtime.config.store_path,
        list(executors),
        engine_present=lambda: context.engine_alive or context.attached_to is not None,
    )
    interval = (
        refresh_interval
        if refresh_interval is not None
        else runtime.config.console.refresh_interval
    )
    app = ConsoleApp(
        context,
        builder,
        operator,
        polling=polling,
        refresh_interval=interval,
        snapshot_hook=snapshot_hook,
    )
    if engine is not None:
        app.watch_engine(engine)
    return app
