"""The console's Celery tab: workers online, queue lengths, and whether Redis answers.

Imported only by the console when it builds the tab (it needs Textual). The
data comes from the executor's ClusterInspector, which polls the cluster in
its own thread; ``refresh_panel`` only reads that cached snapshot, so the UI
thread never waits on a broadcast. Rows are updated in place by key.

Each queue shows how many workers consume it; one with messages waiting and
no consumer is marked (as ``execconsole celery inspect`` marks it) and named
in the Queues heading: that is why tries sit in queued.

The executor's key bindings (grow/shrink a pool, stop/resume a queue) act on
what is highlighted here: highlighting a row tells the inspector.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from executors.celery.cluster import NO_CONSUMER, ClusterSnapshot, QueueRow, WorkerRow

WORKER_COLUMNS = ("worker", "pool", "active", "processed", "seen", "queues")
QUEUE_COLUMNS = ("queue", "waiting", "consumers", "paused on")


def build_panel(executor: Any, console_context: Any = None) -> CeleryPanel:
    """ConsolePanel target: the Celery tab for ``executor``."""
    return CeleryPanel(executor)


class CeleryPanel(Vertical):
    """Workers, queues and broker state of one celery executor."""

    DEFAULT_CSS = """
    CeleryPanel { height: 1fr; }
    CeleryPanel #celery-broker { height: 1; padding: 0 1; background: $success-muted; }
    CeleryPanel #celery-broker.down { background: $error; color: $text; text-style: bold; }
    CeleryPanel DataTable { height: auto; max-height: 1fr; }
    CeleryPanel .celery-heading { height: 1; padding: 0 1; color: $text-muted; }
    CeleryPanel #celery-queues-heading.stranded { color: $text-error; text-style: bold; }
    """

    def __init__(self, executor: Any, *, id: str | None = "celery-panel") -> None:
        super().__init__(id=id)
        self.executor = executor
        self.last_snapshot: ClusterSnapshot | None = None

    def compose(self) -> ComposeResult:
        yield Static("broker: asking…", id="celery-broker")
        yield Static("Workers", classes="celery-heading")
        yield DataTable(id="celery-workers", cursor_type="row", zebra_stripes=True)
        yield Static("Queues", id="celery-queues-heading", classes="celery-heading")
        yield DataTable(id="celery-queues", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        workers = self.query_one("#celery-workers", DataTable)
        for column in WORKER_COLUMNS:
            workers.add_column(column, key=column)
        queues = self.query_one("#celery-queues", DataTable)
        for column in QUEUE_COLUMNS:
            queues.add_column(column, key=column)
        self.refresh_panel(None)

    def refresh_panel(self, snapshot: Any) -> None:
        """Show the executor's latest cluster snapshot (the console's own snapshot is not needed)."""
        cluster = self.executor.cluster_snapshot()
        self.last_snapshot = cluster
        with self.app.batch_update():
            self._show_broker(cluster)
            self._sync_rows(
                self.query_one("#celery-workers", DataTable),
                {row.hostname: _worker_cells(row) for row in cluster.workers},
            )
            self._sync_rows(
                self.query_one("#celery-queues", DataTable),
                {row.name: _queue_cells(row) for row in cluster.queues},
            )
            self._show_stranded(cluster)

    def _show_broker(self, cluster: ClusterSnapshot) -> None:
        banner = self.query_one("#celery-broker", Static)
        problems = [m for m in (getattr(self.executor, "broker_message", ""), cluster.message) if m]
        down = not getattr(self.executor, "broker_ok", True) or not cluster.reachable
        if down:
            banner.update(f"broker DOWN — {problems[0] if problems else 'Redis does not answer'}")
        elif cluster.polled_at is None:
            banner.update("broker: asking the workers…")
        else:
            banner.update(f"broker up — {len(cluster.workers)} worker(s) online")
        banner.set_class(down, "down")

    def _show_stranded(self, cluster: ClusterSnapshot) -> None:
        """Name the unconsumed queues in the heading too: seen even when the table is scrolled."""
        heading = self.query_one("#celery-queues-heading", Static)
        stranded = [row for row in cluster.queues if row.unconsumed]
        text = "Queues"
        if stranded:
            names = [row.name for row in stranded]
            what = NO_CONSUMER if len(names) == 1 else "no worker consumes them"
            text += f" — messages wait in {', '.join(names)}: {what}"
            # A queue paused from here needs resuming (u), not another worker.
            unpaused = [row.name for row in stranded if not row.paused_on]
            if unpaused:
                text += f"; start a worker with --queues {','.join(unpaused)}"
        heading.update(text)
        heading.set_class(bool(stranded), "stranded")

    @staticmethod
    def _sync_rows(table: DataTable[Any], rows: dict[str, tuple[str | Text, ...]]) -> None:
        columns = list(table.columns)
        current = {row_key.value for row_key in table.rows if row_key.value is not None}
        for key in current - rows.keys():
            table.remove_row(key)
        for key, cells in rows.items():
            if key not in current:
                table.add_row(*cells, key=key)
                continue
            for column, value in zip(columns, cells, strict=True):
                if table.get_cell(key, column) != value:
                    table.update_cell(key, column, value)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        name = event.row_key.value if event.row_key is not None else None
        if event.data_table.id == "celery-workers":
            self.executor.cluster.selected_worker = name
        elif event.data_table.id == "celery-queues":
            self.executor.cluster.selected_queue = name


def _worker_cells(row: WorkerRow) -> tuple[str, ...]:
    return (
        row.hostname,
        _count(row.pool),
        _count(row.active),
        _count(row.processed),
        f"{row.seen_ago:.0f}s ago",
        ", ".join(row.queues),
    )


def _queue_cells(row: QueueRow) -> tuple[str | Text, ...]:
    consumers: str | Text = str(len(row.consumers))
    if row.unconsumed:
        consumers = Text(f"0 — {NO_CONSUMER}", style="bold red")
    return (row.name, _count(row.waiting), consumers, ", ".join(row.paused_on))


def _count(value: int | None) -> str:
    return "?" if value is None else str(value)
