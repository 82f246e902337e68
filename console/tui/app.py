"""ConsoleApp: polls snapshots off the UI thread, renders them, and carries out the keys.

The refresh follows Dolphie's pattern: a poll is a *fetch* on a worker thread
(``SnapshotBuilder.build``, plain data) and a *render* on the UI thread (rows
updated by key); the next poll is scheduled by a one-shot timer after the last
one finished, so a slow store never piles polls up or delays a key press.

Operator actions run on worker threads too, through ``OperatorActions`` (the
same functions as the headless commands); each posts ``ActionFinished`` with
its one-line outcome, shown as a notification.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget

from console.cli.output import plural
from console.snapshot import Snapshot, SnapshotBuilder, parse_time
from console.tui.confirm_screen import ConfirmScreen, RestartScreen
from console.tui.context import ConsoleContext, EngineLink
from console.tui.dashboard_screen import DashboardScreen, make_dashboard
from console.tui.formatting import task_label
from console.tui.help_screen import HelpScreen
from console.tui.keys import (
    KEYS,
    MUTATING_ACTIONS,
    MUTATING_TASK_ACTIONS,
    KeySpec,
    action_name,
)
from console.tui.messages import ActionFinished, EngineStopped, SnapshotFailed, SnapshotTaken
from console.tui.operator import MARKS, OperatorActions, RequestRejected, state_refusal
from console.tui.palette import Palette
from console.tui.quit_screen import DRAIN, QuitScreen
from console.tui.run_watch import RunWatch, finished_text
from console.tui.task_panel import TaskRef
from executors.vended import KeyBinding
from store.runs import RunSummary

log = logging.getLogger(__name__)

DEFAULT_REFRESH_INTERVAL = 0.5
LEASE_CHECK_SECONDS = 2.0  # how often a console without its own engine looks who owns the store
# In a busy run nearly every row on screen changes between two refreshes, so
# each refresh costs what a whole screen costs to build and draw; on a small
# machine that CPU is taken from the engine and its workers. While the
# console's refreshes cost more than this share of one core, they are spaced
# out (never beyond MAX_REFRESH_INTERVAL); keys are handled as they come
# either way, and a quiet console refreshes at the configured interval.
REFRESH_CPU_BUDGET = 0.08
MAX_REFRESH_INTERVAL = 1.0


def cancel_run_question(run: str, counts: Mapping[str, int]) -> tuple[str, str]:
    """The question C asks, and what it tells the operator will happen, from a run's counts.

    ``counts``: the run's tasks by the state of their latest try
    (``RunSummary.counts``). What happens is what the engine does with a
    cancel request (console/operator_requests.py): running tries are killed,
    tries not started are failed, the tasks after them end upstream_failed,
    and none of them is retried.
    """
    running = counts.get("running", 0)
    waiting = counts.get("scheduled", 0) + counts.get("queued", 0)
    total = sum(counts.values())
    question = f"Cancel run {run}: {plural(running + waiting, 'task')} of {total:,} still to run?"
    lines = []
    if running:
        their = "its" if running == 1 else "their"
        lines.append(f"{running:,} running: killed, with {their} whole process tree.")
    if waiting:
        they_wait = "it waits" if waiting == 1 else "they wait"
        lines.append(
            f"{waiting:,} not started: failed now, or upstream_failed once "
            f"what {they_wait} for has failed."
        )
    lines.append(
        "None is retried, whatever its retries; finished tasks keep their outcome. "
        "r on a task runs it again afterwards."
    )
    return question, "\n".join(lines)


@dataclass
class VendedKey:
    """A key an executor added (KeyBinding), with the executor it belongs to."""

    executor: str
    binding: KeyBinding
    clash: bool = False  # its key is one of the console's own: not bound


# The console's keys by the action they run (the hidden fallbacks' argument).
KEY_SPECS: Mapping[str, KeySpec] = {spec.action: spec for spec in KEYS}


def _binds(screen: Screen[Any], action: str) -> bool:
    """Whether ``screen`` has a key bound to ``action`` (its class's BINDINGS, inherited ones too)."""
    return any(
        isinstance(binding, Binding) and binding.action == action
        for cls in type(screen).__mro__
        for binding in vars(cls).get("BINDINGS", ())
    )


# A workflow file's problems shown at once in the o form; check lists the rest.
PROBLEMS_SHOWN = 8


def _problems_text(error: BaseException) -> str:
    """An error in one line, or a broken workflow file's problems one per line."""
    problems = getattr(error, "errors", None)
    if not isinstance(problems, list) or len(problems) < 2:
        return str(error)
    shown = [str(problem) for problem in problems[:PROBLEMS_SHOWN]]
    more = len(problems) - len(shown)
    if more:
        shown.append(f"(and {more} more: `execconsole check FILE` lists them all)")
    return "\n".join(shown)


def _selected_task(screen: Screen[Any]) -> TaskRef | None:
    """The try a task key on ``screen`` acts on: the dashboard's selected one, the detail's own."""
    if isinstance(screen, DashboardScreen):
        return screen.selected_task
    from console.tui.task_detail_screen import TaskDetailScreen

    if isinstance(screen, TaskDetailScreen):
        return screen.task_ref
    return None


class ConsoleApp(App[str | None]):
    """The operator console. Build it with ``console.tui.factory.make_app``.

    Its return value tells the launcher how to stop the console's own engine:
    "detach", "finish" or "kill" (None when it has none).
    """

    CSS_PATH = "console.tcss"
    TITLE = "execconsole"
    ENABLE_COMMAND_PALETTE = True
    # Under each key that changes something, a hidden one of the app's own: Textual
    # passes a key on to it when the screen's binding is hidden (read-only) or greyed
    # out (the selected try's state, an executor's capability), and it says why in
    # one line instead of nothing happening.
    BINDINGS = [
        Binding(spec.keys, f"unavailable({spec.action!r})", show=False)
        for spec in KEYS
        if spec.mutating
    ]

    def __init__(
        self,
        context: ConsoleContext,
        builder: SnapshotBuilder,
        operator: OperatorActions,
        *,
        polling: bool = True,
        refresh_interval: float = DEFAULT_REFRESH_INTERVAL,
        snapshot_hook: Callable[[Snapshot], Snapshot] | None = None,
    ) -> None:
        super().__init__()
        self.context = context
        self.builder = builder
        self.operator = operator
        self.polling = polling
        self.refresh_interval = min(refresh_interval, DEFAULT_REFRESH_INTERVAL)
        self.snapshot_hook = snapshot_hook
        self.snapshot: Snapshot | None = None
        self.frozen = False
        self.engine_error: str | None = None
        self.palette = Palette({})
        self.vended_keys = [
            VendedKey(name, binding)
            for name, executor in context.executors.items()
            for binding in executor.key_bindings()
        ]
        self.dashboard: DashboardScreen = make_dashboard(self.vended_keys)
        # The executors' keys get the same fallback as the console's own (BINDINGS above).
        for index, vended in enumerate(self.vended_keys):
            if not vended.clash:
                self.bind(vended.binding.key, f"vended_unavailable({index})", show=False)
        self._poll_running = False
        self._poll_again = False
        self._poll_timer: Timer | None = None
        self.poll_interval = self.refresh_interval  # what the next wait is (see _adapt_interval)
        self._cycle_began: tuple[float, float] | None = None  # (monotonic, process CPU) at a poll
        self._wanted_parallelism: dict[str, int] = {}
        self._wanted_paused: bool | None = None
        self.polls = 0
        # When the engine this console shows took the store (seconds since the epoch),
        # read on the poll thread: the Timeline fades an earlier engine's slots.
        self.engine_since: float | None = None
        self._engine_since_of: object | None = None  # the engine it was read for
        # Runs seen at work, looked up on the poll thread until they finish (said once each).
        self.run_watch = RunWatch(operator.run_summary)
        self.restarting = False
        self._stopped_engine: object | None = None  # the engine whose end was shown
        self._engine_released = False
        # Without an engine of its own: the store's lease owner, read by the poll
        # worker every LEASE_CHECK_SECONDS and handed to the UI thread here.
        self._lease_checked_at = 0.0
        self._lease_seen: tuple[Mapping[str, Any] | None] | None = None
        self.title = self._title()

    def _title(self) -> str:
        ctx = self.context
        if ctx.attached_to:
            owner = ctx.attached_to
            return f"execconsole · attached to the engine pid {owner.get('pid')} on {owner.get('hostname')}"
        if ctx.engine is not None:
            return f"execconsole · engine pid {ctx.engine.pid}, started by this console"
        return "execconsole · watching (no engine)"

    # ---- start -------------------------------------------------------------------
    def get_default_screen(self) -> Screen[Any]:
        return self.dashboard

    def on_mount(self) -> None:
        self.palette = Palette(self.theme_variables)
        if self.context.engine is not None:
            self._stop_with_the_terminal()
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        for vended in self.vended_keys:
            if vended.clash:
                self.notify(
                    f"executor {vended.executor}: key {vended.binding.key!r} is the console's own; "
                    f"{vended.binding.description!r} is only in the command palette",
                    severity="warning",
                )

    def _stop_with_the_terminal(self) -> None:
        """A closed terminal or a plain `kill` must not orphan the console's engine or its
        tasks: quit as if the operator chose to let running tries finish (bounded)."""
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, self.exit, "finish")

    def dashboard_ready(self) -> None:
        """The dashboard's widgets exist: start refreshing them."""
        self.builder.fit_rows(self.size.height)
        if self.polling:
            self._poll()
        else:
            # Deterministic (tests, screenshots): one snapshot, built on the UI thread.
            self.poll_now()

    def on_resize(self) -> None:
        self.builder.fit_rows(self.size.height)

    def _theme_changed(self, _theme: object) -> None:
        self.palette = Palette(self.theme_variables)
        self.dashboard.show_focused_panel()
        if self.snapshot is not None:
            self.dashboard.apply(self.snapshot)

    # ---- polling (Dolphie's pattern) --------------------------------------------------
    def _poll(self) -> None:
        self._poll_timer = None
        if self._poll_running:
            self._poll_again = True
            return
        self._poll_running = True
        self._adapt_interval()
        self.run_worker(self._fetch, thread=True, group="poll", exit_on_error=False)

    def _fetch(self) -> None:
        """Worker thread: build a snapshot (plain data) and hand it to the UI thread."""
        try:
            snapshot = self.builder.build()
            if self.snapshot_hook is not None:
                snapshot = self.snapshot_hook(snapshot)
            self._read_lease()
            self._read_engine_since()
        except Exception as error:
            log.exception("could not build a snapshot")
            self.post_message(SnapshotFailed(f"{type(error).__name__}: {error}"))
        else:
            self.post_message(SnapshotTaken(snapshot, self._finished_runs(snapshot)))

    def _read_engine_since(self) -> None:
        """Poll thread: when the engine shown took the store (its lease), once per engine.

        Attached, the lease was read already (``context.attached_to``); the
        console's own engine is looked up in the lease until it holds it.
        """
        ctx = self.context
        engine: object | None = ctx.engine if ctx.engine is not None else ctx.attached_to
        if engine is None:
            self.engine_since, self._engine_since_of = None, None
            return
        if engine is self._engine_since_of:
            return
        owner = ctx.attached_to
        if ctx.engine is not None:
            owner = self.builder.store.lease_owner()
            if owner is None or owner.get("pid") != ctx.engine.pid:
                return  # not holding it yet: looked up again next time
        self.engine_since = parse_time(str((owner or {}).get("acquired_at") or ""))
        self._engine_since_of = engine

    def _finished_runs(self, snapshot: Snapshot) -> list[RunSummary]:
        """The runs this console saw at work that have finished since (read from the store)."""
        try:
            return self.run_watch.finished(snapshot)
        except Exception:  # never worth a refresh: said next time, or in the Events panel
            log.exception("could not look up the runs shown")
            return []

    def announce_finished(self, runs: Sequence[RunSummary]) -> None:
        """A notification naming each run that finished and how (once per run)."""
        if not runs:
            return
        message, failed = finished_text(runs)
        title = "run finished" if len(runs) == 1 else "runs finished"
        self.notify(
            message, title=title, severity="warning" if failed else "information", timeout=15
        )

    def on_snapshot_taken(self, message: SnapshotTaken) -> None:
        self._poll_running = False
        self.polls += 1
        self.apply_snapshot(message.snapshot)
        self.announce_finished(message.finished_runs)
        self._check_engine()
        self._follow_lease()
        self._schedule_next_poll()

    def on_snapshot_failed(self, message: SnapshotFailed) -> None:
        self._poll_running = False
        self._first_screen_drawn()
        if self.polls == 0 or self.engine_error != message.error:
            self.notify(f"could not read the store: {message.error}", severity="error")
        self._schedule_next_poll()

    def _schedule_next_poll(self) -> None:
        if self._poll_again:
            self._poll_again = False
            self._poll()
        elif self._poll_timer is None and self.is_running:
            self._poll_timer = self.set_timer(self.poll_interval, self._poll)

    def _adapt_interval(self) -> None:
        """Space refreshes out while the last poll cycle cost more than REFRESH_CPU_BUDGET.

        A cycle runs from one poll to the next: the snapshot's build, applying
        it, drawing it, and whatever keys came meanwhile (the whole console
        process's CPU). The wait that would have kept that cost within budget
        becomes the next interval, between the configured interval and
        MAX_REFRESH_INTERVAL: at once when it is longer (a run's first seconds
        are its busiest), half-way when shorter (one cheap cycle, e.g. while
        nothing changed, does not undo it).
        """
        now = (time.monotonic(), time.process_time())
        began, self._cycle_began = self._cycle_began, now
        if began is None:
            return
        cpu = now[1] - began[1]
        wanted = min(max(cpu / REFRESH_CPU_BUDGET, self.refresh_interval), MAX_REFRESH_INTERVAL)
        if wanted > self.poll_interval:
            self.poll_interval = wanted
        else:
            self.poll_interval = (self.poll_interval + wanted) / 2

    def poll_now(self) -> None:
        """Refresh as soon as possible (after an action, a filter change)."""
        if not self.polling:
            snapshot = self.builder.build()
            if self.snapshot_hook is not None:
                snapshot = self.snapshot_hook(snapshot)
            self._read_engine_since()
            self.polls += 1
            self.apply_snapshot(snapshot)
            self.announce_finished(self._finished_runs(snapshot))
            return
        if self._poll_timer is not None:
            self._poll_timer.stop()
        self._poll()

    def apply_snapshot(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        for name, wanted in list(self._wanted_parallelism.items()):
            if any(
                view.name == name and view.parallelism == wanted
                for view in snapshot.header.executors
            ):
                del self._wanted_parallelism[name]
        if self._wanted_paused == snapshot.header.paused:
            self._wanted_paused = None
        if not self.frozen:
            self.dashboard.apply(snapshot)
        self._first_screen_drawn()

    def _first_screen_drawn(self) -> None:
        """Let our own engine dispatch once the first snapshot is on screen.

        It holds dispatch until then, so that the console's start-up (its first
        layout, then every panel filled and drawn at once: most of a second of
        CPU) does not compete with the run, and the run is shown from its
        first task.
        """
        if not self._engine_released:
            self._engine_released = True
            self.call_after_refresh(self._release_engine)

    # ---- view -------------------------------------------------------------------------
    def toggle_freeze(self) -> None:
        self.frozen = not self.frozen
        if not self.frozen and self.snapshot is not None:
            self.dashboard.apply(self.snapshot)
        else:
            self.dashboard.show_badges()

    def set_filter(self, pattern: str | None) -> None:
        try:
            self.builder.set_filter(pattern)
        except Exception as error:
            self.notify(f"not a regular expression: {error}", severity="error")
            return
        self.dashboard.show_badges()
        self.poll_now()

    def show_help(self, dashboard: DashboardScreen) -> None:
        ctx = self.context
        if ctx.attached_to and ctx.read_only:
            mode = f"Attached to the engine pid {ctx.attached_to.get('pid')}."
        elif ctx.attached_to:
            mode = f"Attached to the engine pid {ctx.attached_to.get('pid')}: keys are sent to it as requests."
        elif ctx.engine is not None:
            mode = (
                f"The engine (pid {ctx.engine.pid}) was started by this console and stops when it quits; "
                "keys are sent to it as requests."
            )
        else:
            mode = "No engine owns this store: requests wait until one starts."
        if ctx.read_only:
            mode += " Read-only: keys that change something are hidden."
        task = dashboard.selected_task
        if task is not None:
            mode += f" Task keys act on {task_label(task.key)}."
        self.push_screen(HelpScreen(dashboard.help_lines(), self.palette, mode))

    # ---- what is allowed ---------------------------------------------------------------
    def task_action_allowed(self, name: str, task: TaskRef | None) -> bool | None:
        """True: offered; None: shown greyed out; False: hidden (read-only, or no task selected).

        With no task selected the task keys leave the footer to the keys that
        work (n and o, in an empty store); the help still lists them. A key is
        greyed out when the try's executor lacks the capability, or when the
        try's state is one the action refuses (``state_refusal``): pressed, it
        says so in one line (``action_unavailable``).
        """
        if name in MUTATING_TASK_ACTIONS and self.context.read_only:
            return False
        if task is None:
            return False
        if task.executor not in self.context.executors:
            # Not known here (an Events row): its state is the event's, perhaps
            # old; the store is read when the key is pressed, and the engine checks.
            return True
        if self._task_refusal(name, task) is not None:
            return None
        return True

    def _capability_refusal(self, name: str, task: TaskRef) -> str | None:
        """Why the try's executor cannot do ``name`` (None: it can, or it is not known here)."""
        executor = self.context.executors.get(task.executor)
        if executor is None:
            return None
        if name == "kill" and task.state in ("queued", "running") and not executor.supports_kill:
            return f"{task.executor} cannot kill running tasks (supports_kill is off)"
        if name in ("priority_up", "priority_down") and not executor.supports_priority:
            return f"{task.executor} ignores priorities (supports_priority is off)"
        return None

    def _task_refusal(self, name: str, task: TaskRef, label: str | None = None) -> str | None:
        """Why ``name`` cannot apply to ``task`` as the console last saw it, or None.

        ``label`` names the try in the line (default: ``dag/task#try``).
        """
        return self._capability_refusal(name, task) or state_refusal(
            name, label or task_label(task.key), task.state
        )

    def engine_action_allowed(self, name: str, executor_name: str | None) -> bool | None:
        if name in MUTATING_ACTIONS and self.context.read_only:
            return False
        if name == "parallelism":
            executor = self.context.executors.get(executor_name or "") or self._default_executor
            if executor is None or not executor.supports_live_scaling:
                return None
        if name == "new_task" and not any(
            e.supports_ad_hoc_run for e in self.context.executors.values()
        ):
            return None
        return True

    def vended_key_allowed(
        self, vended: VendedKey, task: TaskRef | None, focused_executor: str | None
    ) -> bool | None:
        binding = vended.binding
        if binding.mutating and self.context.read_only:
            return False
        executor = self.context.executors.get(vended.executor)
        if executor is None or not self.context.engine_alive:
            return None  # its action runs on the thread of the console's own engine
        if binding.capability and not getattr(executor, binding.capability, False):
            return None
        if binding.needs_task and task is None:
            return None
        if len(self.context.executors) > 1 and focused_executor not in (None, vended.executor):
            return None  # another executor's panel or task row has focus
        return True

    def why_not(
        self, name: str, params: tuple[Any, ...], allowed: bool | None, screen: DashboardScreen
    ) -> str:
        """Why a key is greyed out or hidden, in a few words ("" when it is offered)."""
        if allowed:
            return ""
        if allowed is False:
            if name == "task" and not (
                self.context.read_only and params and params[0] in MUTATING_TASK_ACTIONS
            ):
                return "select a task first"
            return "hidden: read-only console"
        if name == "vended":
            vended = self.vended_keys[int(params[0])]
            executor = self.context.executors.get(vended.executor)
            if not self.context.engine_alive:
                return "only with the console's own engine running"
            if (
                vended.binding.capability
                and executor is not None
                and not getattr(executor, vended.binding.capability, False)
            ):
                return f"{vended.executor} lacks {vended.binding.capability}"
            return "select a task of this executor"
        if name == "task":
            task = screen.selected_task
            if task is None:
                return "select a task first"
            # The help names the selected task once, above the table (show_help).
            return self._task_refusal(str(params[0]), task, "it") or "not available here"
        if name == "parallelism":
            target = screen.focused_executor or self._default_name
            return (
                f"{target} cannot change parallelism while running (supports_live_scaling is off)"
            )
        if name == "new_task":
            return "no executor accepts ad-hoc tasks (supports_ad_hoc_run is off)"
        if name == "sort":
            return "focus a table first"
        return "not available here"

    # ---- keys pressed where they do not apply -----------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "unavailable":
            return self._unavailable_here(str(parameters[0]))
        return True

    def action_vended_unavailable(self, index: int) -> None:
        """An executor's key pressed where the dashboard does not offer it: say why."""
        screen = self.screen
        if not isinstance(screen, DashboardScreen):
            return  # another screen (a dialog, the detail view) has the keys
        vended = self.vended_keys[index]
        what = f"{vended.binding.description} ({vended.binding.key})"
        allowed = screen.check_action("vended", (index,))
        if allowed is True:
            return  # offered after all (the screen's own binding runs it)
        if self.context.read_only and vended.binding.mutating:
            self.notify(f"read-only console: {what} not available", severity="warning")
            return
        self.notify(
            f"{what}: {self.why_not('vended', (index,), allowed, screen)}", severity="warning"
        )

    def _unavailable_here(self, action: str) -> bool:
        """Whether the screen on top binds a key to ``action`` but does not offer it now."""
        screen = self.screen
        name, params = action_name(action)
        return _binds(screen, action) and screen.check_action(name, params) is not True

    def action_unavailable(self, action: str) -> None:
        """A key that changes something, pressed where its screen does not offer it: say why.

        Read-only: that it is not available. A task key refused by the try's
        state: the line that refuses it, read from the store (had the try moved
        on meanwhile to a state it applies to, it goes ahead, asking first as
        ever). Otherwise what the help's "Here" column says.
        """
        screen = self.screen
        spec = KEY_SPECS[action]
        what = f"{spec.description.lower()} ({spec.display})"
        if self.context.read_only:
            self.notify(f"read-only console: {what} not available", severity="warning")
            return
        name, params = action_name(action)
        if name != "task":
            allowed = screen.check_action(name, params)
            if isinstance(screen, DashboardScreen):
                self.notify(
                    f"{what}: {self.why_not(name, params, allowed, screen)}", severity="warning"
                )
            return
        task_name = str(params[0])
        task = _selected_task(screen)
        if task is None:
            self.notify(f"{what}: select a task first", severity="warning")
        elif (refusal := self._capability_refusal(task_name, task)) is not None:
            self.notify(f"{what}: {refusal}", severity="warning")
        else:
            self._do_task_action(task_name, task)

    @property
    def _default_name(self) -> str:
        return next(iter(self.context.executors), "")

    @property
    def _default_executor(self) -> Any:
        return self.context.executors.get(self._default_name)

    # ---- running operator actions ---------------------------------------------------------
    def run_operator(
        self, label: str, action: Callable[[OperatorActions], str], reply_to: Widget | None = None
    ) -> None:
        """Run an operator action on a worker thread; its outcome comes back as ActionFinished."""
        from console.cli.errors import operator_errors

        known: tuple[type[BaseException], ...] = (*operator_errors(), RequestRejected)
        target = reply_to if reply_to is not None else self

        def work() -> None:
            try:
                outcome = action(self.operator)
            except known as error:
                target.post_message(ActionFinished(label, _problems_text(error), ok=False))
            except Exception as error:  # a bug: say so in one line; the log has the traceback
                log.exception("%s failed", label)
                target.post_message(ActionFinished(label, f"{label} failed: {error}", ok=False))
            else:
                target.post_message(ActionFinished(label, outcome, ok=True))
                if target is not self:
                    self.post_message(ActionFinished(label, outcome, ok=True))

        self.run_worker(work, thread=True, group="operator", exit_on_error=False)

    def on_action_finished(self, message: ActionFinished) -> None:
        self.notify(
            message.message, title=message.label, severity="information" if message.ok else "error"
        )
        self.poll_now()

    def run_task_action(self, name: str, task: TaskRef) -> None:
        """What k, r, R, s, f, [, ], C, enter and l do to a task (the dashboard and detail screen share it)."""
        if self.task_action_allowed(name, task) is not True:
            return
        self._do_task_action(name, task)

    def _do_task_action(self, name: str, task: TaskRef) -> None:
        """Carry ``name`` out on ``task``; whatever would refuse it says so in one line first.

        The keys that ask first (k, R, s, f, C) read the try from the store
        before asking, and show the refusal instead of the question; r, [ and ]
        ask nothing, and ``console.actions`` refuses them before writing anything.
        """
        label = task_label(task.key)
        key = task.key
        if name == "detail":
            from console.tui.task_detail_screen import TaskDetailScreen

            self.push_screen(TaskDetailScreen(task.ti_id))
        elif name == "logs":
            from console.tui.log_screen import LogScreen

            self.push_screen(LogScreen(task))
        elif name == "kill":
            self._confirm_unless_refused(
                name,
                task,
                f"kill {label}",
                (f"Kill {label}?", f"Run {key.run_id}. It ends failed, without a retry."),
                "Kill",
                lambda ops: ops.kill(key),
            )
        elif name == "retry":
            self.run_operator(f"retry {label}", lambda ops: ops.retry(key))
        elif name == "retry_downstream":
            self._confirm_unless_refused(
                name,
                task,
                f"retry {label} with downstream",
                (
                    f"Retry {label} and every task downstream of it?",
                    f"Run {key.run_id}. Airflow's clear with downstream: the tasks below it run "
                    "again after it, in dependency order; running ones are killed first.",
                ),
                "Retry all",
                lambda ops: ops.retry(key, downstream=True),
            )
        elif name in MARKS:
            state = MARKS[name]
            self._confirm_unless_refused(
                name,
                task,
                f"mark {label} {state}",
                (f"Mark {label} {state}?", "Downstream tasks follow as if it had ended so."),
                f"Mark {state}",
                lambda ops: ops.mark(key, state),
            )
        elif name in ("priority_up", "priority_down"):
            step = 1 if name == "priority_up" else -1
            self.run_operator(f"priority {label}", lambda ops: ops.change_priority(key, step))
        elif name == "cancel_run":
            self._cancel_run(task)

    def _confirm_unless_refused(
        self,
        name: str,
        task: TaskRef,
        title: str,
        question: tuple[str, str],
        confirm: str,
        action: Callable[[OperatorActions], str],
    ) -> None:
        """Read ``task``'s try from the store: refuse at once what ``console.actions`` would
        refuse, else ask ``question`` and, on yes, run ``action``.

        The try's state is read, not taken from the row: a row's own state may
        be older (an Events row shows the state of its event).
        """
        key = task.key

        def read() -> str | tuple[str, str]:
            refusal = self.operator.refusal(name, key)
            return refusal if refusal is not None else question

        def ask(text: str, detail: str) -> None:
            self._confirm(text, detail, confirm, lambda: self.run_operator(title, action))

        self._ask_unless_refused(title, read, ask)

    def _cancel_run(self, task: TaskRef) -> None:
        """C: the selected task's whole run, as ``execconsole runs cancel dag/run``.

        The run is read from the store first (on a worker thread): a run with
        nothing left to stop is refused at once, as ``actions.cancel_run``
        would refuse it; otherwise the question says how many tasks end and how.
        """
        dag_id, run_id = task.key.dag_id, task.key.run_id
        run = f"{dag_id}/{run_id}"
        title = f"cancel run {run}"

        def read() -> str | tuple[str, str]:
            summary = self.operator.run_summary(dag_id, run_id)
            if summary is None:
                return f"no run {run} (removed meanwhile?): nothing to cancel"
            if summary.finished:
                return f"run {run} has finished ({summary.state}): nothing to cancel"
            return cancel_run_question(run, summary.counts)

        def ask(question: str, detail: str) -> None:
            self._confirm(
                question,
                detail,
                "Cancel run",
                lambda: self.run_operator(title, lambda ops: ops.cancel_run(dag_id, run_id)),
                decline="Keep it running",
            )

        self._ask_unless_refused(title, read, ask)

    def _ask_unless_refused(
        self,
        title: str,
        read: Callable[[], str | tuple[str, str]],
        ask: Callable[[str, str], None],
    ) -> None:
        """Run ``read`` on a worker thread (it reads the store), then, on the app's thread,
        ``ask`` its (question, detail), or show the refusal it returned instead."""
        from console.cli.errors import operator_errors

        def work() -> None:
            try:
                found = read()
            except operator_errors() as error:
                found = str(error)
            except Exception as error:  # a bug: say so in one line; the log has the traceback
                log.exception("%s failed", title)
                found = f"{title} failed: {error}"
            with contextlib.suppress(RuntimeError):  # the console closed meanwhile
                if isinstance(found, tuple):
                    self.call_from_thread(ask, *found)
                else:
                    self.call_from_thread(self.notify, found, title=title, severity="warning")

        self.run_worker(work, thread=True, group="operator", exit_on_error=False)

    def _confirm(
        self,
        question: str,
        detail: str,
        confirm: str,
        then: Callable[[], None],
        decline: str = "Cancel",
    ) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                then()

        self.push_screen(ConfirmScreen(question, detail, confirm, decline), answered)

    def toggle_pause(self) -> None:
        paused = self._wanted_paused
        if paused is None:
            paused = bool(self.snapshot and self.snapshot.header.paused)
        self._wanted_paused = not paused
        if paused:
            self.run_operator("resume", lambda ops: ops.resume())
        else:
            self.run_operator("pause", lambda ops: ops.pause())

    def change_parallelism(self, step: int, executor_name: str | None) -> None:
        name = (
            executor_name
            if executor_name and executor_name in self.context.executors
            else self._default_name
        )
        current = self._wanted_parallelism.get(name)
        if current is None and self.snapshot is not None:
            current = next(
                (v.parallelism for v in self.snapshot.header.executors if v.name == name), None
            )
        if current is None:
            current = self.context.executors[name].parallelism
        if current == 0:
            self.notify(
                f"{name}: parallelism is unlimited (0); set a number with `execconsole parallelism`",
                severity="warning",
            )
            return
        value = current + step
        if value < 1:
            self.notify(
                f"{name}: parallelism is 1 already (0 would mean unlimited)", severity="warning"
            )
            return
        self._wanted_parallelism[name] = value
        self.run_operator(f"parallelism {name}", lambda ops: ops.set_parallelism(value, name))

    def open_new_task(self) -> None:
        from console.tui.new_task_screen import NewTaskScreen

        names = [name for name, e in self.context.executors.items() if e.supports_ad_hoc_run]
        default = self._default_name if self._default_name in names else names[0]
        self.push_screen(NewTaskScreen(names, default))

    def open_workflow(self) -> None:
        from console.tui.open_workflow_screen import OpenWorkflowScreen

        self.push_screen(OpenWorkflowScreen(Path.cwd()))

    def run_vended_key(self, vended: VendedKey, task: TaskRef | None) -> None:
        """Run an executor's key action on its engine's thread; its message comes back as a notification."""
        binding = vended.binding
        engine = self.context.engine

        def reply(ok: bool, message: str) -> None:
            self.post_message(ActionFinished(binding.description, message, ok=ok))

        if engine is None or not engine.run_key(
            vended.executor,
            binding.key,
            binding.description,
            task.key if task is not None else None,
            reply,
        ):
            self.notify(
                f"{binding.description}: only with the console's own engine running",
                severity="warning",
            )

    # ---- command palette ----------------------------------------------------------------------
    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        if isinstance(screen, DashboardScreen):
            for spec in KEYS:
                if not spec.palette:
                    continue
                name, params = action_name(spec.action)
                if screen.check_action(name, params) is True:
                    yield SystemCommand(
                        spec.description,
                        f"key {spec.display}",
                        self._palette_callback(screen, spec.action),
                    )
            for index, vended in enumerate(self.vended_keys):
                if screen.check_action("vended", (index,)) is True:
                    yield SystemCommand(
                        vended.binding.description,
                        f"{vended.executor} · key {vended.binding.key}",
                        self._palette_callback(screen, f"vended({index})"),
                    )
        engine = self.context.engine
        if engine is not None and not engine.running and not self.context.read_only:
            yield SystemCommand(
                "Restart the engine",
                "the console's engine stopped: start a new one",
                self.restart_engine,
            )
        elif (
            engine is None
            and self.context.attached_to is None
            and not self.context.read_only
            and not self.restarting
        ):
            yield SystemCommand(
                "Start an engine",
                "no engine owns this store: start one, stopped when the console quits",
                self.start_engine_here,
            )
        # None of Textual's stock commands: its Keys panel repeats ?, Maximize repeats
        # z, Quit would skip q's question, Screenshot is a developer's tool. Only the
        # theme is kept, as the console's own entry: nothing else changes the colours,
        # and every panel follows a change (_theme_changed).
        yield SystemCommand(
            "Theme", "the console's colours: choose another theme", self.action_change_theme
        )

    @staticmethod
    def _palette_callback(screen: Screen[Any], action: str) -> Callable[[], Any]:
        def run() -> None:
            screen.call_later(screen.run_action, action)

        return run

    # ---- quitting -------------------------------------------------------------------------------
    async def action_quit(self) -> None:
        """ctrl+q and the palette's Quit take the same road as q."""
        self.request_quit()

    def request_quit(self) -> None:
        """Quit; when the console's own engine has tasks in flight, ask what becomes of them."""
        engine = self.context.engine
        if engine is None:
            self.exit(None)
            return
        if not engine.running:
            self.exit("finish")
            return
        status = engine.status()
        in_flight = status.in_flight if status is not None else 0
        if in_flight and self.snapshot is not None:
            # Both are a fraction of a second old; the engine's status can lag
            # under load. If either saw nothing in flight, nothing is asked: the
            # engine is then told to let whatever runs finish (bounded).
            counts = self.snapshot.header.counts
            in_flight = min(in_flight, counts.get("queued", 0) + counts.get("running", 0))
        if in_flight == 0:
            self.exit("finish")
            return
        # Counted as the header counts them: handed out (queued at an executor,
        # not started) is not running; every choice gives those tries back.
        counts = self.snapshot.header.counts if self.snapshot is not None else {}
        running = counts.get("running", 0)
        handed_out = counts.get("queued", 0)
        if self.snapshot is None:
            running = in_flight
        waiting = counts.get("scheduled", 0)

        def chosen(choice: str | None) -> None:
            if choice is None:
                return
            if choice == DRAIN:
                engine.drain()
                self.notify(
                    "draining: nothing new starts; the console closes when running tasks end (q again to choose)"
                )
                self.poll_now()
            else:
                self.exit(choice)

        self.push_screen(QuitScreen(running, handed_out, waiting), chosen)

    # ---- a console without an engine of its own ----------------------------------------------
    def _read_lease(self) -> None:
        """Poll worker: who owns the store now (every few seconds, with no engine of our own).

        An attached console learnt its engine when it opened; that engine may
        stop (its `run` ended, a scheduler was stopped) or another may take the
        store. Read on the builder's connection, on the thread that uses it.
        """
        if self.context.engine is not None or self.restarting:
            return
        now = time.monotonic()
        if now - self._lease_checked_at < LEASE_CHECK_SECONDS:
            return
        self._lease_checked_at = now
        self._lease_seen = (self.builder.store.lease_owner(),)

    def _follow_lease(self) -> None:
        """Show whose engine the store has now; offer to host one when none is left."""
        seen, self._lease_seen = self._lease_seen, None
        ctx = self.context
        if seen is None or ctx.engine is not None or self.restarting:
            return
        (owner,) = seen
        before = ctx.attached_to
        if (owner or {}).get("pid") == (before or {}).get("pid"):
            return
        ctx.attached_to = owner
        self.builder.attached_to = owner
        self.title = self._title()
        if owner is not None:
            self.notify(
                f"the engine pid {owner.get('pid')} on {owner.get('hostname')} owns the store now: "
                "attached to it"
            )
            self.poll_now()
            return
        gone = (
            f"the engine pid {(before or {}).get('pid')} this console was attached to has stopped"
        )
        self.poll_now()
        if ctx.read_only:
            self.notify(f"{gone}; nothing runs until an engine starts", severity="warning")
            return
        self.offer_engine_here(gone)

    def offer_engine_here(self, why: str) -> None:
        """Ask whether this console should start an engine of its own (once at a time)."""
        if any(isinstance(screen, RestartScreen) for screen in self.screen_stack):
            return
        self.clear_notifications()

        def answered(yes: bool | None) -> None:
            if yes:
                self.start_engine_here()
            else:
                self.notify(
                    "watching: requests wait for the next engine (`execconsole scheduler`, or "
                    "Start an engine in the command palette)"
                )

        self.push_screen(
            RestartScreen(
                "No engine runs this store now. Start one here?",
                f"{why.capitalize()}. An engine started by this console adopts or accounts "
                "for every task left in flight, and stops when the console quits.",
                "Start an engine",
            ),
            answered,
        )

    def start_engine_here(self) -> None:
        """Start an engine process of this console's own, in place of the one it watched."""
        if self.context.engine is not None or self.restarting or self.context.read_only:
            return
        from console.tui.engine_process import ChildEngine

        runtime = self.context.runtime
        self._start_engine(lambda: ChildEngine.spawn(runtime), "starting an engine…")

    # ---- the console's own engine ----------------------------------------------------------
    def watch_engine(self, engine: EngineLink) -> None:
        """Hear when ``engine`` (the console's own) ends, whatever the reason.

        Its end is noticed once, however it is learnt: from the engine's own
        thread (``on_exit``), here if it ended before it was watched (a restarted
        engine can die between its start and this call, and ``on_exit`` is read
        once, when the process has ended), or from the next refresh
        (``_check_engine``).
        """

        def ended(_engine: object) -> None:
            self.post_message(self._stopped_message(engine))

        engine.on_exit = ended
        if not engine.running:
            self.post_message(self._stopped_message(engine))

    @staticmethod
    def _stopped_message(engine: EngineLink) -> EngineStopped:
        drained = engine.drained and engine.drain_requested
        return EngineStopped(drained, None if drained else engine.exit_reason(), engine)

    def _check_engine(self) -> None:
        """A safety net under ``on_exit``: the console's engine ended and nothing said so yet."""
        engine = self.context.engine
        if (
            engine is not None
            and not engine.running
            and engine is not self._stopped_engine
            and not self.restarting
        ):
            self.on_engine_stopped(self._stopped_message(engine))

    def on_engine_stopped(self, message: EngineStopped) -> None:
        engine = message.engine if message.engine is not None else self.context.engine
        if engine is not self.context.engine or engine is self._stopped_engine:
            return  # an engine replaced since, or an end already shown
        self._stopped_engine = engine
        if message.drained:
            self.exit("finish")
            return
        self.engine_error = message.error or "the engine ended"
        self.dashboard.show_badges()
        if not self.is_running or self.context.read_only:
            self.notify(
                f"{self.engine_error}", title="the engine stopped", severity="error", timeout=30
            )
            return
        self.offer_restart()

    def offer_restart(self) -> None:
        """Ask whether to start a new engine (once: not while the question is on screen).

        The question is the dialog's first line, and the toasts on screen are
        cleared: at 80 columns they are drawn over the dialog's right half.
        """
        engine = self.context.engine
        if engine is None or engine.running or self.restarting:
            return
        if any(isinstance(screen, RestartScreen) for screen in self.screen_stack):
            return
        self.clear_notifications()

        def answered(yes: bool | None) -> None:
            if yes:
                self.restart_engine()

        self.push_screen(
            RestartScreen(
                "The engine stopped. Start a new one?",
                f"{self.engine_error}. A new engine adopts or accounts for every task the "
                "last one left in flight. (Also in the command palette: Restart the engine.)",
                "Restart",
            ),
            answered,
        )

    def _release_engine(self) -> None:
        engine = self.context.engine
        if engine is not None:
            engine.release()

    def restart_engine(self) -> None:
        """Start a new engine process in place of the one that ended (on a worker thread)."""
        old = self.context.engine
        if old is None or old.running or self.restarting:
            return
        self._start_engine(old.respawn, "starting a new engine…")

    def _start_engine(self, make: Callable[[], EngineLink], saying: str) -> None:
        """Start an engine process with ``make`` on a worker thread; it becomes the console's own."""
        self.restarting = True
        self.notify(saying)

        def work() -> None:
            from console.tui.engine_process import EngineOwned, EngineStartFailed

            try:
                new = make()
                new.wait_ready()
            except EngineOwned as error:
                self.call_from_thread(self._engine_started, None, str(error))
            except (EngineStartFailed, OSError) as error:
                self.call_from_thread(self._engine_started, None, f"could not start: {error}")
            except Exception as error:  # a bug: never leave the console "starting" for ever
                log.exception("starting an engine failed")
                self.call_from_thread(
                    self._engine_started, None, f"{type(error).__name__}: {error}"
                )
            else:
                self.call_from_thread(self._engine_started, new, None)

        self.run_worker(work, thread=True, group="engine", exit_on_error=False)

    def _engine_started(self, engine: EngineLink | None, error: str | None) -> None:
        self.restarting = False
        if engine is None:
            self.notify(f"no engine started: {error}", severity="error", timeout=30)
            self._lease_checked_at = 0.0  # another engine may own the store now: look again
            return
        ctx = self.context
        ctx.engine = engine
        ctx.attached_to = None  # a console that watched another's engine hosts this one
        self.builder.attached_to = None
        self.builder.engine_status = ctx.engine_status
        self.engine_error = None
        self.title = self._title()
        self.notify(f"engine pid {engine.pid} started by this console")
        self._stop_with_the_terminal()
        self.dashboard.show_badges()
        self.watch_engine(engine)  # last: if it has died already, that is shown now
        self.poll_now()
