"""Consoles on stores these tests seed, at a fixed time, refreshed only when a test says.

No engine: the console watches a store written here through the store's own
API (``Batch``), each change at its own moment, so what every panel shows is
decided by the test. ``show`` builds a snapshot and lets the screen draw it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pendulum
from textual.pilot import Pilot

from console.runtime import Runtime
from console.tui.app import ConsoleApp
from console.tui.factory import make_app
from executors.state import TaskState
from store import Batch, Store, TaskRecord, TaskSubmission

NOW = pendulum.datetime(2026, 11, 21, 15, 40, 0, tz="UTC")
DAG = "demo"
RUN = "manual__20261121T1539"


@dataclass
class Seeded:
    """A store and a console watching it, both on the clock ``now``."""

    runtime: Runtime
    store: Store
    now: pendulum.DateTime = NOW

    def at(self, seconds_ago: float) -> pendulum.DateTime:
        return self.now.subtract(microseconds=int(seconds_ago * 1_000_000))

    # ---- writing -----------------------------------------------------------------------
    def submit(
        self,
        tasks: Iterable[str | tuple[str, list[str]]],
        *,
        dag: str = DAG,
        run: str = RUN,
        seconds_ago: float = 60,
        retries: int = 0,
    ) -> None:
        """A run of tasks (``name`` or ``(name, upstream)``), all scheduled."""
        submissions = []
        for task in tasks:
            name, upstream = (task, []) if isinstance(task, str) else task
            submissions.append(
                TaskSubmission(
                    task_id=name,
                    command=["true"],
                    executor="local",
                    upstream=upstream,
                    retries=retries,
                )
            )
        self.store.clock = lambda: self.at(seconds_ago)
        self.store.submit(dag, run, submissions)

    def current(self, task: str, dag: str = DAG, run: str = RUN) -> TaskRecord:
        return self.store.resolve(f"{dag}/{task}/{run}")

    def commit(self, seconds_ago: float, batch: Batch) -> None:
        self.store.clock = lambda: self.at(seconds_ago)
        self.store.commit(batch)

    def hand_out(self, record: TaskRecord, seconds_ago: float) -> TaskRecord:
        batch = Batch()
        batch.transition(
            record,
            TaskState.QUEUED,
            actor="engine",
            token=f"tok-{record.id}",
            queued_at=self.at(seconds_ago).to_iso8601_string(),
        )
        self.commit(seconds_ago, batch)
        return self.store.get_by_id(record.id) or record

    def start(self, record: TaskRecord, worker: str, seconds_ago: float) -> TaskRecord:
        if record.state == TaskState.SCHEDULED:
            record = self.hand_out(record, seconds_ago)
        batch = Batch()
        batch.transition(
            record,
            TaskState.RUNNING,
            actor="executor:local",
            worker=worker,
            hostname="host",
            pid=40000 + record.id,
            start_date=self.at(seconds_ago).to_iso8601_string(),
        )
        self.commit(seconds_ago, batch)
        return self.store.get_by_id(record.id) or record

    def finish(
        self,
        record: TaskRecord,
        state: TaskState,
        seconds_ago: float,
        *,
        retry_in: float | None = None,
        reason: str | None = None,
    ) -> None:
        """End a running try; ``up_for_retry`` makes its next try, waiting ``retry_in`` seconds."""
        batch = Batch()
        started = pendulum.parse(record.start_date or self.at(seconds_ago).to_iso8601_string())
        ended = self.at(seconds_ago)
        batch.transition(
            record,
            state,
            actor="executor:local",
            reason=reason,
            end_date=ended.to_iso8601_string(),
            duration=(ended - started).total_seconds(),  # type: ignore[operator]
            exit_code=0 if state == TaskState.SUCCESS else 1,
        )
        if state == TaskState.UP_FOR_RETRY:
            not_before = ended.add(seconds=retry_in or 0).to_iso8601_string()
            batch.new_try(record, actor="engine", not_before=not_before, reason="retry")
        self.commit(seconds_ago, batch)

    def run_through(
        self,
        record: TaskRecord,
        worker: str,
        started_ago: float,
        ended_ago: float,
        state: TaskState = TaskState.SUCCESS,
        reason: str | None = None,
    ) -> None:
        """Hand a try out, then start and end it in one commit (as a try shorter than a tick)."""
        record = self.hand_out(record, started_ago)
        started, ended = self.at(started_ago), self.at(ended_ago)
        batch = Batch()
        batch.transition(
            record,
            TaskState.RUNNING,
            actor="executor:local",
            worker=worker,
            hostname="host",
            pid=40000 + record.id,
            start_date=started.to_iso8601_string(),
        )
        batch.transition(
            replace(record, state=TaskState.RUNNING),
            state,
            actor="executor:local",
            reason=reason,
            end_date=ended.to_iso8601_string(),
            duration=(ended - started).total_seconds(),
            exit_code=0 if state == TaskState.SUCCESS else 1,
        )
        self.commit(ended_ago, batch)

    def retry(self, record: TaskRecord, seconds_ago: float) -> None:
        """An operator's retry of a finished try: a new try, the old one superseded."""
        batch = Batch()
        batch.new_try(record, actor="operator", reason="retried by an operator", fresh_retries=True)
        self.commit(seconds_ago, batch)

    # ---- the console -----------------------------------------------------------------------
    def app(self) -> ConsoleApp:
        return make_app(self.runtime, clock=lambda: self.now, polling=False)


def seeded(home: Path, *, parallelism: int = 2) -> Seeded:
    runtime = Runtime.load(home=home, executor="local", parallelism=parallelism)
    runtime.config.ensure_dirs()
    return Seeded(runtime, Store(runtime.config.store_path, clock=lambda: NOW))


async def show(app: ConsoleApp, pilot: Pilot[Any]) -> None:
    """A snapshot of the store now, drawn."""
    app.poll_now()
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


def run_app(
    app: ConsoleApp, size: tuple[int, int], scenario: Callable[[Pilot[Any]], Awaitable[None]]
) -> None:
    """Run ``app`` under Pilot at ``size`` for the scenario, then close its connections."""
    import asyncio

    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await show(app, pilot)
            await scenario(pilot)

    try:
        asyncio.run(main())
    finally:
        app.builder.close()
        app.operator.close()


def screen_text(app: ConsoleApp) -> list[str]:
    """The whole screen as plain text lines, as the terminal shows it (export_screenshot's path)."""
    import io

    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True)
    console.print(app.screen._compositor.render_update(full=True))
    return console.export_text().splitlines()


def region_text(app: ConsoleApp, widget: Any) -> list[str]:
    """The lines of the screen a widget covers (its frame and children included)."""
    region = widget.region
    lines = screen_text(app)
    return [line[region.x : region.right] for line in lines[region.y : region.bottom]]
