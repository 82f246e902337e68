"""The console's Celery tab through Pilot: workers, queues, broker state and the vended keys."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.widgets import DataTable, Static

from executors.celery.cluster import NO_CONSUMER, QueueRow
from executors.celery.executor import CeleryExecutor
from executors.celery.panel import CeleryPanel, build_panel
from tests.celery.conftest import DEADLINE, TEST_SETTINGS, Cluster, Driver, free_port
from tests.helpers import REPO

pytestmark = pytest.mark.celery


class PanelHost(App[None]):
    """The smallest console: the executor's panel, with its key bindings wired as the console does."""

    def __init__(self, executor: CeleryExecutor) -> None:
        super().__init__()
        self.executor = executor
        self.messages: list[str] = []
        self._actions = {binding.key: binding for binding in executor.key_bindings()}
        for binding in executor.key_bindings():
            self.bind(
                binding.key, f"executor_key('{binding.key}')", description=binding.description
            )

    def compose(self) -> ComposeResult:
        panel = CeleryExecutor.console_panels()[0]
        assert panel.load() is build_panel
        yield panel.load()(self.executor, None)

    def action_executor_key(self, key: str) -> None:
        message = self._actions[key].action(self.executor, None)
        if message:
            self.messages.append(message)


async def settle(
    app: PanelHost, pilot: Any, condition: Callable[[], bool], what: str, timeout: float = DEADLINE
) -> None:
    """Refresh the panel (as the console's poll does) until ``condition`` holds."""
    panel = app.query_one(CeleryPanel)
    deadline = time.monotonic() + timeout
    while True:
        panel.refresh_panel(None)
        await pilot.pause()
        if condition():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {timeout}s")
        await asyncio.sleep(0.1)


def worker_cell(app: PanelHost, hostname: str, column: str) -> str:
    return str(app.query_one("#celery-workers", DataTable).get_cell(hostname, column))


def test_the_panel_shows_workers_and_its_keys_grow_shrink_and_pause(cluster: Cluster) -> None:
    executor = cluster.executor()
    app = PanelHost(executor)

    async def scenario() -> None:
        async with app.run_test(size=(120, 30)) as pilot:
            workers = app.query_one("#celery-workers", DataTable)
            await settle(app, pilot, lambda: workers.row_count >= 2, "both workers to show")
            assert worker_cell(app, "alpha@test", "pool") == "2"
            queues = app.query_one("#celery-queues", DataTable)
            assert {"default", "alpha", "beta"} <= {k.value for k in queues.rows}
            banner = str(app.query_one("#celery-broker", Static).render())
            assert "broker up" in banner

            # Highlighting a row is what the executor's keys act on.
            workers.focus()
            workers.move_cursor(row=workers.get_row_index("beta@test"))
            await pilot.pause()
            assert executor.cluster.selected_worker == "beta@test"
            workers.move_cursor(row=workers.get_row_index("alpha@test"))
            await pilot.pause()
            assert executor.cluster.selected_worker == "alpha@test"
            await pilot.press("g")
            await settle(
                app,
                pilot,
                lambda: worker_cell(app, "alpha@test", "pool") == "3",
                "alpha's pool to grow",
            )
            await pilot.press("h")
            await settle(
                app,
                pilot,
                lambda: worker_cell(app, "alpha@test", "pool") == "2",
                "alpha's pool to shrink",
            )

            queues.focus()
            queues.move_cursor(row=queues.get_row_index("beta"))
            queues.move_cursor(row=queues.get_row_index("alpha"))
            await pilot.pause()
            assert executor.cluster.selected_queue == "alpha"
            await pilot.press("x")
            await settle(
                app,
                pilot,
                lambda: "alpha" not in worker_cell(app, "alpha@test", "queues").split(", "),
                "alpha@test to stop consuming queue alpha",
            )
            assert str(queues.get_cell("alpha", "paused on")) == "alpha@test"
            await pilot.press("u")
            await settle(
                app,
                pilot,
                lambda: "alpha" in worker_cell(app, "alpha@test", "queues").split(", "),
                "alpha@test to consume queue alpha again",
            )

    asyncio.run(scenario())


def queue_cell(app: PanelHost, name: str, column: str) -> str:
    return str(app.query_one("#celery-queues", DataTable).get_cell(name, column))


def queue_row(app: PanelHost, name: str) -> QueueRow | None:
    """The queue as the panel last got it from the executor (the panel's data)."""
    snapshot = app.query_one(CeleryPanel).last_snapshot
    rows = [row for row in snapshot.queues if row.name == name] if snapshot else []
    return rows[0] if rows else None


def test_the_panel_marks_a_queue_with_messages_no_worker_consumes(
    private_cluster: Cluster,
) -> None:
    """Tries stuck in queued because nobody consumes their queue: marked, until a worker does.

    As in the console, the panel's executor is not the engine's: it is built
    and never started, so it learns of the queue only from the engine's record in Redis.
    """
    engine_side = private_cluster.executor()
    console_side = CeleryExecutor(0, options=private_cluster.options)
    private_cluster.executors.append(console_side)  # ended with the cluster
    # A queue named in the record with nothing waiting is history: not listed.
    private_cluster.redis.client().sadd(engine_side.keys.queues, "long-gone")
    waiting = [private_cluster.workload("true", queue="orphan") for _ in range(2)]
    for workload in waiting:
        engine_side.queue_workload(workload)
    driver = Driver(engine_side)
    driver.until(
        lambda: engine_side.gauges()["executor.celery.unsent_tasks"] == 0, "both tries to be sent"
    )
    app = PanelHost(console_side)

    async def scenario() -> None:
        async with app.run_test(size=(120, 30)) as pilot:
            queues = app.query_one("#celery-queues", DataTable)
            heading = app.query_one("#celery-queues-heading", Static)
            await settle(
                app,
                pilot,
                lambda: "orphan" in {k.value for k in queues.rows},
                "queue orphan to show",
            )
            row = queue_row(app, "orphan")
            assert row is not None and row.unconsumed and row.waiting == 2
            assert queue_cell(app, "orphan", "waiting") == "2"
            assert queue_cell(app, "orphan", "consumers") == f"0 — {NO_CONSUMER}"
            assert "orphan" in str(heading.render()) and NO_CONSUMER in str(heading.render())
            assert heading.has_class("stranded")
            # Empty and unconsumed is not stuck work: counted, not marked.
            assert queue_cell(app, "default", "consumers") == "0"
            assert "long-gone" not in {k.value for k in queues.rows}

            private_cluster.start_worker("rescuer", queues="orphan", concurrency=1)

            def rescued() -> bool:
                # The worker may empty the queue before it answers a poll: the
                # row is then briefly left out (recorded, empty, unconsumed).
                row = queue_row(app, "orphan")
                return row is not None and bool(row.consumers) and row.waiting == 0

            await settle(app, pilot, rescued, "rescuer@test to consume queue orphan and empty it")
            assert queue_cell(app, "orphan", "consumers") == "1"
            assert queue_cell(app, "orphan", "waiting") == "0"
            assert not heading.has_class("stranded")
            assert str(heading.render()) == "Queues"

    asyncio.run(scenario())
    driver.until_finished(*(workload.key for workload in waiting))


def test_the_keys_ask_for_a_selection_instead_of_guessing(cluster: Cluster) -> None:
    executor = cluster.executor()
    actions = {binding.key: binding.action for binding in executor.key_bindings()}
    assert actions["g"](executor, None) == "select a worker in the Celery tab first"
    assert actions["h"](executor, None) == "select a worker in the Celery tab first"
    assert actions["x"](executor, None) == "select a queue in the Celery tab first"
    assert actions["u"](executor, None) == "select a queue in the Celery tab first"


def test_the_panel_says_when_the_broker_is_down(private_cluster: Cluster) -> None:
    executor = private_cluster.executor()
    app = PanelHost(executor)

    async def scenario() -> None:
        async with app.run_test(size=(120, 30)) as pilot:
            banner = app.query_one("#celery-broker", Static)
            await settle(
                app, pilot, lambda: "broker up" in str(banner.render()), "the broker to be up"
            )
            private_cluster.redis.stop()
            executor.heartbeat()  # the engine keeps beating; the executor notices
            await settle(
                app, pilot, lambda: "broker DOWN" in str(banner.render()), "the down banner"
            )
            assert private_cluster.redis.url in str(banner.render())
            assert banner.has_class("down")

    asyncio.run(scenario())


def test_importing_the_executor_does_not_import_textual() -> None:
    probe = "import sys, executors.celery.executor; print('textual' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "False", result.stderr


def test_the_panel_works_from_an_executor_that_was_never_started(cluster: Cluster) -> None:
    """The console builds executors only to vend panels; the engine runs elsewhere."""
    executor = CeleryExecutor(0, options=cluster.options)  # no start(), as in the console
    app = PanelHost(executor)

    async def scenario() -> None:
        async with app.run_test(size=(120, 30)) as pilot:
            workers = app.query_one("#celery-workers", DataTable)
            await settle(app, pilot, lambda: workers.row_count >= 2, "both workers to show")
            assert worker_cell(app, "alpha@test", "pool") == "2"
            assert "broker up" in str(app.query_one("#celery-broker", Static).render())

    try:
        asyncio.run(scenario())
    finally:
        executor.end(timeout=0)


def test_an_unstarted_executors_panel_says_redis_is_down_instead_of_raising() -> None:
    nobody = f"redis://127.0.0.1:{free_port()}/0"
    executor = CeleryExecutor(0, options={**TEST_SETTINGS, "broker_url": nobody})
    app = PanelHost(executor)

    async def scenario() -> None:
        async with app.run_test(size=(120, 30)) as pilot:
            banner = app.query_one("#celery-broker", Static)
            await settle(
                app, pilot, lambda: "broker DOWN" in str(banner.render()), "the down banner"
            )
            assert "Connection refused" in str(banner.render())
            assert banner.has_class("down")

    try:
        asyncio.run(scenario())
    finally:
        executor.end(timeout=0)
