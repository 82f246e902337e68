"""The header: who hosts the engine, executors and their slots, counts, throughput."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Sparkline, Static

from console.snapshot import ExecutorView, HeaderView
from console.tui.palette import Palette

# The counts line, in the order an operator reads a run.
COUNTED = (
    ("scheduled", "waiting"),
    ("queued", "handed out"),
    ("running", "running"),
    ("success", "succeeded"),
    ("failed", "failed"),
    ("up_for_retry", "retrying"),
    ("upstream_failed", "upstream failed"),
)


def _rate(per_second: float) -> str:
    """Finished tries per second, or per minute when fewer than one a second."""
    if per_second >= 1 or per_second == 0:
        return f"{per_second:.1f}/s"
    return f"{per_second * 60:.1f}/min"


def executor_line(view: ExecutorView, palette: Palette) -> Text:
    """``local (LocalExecutor) · parallelism 4 · 2 open · 2 running`` (+ warning)."""
    text = Text()
    text.append(view.name, style=palette.style("accent", bold=True))
    text.append(f" ({view.class_name})", style=palette.style("foreground-muted"))
    if view.parallelism is None:
        text.append(" · parallelism ?")
    elif view.parallelism == 0:
        text.append(" · parallelism unlimited")
    else:
        text.append(f" · parallelism {view.parallelism}")
        if view.open_slots is not None:
            text.append(
                f" · {view.open_slots} open",
                style=palette.style("success" if view.open_slots else "foreground-muted"),
            )
    text.append(f" · {view.running} running")
    if view.backlog:
        text.append(f" · {view.backlog} handed out")
    if view.warning:
        text.append(f"  ⚠ {view.warning}", style=palette.style("warning", bold=True))
    return text


class HeaderBar(Horizontal):
    """Four lines at the top of the dashboard."""

    def compose(self) -> ComposeResult:
        with Vertical(id="header-left"):
            yield Static(id="header-mode")
            yield Static(id="header-executors")
            yield Static(id="header-counts")
            yield Static(id="header-message")
        with Vertical(id="header-right"):
            yield Static(id="header-throughput")
            yield Sparkline([], id="header-sparkline")

    def show(
        self,
        header: HeaderView,
        palette: Palette,
        *,
        frozen: bool,
        read_only: bool,
        engine_error: str | None = None,
        filter_text: str | None = None,
    ) -> None:
        self.query_one("#header-mode", Static).update(
            self._mode_line(header, palette, frozen, read_only, engine_error, filter_text)
        )
        executors = Text("\n").join(executor_line(view, palette) for view in header.executors[:2])
        if len(header.executors) > 2:
            executors.append(f"  (+{len(header.executors) - 2} more executors)")
        self.query_one("#header-executors", Static).update(executors)
        counts = Text()
        for state, label in COUNTED:
            value = header.counts.get(state, 0)
            if counts:
                counts.append(" · ", style=palette.style("foreground-muted"))
            style = (
                palette.state(state, bold=bool(value))
                if value
                else palette.style("foreground-muted")
            )
            counts.append(f"{value:,} {label}", style=style)
        self.query_one("#header-counts", Static).update(counts)
        message = f"engine: {header.last_message}" if header.last_message else ""
        self.query_one("#header-message", Static).update(palette.muted(message[:200]))
        self.query_one("#header-throughput", Static).update(
            Text.assemble(
                ("throughput ", palette.style("foreground-muted")),
                (_rate(header.throughput_now), palette.style("accent", bold=True)),
                (" · last 5 min", palette.style("foreground-muted")),
            )
        )
        self.query_one("#header-sparkline", Sparkline).data = list(header.throughput)

    @staticmethod
    def _mode_line(
        header: HeaderView,
        palette: Palette,
        frozen: bool,
        read_only: bool,
        engine_error: str | None,
        filter_text: str | None,
    ) -> Text:
        text = Text()
        text.append("execconsole", style=palette.style("primary", bold=True))
        if header.mode == "attached":
            text.append(
                f" · ATTACHED to the engine {header.owner}",
                style=palette.style("warning", bold=True),
            )
            text.append(" · keys send requests to it", style=palette.style("foreground-muted"))
        elif header.mode == "hosted":
            text.append(" · hosting the engine", style=palette.style("foreground-muted"))
        else:
            text.append(
                " · WATCHING: no engine owns this store", style=palette.style("warning", bold=True)
            )
        badges = []
        if engine_error:
            badges.append((f"ENGINE STOPPED: {engine_error}", "error"))
        if header.paused:
            badges.append(("PAUSED", "warning"))
        if header.draining:
            badges.append(("DRAINING", "warning"))
        if frozen:
            badges.append(("FROZEN (space)", "accent"))
        if read_only:
            badges.append(("READ-ONLY", "secondary"))
        if filter_text:
            badges.append((f"filter /{filter_text}/", "accent"))
        for label, variable in badges:
            text.append("  ")
            text.append(f" {label} ", style=palette.style(variable, bold=True, reverse=True))
        return text
