"""The header: whose engine runs the store, executors and their slots, counts, throughput."""

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


def finishing_text(per_second: float) -> str:
    """``finishing 312/s``: tries ending now, whether or not they were ever seen running."""
    rate = f"{per_second:.0f}/s" if per_second >= 10 else _rate(per_second)
    return f"finishing {rate}"


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
    if view.finishing > 0:
        # Tries shorter than a tick are reported once, at their end: a busy run of
        # them shows 0 running, and this says what is going on.
        text.append(f" · {finishing_text(view.finishing)}", style=palette.state("success"))
    if view.backlog:
        text.append(f" · {view.backlog} handed out")
    if view.warning:
        text.append(f"  ⚠ {view.warning}", style=palette.style("warning", bold=True))
    return text


class HeaderBar(Horizontal):
    """Four lines at the top of the dashboard."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.mode_line = Static(id="header-mode")
        self.executors_line = Static(id="header-executors")
        self.counts_line = Static(id="header-counts")
        self.message_line = Static(id="header-message")
        self.throughput_line = Static(id="header-throughput")
        self.sparkline = Sparkline([], id="header-sparkline")
        self._shown: dict[str, Text] = {}

    def _update(self, line: Static, content: Text) -> None:
        # Only when the text changed; and the screen is laid out again only when
        # the line count did (the counts change on every refresh of a busy run,
        # and a layout redraws far more than one line).
        key = line.id or ""
        shown = self._shown.get(key)
        if shown != content:
            content.no_wrap = True
            content.overflow = "ellipsis"
            self._shown[key] = content
            lines = content.plain.count("\n")
            line.update(content, layout=shown is None or shown.plain.count("\n") != lines)

    def compose(self) -> ComposeResult:
        with Vertical(id="header-left"):
            yield self.mode_line
            yield self.executors_line
            yield self.counts_line
            yield self.message_line
        with Vertical(id="header-right"):
            yield self.throughput_line
            yield self.sparkline

    def show(
        self,
        header: HeaderView,
        palette: Palette,
        *,
        frozen: bool,
        read_only: bool,
        engine_error: str | None = None,
        filter_text: str | None = None,
        zoomed: bool = False,
    ) -> None:
        self._update(
            self.mode_line,
            self._mode_line(header, palette, frozen, read_only, engine_error, filter_text, zoomed),
        )
        executors = Text("\n").join(executor_line(view, palette) for view in header.executors[:2])
        if len(header.executors) > 2:
            executors.append(f"  (+{len(header.executors) - 2} more executors)")
        self._update(self.executors_line, executors)
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
            if state == "running" and not value and header.finishing > 0:
                # Nothing seen running, yet tries end: they are too short to be seen.
                counts.append(
                    f" ({finishing_text(header.finishing)})", style=palette.state("success")
                )
        self._update(self.counts_line, counts)
        message = f"engine: {header.last_message}" if header.last_message else ""
        self._update(self.message_line, palette.muted(message[:200]))
        self._update(
            self.throughput_line,
            Text.assemble(
                ("throughput ", palette.style("foreground-muted")),
                (_rate(header.throughput_now), palette.style("accent", bold=True)),
                (" · last 5 min", palette.style("foreground-muted")),
            ),
        )
        if list(header.throughput) != self.sparkline.data:
            self.sparkline.data = list(header.throughput)

    @staticmethod
    def _mode_line(
        header: HeaderView,
        palette: Palette,
        frozen: bool,
        read_only: bool,
        engine_error: str | None,
        filter_text: str | None,
        zoomed: bool = False,
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
            # The console's own engine: a child process it started and will stop.
            who = f"engine {header.owner}" if header.owner else "engine"
            text.append(
                f" · {who}, started by this console", style=palette.style("foreground-muted")
            )
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
        if zoomed:
            badges.append(("ZOOMED (z or esc)", "accent"))
        for label, variable in badges:
            text.append("  ")
            text.append(f" {label} ", style=palette.style(variable, bold=True, reverse=True))
        return text
