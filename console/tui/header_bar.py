"""The header: whose engine runs the store, executors and their slots, counts, throughput."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Sparkline, Static

from console.snapshot import ExecutorView, HeaderView
from console.tui import formatting as fmt
from console.tui.palette import Palette

# The counts line, in the order an operator reads a run: (state, label, short label).
# The labels are the states' own names, as `execconsole tasks list --state` takes
# them, so a figure here is the count that command lists. Each state counts tasks
# by their latest try, so the figures add up to the number of tasks; up_for_retry
# counts the tries a later try superseded, the engine's retries and operators'
# alike: history, not pending work (see HeaderView.counts), said in full where
# there is room. An up_for_retry try always has a later try in the store.
COUNTED = (
    ("scheduled", "scheduled", "scheduled"),
    ("queued", "queued", "queued"),
    ("running", "running", "running"),
    ("success", "success", "success"),
    ("failed", "failed", "failed"),
    ("up_for_retry", "up_for_retry (retried)", "up_for_retry"),
    ("upstream_failed", "upstream_failed", "upstream_failed"),
)
# When even short words do not fit: what matters most first, so that what is cut
# at the end is the waiting count and history, never a failure.
BY_IMPORTANCE = (
    "failed",
    "upstream_failed",
    "running",
    "queued",
    "scheduled",
    "success",
    "up_for_retry",
)
# Superseded tries: counted in a muted colour, never in the colour of pending work.
HISTORY_STATES = frozenset({"up_for_retry"})
EMPTY_STORE_HINT = "nothing here yet: press n for a task or o to load a workflow"
EMPTY_STORE_HINT_READ_ONLY = (
    "nothing here yet: `execconsole submit` or `execconsole run` adds tasks"
)


# Both rates the header shows are tries finished per second, each labelled with the
# span it is counted over: the units never change, so two figures read side by side
# (and a figure read a minute later) compare at a glance.
RECENT_SPAN = "5s"  # the executor line's rate: snapshot.FINISHING_SECONDS
MINUTE_SPAN = "1m"  # the throughput figure: HeaderView.throughput_now
CHART_SPAN = "5m"  # the sparkline: THROUGHPUT_BUCKETS of THROUGHPUT_BUCKET_SECONDS


def per_second(rate: float) -> str:
    """Tries a second, always per second: ``312/s``, ``2.5/s``, ``0.017/s`` (one a minute), ``0/s``."""
    if rate == 0:
        return "0/s"
    if rate >= 10:
        return f"{rate:,.0f}/s"
    if rate >= 1:
        return f"{rate:.1f}/s"
    return f"{rate:.2g}/s"


def finishing_text(rate: float) -> str:
    """``finished 312/s over 5s``: tries ending now, whether or not they were ever seen running."""
    return f"finished {per_second(rate)} over {RECENT_SPAN}"


def executor_line(view: ExecutorView, palette: Palette, *, short: bool = False) -> Text:
    """``local (LocalExecutor) · parallelism 4 · 2 open · 2 running · 1 queued`` (+ warning).

    Open slots are the executor's own count; running and queued are the
    store's, read with the counts line, so the same word has the same figure
    on both lines. ``short``: without the executor's class (a narrow terminal).
    """
    text = Text()
    text.append(view.name, style=palette.style("accent", bold=True))
    if not short:
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
        text.append(f" · {view.backlog} queued")
    if view.warning:
        text.append(f"  ⚠ {view.warning}", style=palette.style("warning", bold=True))
    return text


def counts_text(
    counts: Mapping[str, int],
    finishing: float,
    palette: Palette,
    *,
    level: int = 0,
    keep: int | None = None,
) -> Text:
    """The counts line at one level of brevity.

    0: every state, in words; 1: only states with tries (running always); 2: the
    same in short words; 3: the same, failures first (BY_IMPORTANCE), and only
    the first ``keep`` of them (then ``…``). A narrow header takes the first
    level that fits.
    """
    text = Text()
    order: tuple[tuple[str, str, str], ...] = COUNTED
    if level >= 3:
        rank = {state: BY_IMPORTANCE.index(state) for state, _, _ in COUNTED}
        order = tuple(sorted(COUNTED, key=lambda entry: rank[entry[0]]))
    shown = 0
    for state, label, short in order:
        value = counts.get(state, 0)
        if level >= 1 and not value and state != "running":
            continue
        if keep is not None and shown >= keep:
            text.append(" · …", style=palette.style("foreground-muted"))
            break
        shown += 1
        if text:
            text.append(" · ", style=palette.style("foreground-muted"))
        if not value or state in HISTORY_STATES:
            style = palette.style("foreground-muted")
        else:
            style = palette.state(state, bold=True)
        text.append(f"{value:,} {short if level >= 2 else label}", style=style)
        if state == "running" and not value and finishing > 0:
            # Nothing seen running, yet tries end: they are too short to be seen.
            text.append(f" ({finishing_text(finishing)})", style=palette.state("success"))
    return text


def counts_candidates(counts: Mapping[str, int], finishing: float, palette: Palette) -> list[Text]:
    """The counts line from longest to shortest, for ``fitting``."""
    candidates = [counts_text(counts, finishing, palette, level=level) for level in (0, 1, 2)]
    shown = sum(1 for state, _, _ in COUNTED if counts.get(state, 0) or state == "running")
    candidates += [
        counts_text(counts, finishing, palette, level=3, keep=keep) for keep in range(shown, 0, -1)
    ]
    return candidates


def fitting(width: int, candidates: Sequence[Text]) -> Text:
    """The first candidate that fits ``width`` cells (the last one otherwise; 0: the first)."""
    if width <= 0:
        return candidates[0]
    for candidate in candidates:
        if candidate.cell_len <= width:
            return candidate
    return candidates[-1]


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
        self._last: tuple[tuple[Any, ...], dict[str, Any]] | None = None

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

    def on_resize(self, _event: events.Resize) -> None:
        # What fits changed: the same header, drawn for the new width (once laid out).
        self.call_after_refresh(self._show_again)

    def _show_again(self) -> None:
        if self._last is not None and self.is_attached:
            args, kwargs = self._last
            self.show(*args, **kwargs)

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
        """Draw the header; each line is one line, shortened to fit the header's width."""
        self._last = (
            (header, palette),
            {
                "frozen": frozen,
                "read_only": read_only,
                "engine_error": engine_error,
                "filter_text": filter_text,
                "zoomed": zoomed,
            },
        )
        width = self.mode_line.size.width
        badges = self._badges(header, frozen, read_only, engine_error, filter_text, zoomed)
        self._update(
            self.mode_line,
            fitting(
                width,
                [
                    self._mode_line(header, palette, read_only, badges),
                    self._mode_line(header, palette, read_only, badges, short=True),
                    # The badges without their details ("ENGINE STOPPED": the
                    # notice and the restart offer say why).
                    self._mode_line(
                        header,
                        palette,
                        read_only,
                        [
                            ("ENGINE STOPPED" if label.startswith("ENGINE STOPPED") else label, v)
                            for label, v in badges
                        ],
                        short=True,
                    ),
                ],
            ),
        )
        executors = header.executors[:2]
        more = len(header.executors) - len(executors)

        def executor_lines(short: bool) -> Text:
            text = Text("\n").join(executor_line(view, palette, short=short) for view in executors)
            if more > 0:
                text.append(f"  (+{more} more executors)")
            return text

        full = executor_lines(False)
        fits = width <= 0 or all(len(line) <= width for line in full.plain.split("\n"))
        self._update(self.executors_line, full if fits else executor_lines(True))
        self._update(
            self.counts_line,
            fitting(width, counts_candidates(header.counts, header.finishing, palette)),
        )
        if not any(header.counts.values()):
            # An empty store: say what to do first.
            message = palette.muted(EMPTY_STORE_HINT_READ_ONLY if read_only else EMPTY_STORE_HINT)
        elif header.last_message:
            # Stamped: the newest note stays until another comes, and must not
            # read as the engine's state now ("dispatch resumed" an hour later).
            said = f" at {fmt.clock_time(header.last_message_at)}" if header.last_message_at else ""
            message = palette.muted(f"engine{said}: {header.last_message}"[:200])
        else:
            message = palette.muted("")
        self._update(self.message_line, message)
        rate = (per_second(header.throughput_now), palette.style("accent", bold=True))
        muted = palette.style("foreground-muted")
        self._update(
            self.throughput_line,
            fitting(
                self.throughput_line.size.width,
                [
                    Text.assemble(
                        ("finished ", muted),
                        rate,
                        (f" over {MINUTE_SPAN} · chart {CHART_SPAN}", muted),
                    ),
                    Text.assemble(rate, (f" over {MINUTE_SPAN} · {CHART_SPAN}", muted)),
                    Text.assemble(rate, (f" over {MINUTE_SPAN}", muted)),
                    Text.assemble(rate),
                ],
            ),
        )
        if list(header.throughput) != self.sparkline.data:
            self.sparkline.data = list(header.throughput)

    @staticmethod
    def _badges(
        header: HeaderView,
        frozen: bool,
        read_only: bool,
        engine_error: str | None,
        filter_text: str | None,
        zoomed: bool,
    ) -> list[tuple[str, str]]:
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
        return badges

    @staticmethod
    def _mode_line(
        header: HeaderView,
        palette: Palette,
        read_only: bool,
        badges: Sequence[tuple[str, str]],
        *,
        short: bool = False,
    ) -> Text:
        """Whose engine this is, then the badges; ``short``: without the explanations."""
        text = Text()
        text.append("execconsole", style=palette.style("primary", bold=True))
        muted = palette.style("foreground-muted")
        if header.mode == "attached":
            text.append(
                f" · ATTACHED to {header.owner}"
                if short
                else f" · ATTACHED to the engine {header.owner}",
                style=palette.style("warning", bold=True),
            )
            if not short:
                if read_only:  # the READ-ONLY badge follows
                    text.append(" · keys that change something are off", style=muted)
                else:
                    text.append(" · keys send requests to it", style=muted)
        elif header.mode == "hosted":
            # The console's own engine: a child process it started and will stop.
            who = f"engine {header.owner}" if header.owner else "engine"
            text.append(f" · {who}" if short else f" · {who}, started by this console", style=muted)
        else:
            text.append(
                " · WATCHING" if short else " · WATCHING: no engine owns this store",
                style=palette.style("warning", bold=True),
            )
        for label, variable in badges:
            text.append("  ")
            text.append(f" {label} ", style=palette.style(variable, bold=True, reverse=True))
        return text
