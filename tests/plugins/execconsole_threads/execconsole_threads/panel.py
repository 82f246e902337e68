"""The "Thread pool" console tab: how many threads there are, how busy, how much done.

The only module of this package that imports Textual; the console imports it
when it builds the tab, never before.
"""

from __future__ import annotations

from typing import Any

from textual.widgets import Static

from execconsole_threads.executor import ThreadPoolTaskExecutor


class ThreadPoolPanel(Static):
    """Pool figures, redrawn on each console poll."""

    DEFAULT_CSS = """
    ThreadPoolPanel {
        padding: 1 2;
    }
    """

    def __init__(self, executor: ThreadPoolTaskExecutor) -> None:
        super().__init__()
        self.executor = executor

    def on_mount(self) -> None:
        self.refresh_panel(None)

    def refresh_panel(self, snapshot: Any) -> None:
        """Redraw from the executor (the console's snapshot carries nothing pool-specific)."""
        stats = self.executor.pool_stats()
        limit = "none" if stats.limit == 0 else str(stats.limit)
        self.update(
            f"Threads  {stats.threads} started, {stats.busy} busy, {stats.idle} idle\n"
            f"Limit    {limit}\n"
            f"Done     {stats.tasks_done} tasks"
        )


def build_panel(executor: ThreadPoolTaskExecutor, console_context: Any) -> ThreadPoolPanel:
    """The panel factory named by ``ConsolePanel.target``."""
    return ThreadPoolPanel(executor)
