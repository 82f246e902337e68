"""A real console for Pilot tests: its real engine process, real executor, real store.

Built the way ``launch()`` builds it (Runtime -> ChildEngine.spawn -> wait_ready
-> make_app), so a test drives what an operator drives: the engine runs in a
child process and the console attaches to it.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from textual.pilot import Pilot

from console import actions
from console.engine_status import EngineStatus
from console.runtime import Runtime
from console.tui.app import ConsoleApp
from console.tui.engine_process import ChildEngine
from console.tui.factory import make_app
from console.tui.task_panel import TaskPanel
from executors.task_key import TaskKey
from store import Store, TaskRecord

SIZE = (160, 50)
WAIT_SECONDS = 30.0


@dataclass
class Console:
    """One console under test, with its engine process (when it has one) and a store for assertions."""

    home: Path
    runtime: Runtime
    app: ConsoleApp
    engine: ChildEngine | None = None
    store: Store = field(init=False)

    def __post_init__(self) -> None:
        self.store = Store(self.runtime.config.store_path)

    # ---- the store ------------------------------------------------------------
    def submit(
        self, command: str, *, task_id: str | None = None, priority: int = 1, retries: int = 0
    ) -> TaskKey:
        """An ad-hoc task, submitted as ``execconsole submit`` would."""
        return actions.submit_command(
            self.store,
            ["sh", "-c", command],
            executor=self.runtime.default_executor,
            configured_executors=self.runtime.executor_names,
            task_id=task_id or "sh",
            priority=priority,
            retries=retries,
        )

    def record(self, key: TaskKey | str) -> TaskRecord:
        return self.store.resolve(key)

    def state(self, key: TaskKey | str) -> str:
        return str(self.record(key).state)

    # ---- the engine process --------------------------------------------------------
    def status(self) -> EngineStatus | None:
        """What the console's engine last reported (None before its first report or after it ended)."""
        engine = self.app.context.engine
        return engine.status() if engine is not None else None

    def parallelism(self, executor: str = "local") -> int | None:
        """The executor's parallelism as its engine (in its own process) reports it."""
        status = self.status()
        reported = status.executors.get(executor) if status is not None else None
        return reported.parallelism if reported is not None else None

    # ---- the screen --------------------------------------------------------------
    async def wait(
        self,
        pilot: Pilot[Any],
        condition: Callable[[], object],
        what: str,
        timeout: float = WAIT_SECONDS,
    ) -> Any:
        """Let the app run until ``condition()`` holds (bounded; never a timing assertion)."""
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if not self.app.is_running:
                raise AssertionError(f"the console closed before: {what}")
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout:g}s: {what}\n{self.status()}")
            await pilot.pause(0.05)

    async def wait_closed(self, pilot: Pilot[Any], timeout: float = WAIT_SECONDS) -> None:
        """Let the app run until it closes by itself (bounded)."""
        deadline = time.monotonic() + timeout
        while self.app.is_running:
            if time.monotonic() > deadline:
                raise AssertionError(f"the console did not close within {timeout:g}s")
            await pilot.pause(0.1)

    async def select(self, pilot: Pilot[Any], panel: TaskPanel, key: TaskKey) -> None:
        """Focus ``panel`` and put its cursor on ``key``'s row (waiting until it shows)."""
        await self.wait(
            pilot, lambda: self.row_of(panel, key) is not None, f"{key} shown in {panel.id}"
        )
        panel.table.focus()
        await pilot.pause()
        row = self.row_of(panel, key)
        assert row is not None
        panel.table.move_cursor(row=row)
        await pilot.pause()
        assert panel.selected is not None and panel.selected.key == key

    @staticmethod
    def row_of(panel: TaskPanel, key: TaskKey) -> int | None:
        for index, row_key in enumerate(panel.table.row_keys):
            task = panel.tasks.get(row_key)
            if task is not None and task.key == key:
                return index
        return None

    def run(self, scenario: Callable[[Pilot[Any]], Awaitable[None]]) -> None:
        """Run the app under Pilot for the scenario."""

        async def main() -> None:
            async with self.app.run_test(size=SIZE) as pilot:
                await pilot.pause()
                await scenario(pilot)

        asyncio.run(main())

    # ---- cleanup -------------------------------------------------------------------
    def close(self) -> None:
        """Stop the engine process (killing what runs) and close every connection."""
        engine = self.app.context.engine
        for running in {id(e): e for e in (self.engine, engine) if e is not None}.values():
            if isinstance(running, ChildEngine) and running.running:
                running.stop("kill")
        self.app.builder.close()
        self.app.operator.close()
        self.store.close()
        self.runtime.close()


def build_console(
    home: Path,
    *,
    executor: str = "local",
    parallelism: int = 2,
    hosted: bool = True,
    read_only: bool = False,
    attached_to: dict[str, Any] | None = None,
    paused: bool = False,
) -> Console:
    """A console on ``home``'s store; hosted: with its own engine process started and ready."""
    runtime = Runtime.load(home=home, executor=executor, parallelism=parallelism)
    if not hosted:
        app = make_app(runtime, attached_to=attached_to, read_only=read_only)
        return Console(home, runtime, app)
    if paused:
        with Store(runtime.config.store_path) as store:
            store.commit(_paused_setting())
    engine = ChildEngine.spawn(runtime, hold=True)  # as launch() does: the app releases it
    engine.wait_ready()
    app = make_app(runtime, engine=engine, read_only=read_only)
    return Console(home, runtime, app, engine)


def _paused_setting() -> Any:
    from store import Batch

    batch = Batch()
    batch.set_setting("paused", True)
    return batch


def no_process_left(home: Path, timeout: float = WAIT_SECONDS) -> list[tuple[int, list[str]]]:
    """Processes of ``home`` still alive after waiting (bounded) for them all to end.

    An engine's forkserver and resource tracker end a moment after it does.
    """
    deadline = time.monotonic() + timeout
    while (left := processes_of(home)) and time.monotonic() < deadline:
        time.sleep(0.1)
    found = []
    for process in left:
        try:
            found.append((process.pid, process.cmdline()))
        except psutil.Error:
            continue
    return found


def processes_of(home: Path) -> list[psutil.Process]:
    """Live processes started for this EXECCONSOLE_HOME (they inherit it in their environment)."""
    found = []
    for process in psutil.process_iter(["pid"]):
        if process.pid == os.getpid():
            continue
        try:
            if process.environ().get("EXECCONSOLE_HOME") == str(home):
                if process.status() != psutil.STATUS_ZOMBIE:
                    found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found
