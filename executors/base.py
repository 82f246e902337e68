"""BaseExecutor: queued tasks, the running set, the event buffer and the heartbeat.

Concrete executors say *how* a workload runs (``execute_async``, ``sync``);
this class owns *when*: priority order, open slots, the stuck-running rule, and
the event buffer the engine drains. It also declares the capability interface:
class attributes that core code reads instead of ever naming an executor, and
optional hooks (kill, live scaling, adoption, logs, CLI groups, console panels,
key bindings) whose defaults do nothing.

The engine drives an executor like this::

    executor.start()
    executor.queue_workload(workload)      # for each try that may run
    executor.heartbeat()                   # each tick: trigger + sync
    events = executor.get_event_buffer()   # {key: (state, report)}
    executor.end()                         # or terminate() when forced
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from executors.retry_attempt import RunningRetryAttempt
from executors.state import TaskState
from executors.task_key import TaskKey
from executors.vended import CliGroup, ConsolePanel, KeyBinding
from executors.workload import TaskReport, Workload

if TYPE_CHECKING:
    from executors.options import ExecutorOption

log = logging.getLogger(__name__)

EventBufferValue = tuple[TaskState, "TaskReport | None"]


class CallbackSink(Protocol):
    """Where ``send_callback`` delivers requests (the engine supplies one)."""

    def send(self, request: Any) -> None: ...


@dataclass(slots=True)
class QueuedTask:
    """An entry of ``queued_tasks``: the workload and how it is ordered."""

    workload: Workload
    priority: int
    queue: str
    sequence: int


class AdoptionOutcome(StrEnum):
    """What an executor found when asked to adopt a try after an engine restart."""

    ADOPTED = "adopted"  # still in flight; the executor now tracks it and will report
    NEVER_STARTED = "never_started"  # provably never started: safe to hand out again
    FINISHED = "finished"  # ended while nobody watched; the report says how
    LOST = "lost"  # cannot be found: fail it into its retry policy


@dataclass(slots=True)
class AdoptionRecord:
    """What the store remembers of an in-flight try, handed to ``adopt``."""

    key: TaskKey
    state: TaskState
    token: str | None
    pid: int | None = None
    pid_create_time: float | None = None
    hostname: str | None = None
    log_path: str | None = None
    timeout: float | None = None  # seconds; enforced by the adopter from started_at
    started_at: str | None = None  # ISO-8601 UTC, as the store recorded it


@dataclass(slots=True)
class Adoption:
    outcome: AdoptionOutcome
    report: TaskReport | None = None


@dataclass(slots=True)
class WorkerInfo:
    """A worker process, for executors that run workers on this machine."""

    pid: int
    title: str
    busy_with: TaskKey | None
    tasks_done: int
    alive: bool = True
    exit_reason: str | None = None


@dataclass(slots=True)
class TaskLog:
    """The tail of a task's log, as an executor can supply it."""

    text: str
    size: int  # the log's whole size in bytes, of which ``text`` is the end
    source: str  # where it came from, e.g. a path or "celery result backend"
    truncated: bool = False


@dataclass(slots=True)
class _Counters:
    triggered: int = 0
    finished: int = 0
    dropped_stuck: int = 0


class BaseExecutor:
    """Base class of every executor.

    Args:
        parallelism: how many tries may run at once; 0 means no limit.
        name: the name this executor is configured under (for gauges and panels
            when several run side by side); defaults to the class's ``name``.
        home: the EXECCONSOLE_HOME directory, for executors that keep files.
        options: executor-specific settings from the config file.

    Raises:
        ValueError: parallelism is negative.
    """

    # ---- identity --------------------------------------------------------
    name: ClassVar[str] = "base"
    """Short name used in config, on the command line and in task rows."""

    # ---- capabilities: core code reads these, never the class name ---------
    is_local: ClassVar[bool] = True
    """Runs tasks on this machine, so their processes can be seen with psutil."""
    is_single_threaded: ClassVar[bool] = False
    """Runs a task inside ``heartbeat()``; hosts must call it off the UI thread."""
    is_production: ClassVar[bool] = True
    """False makes the console and the scheduler warn that this is for debugging."""
    serve_logs: ClassVar[bool] = True
    """Task logs are files on this machine; otherwise ``get_task_log`` fetches them."""
    supports_ad_hoc_run: ClassVar[bool] = True
    """Accepts tasks submitted by hand (``submit``, the console's new-task form)."""
    supports_kill: ClassVar[bool] = False
    """``kill(key)`` stops a running try."""
    supports_live_scaling: ClassVar[bool] = False
    """``set_parallelism(n)`` takes effect while running."""
    option_specs: ClassVar[Mapping[str, ExecutorOption] | None] = None
    """The options the class reads from ``[executor.<name>]`` (besides parallelism).

    When a class declares them, anything else, or a value of the wrong kind,
    is refused at start-up (``executors.loader.check_options``); a subclass is
    checked only once it declares its own, as it may read more.
    """
    supports_adoption: ClassVar[bool] = False
    """``adopt(records)`` can take over tries left in flight by a dead engine."""
    supports_priority: ClassVar[bool] = True
    """Honours the priority of queued tries."""

    CAPABILITY_NAMES: ClassVar[tuple[str, ...]] = (
        "is_local",
        "is_single_threaded",
        "is_production",
        "serve_logs",
        "supports_ad_hoc_run",
        "supports_kill",
        "supports_live_scaling",
        "supports_adoption",
        "supports_priority",
    )

    def __init__(
        self,
        parallelism: int = 2,
        *,
        name: str | None = None,
        home: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        if parallelism < 0:
            raise ValueError(f"parallelism must be 0 (unlimited) or more, not {parallelism}")
        self.parallelism: int = parallelism
        self.executor_name: str = name or self.name
        self.home: str | None = home
        self.options: dict[str, Any] = dict(options or {})

        self.queued_tasks: dict[TaskKey, QueuedTask] = {}
        self.running: set[TaskKey] = set()
        self.event_buffer: dict[TaskKey, EventBufferValue] = {}
        self.attempts: dict[TaskKey, RunningRetryAttempt] = {}
        self.task_event_logs: deque[tuple[TaskKey, str]] = deque()
        self.callback_sink: CallbackSink | None = None

        self._heap: list[tuple[int, int, TaskKey]] = []
        self._sequence = itertools.count()
        self._counters = _Counters()

    # ---- capabilities as data -------------------------------------------
    @classmethod
    def capabilities(cls) -> dict[str, bool]:
        """Every capability flag of this class, by name."""
        return {flag: bool(getattr(cls, flag)) for flag in cls.CAPABILITY_NAMES}

    # ---- queueing ---------------------------------------------------------
    def queue_workload(
        self, workload: Workload, priority: int | None = None, queue: str | None = None
    ) -> bool:
        """Add a workload to ``queued_tasks``; False (and a log line) if its key is queued already."""
        key = workload.key
        if key in self.queued_tasks:
            log.error("could not queue %s: it is queued already", key)
            return False
        item = QueuedTask(
            workload=workload,
            priority=workload.priority if priority is None else priority,
            queue=queue or workload.queue,
            sequence=next(self._sequence),
        )
        self.queued_tasks[key] = item
        heapq.heappush(self._heap, (-item.priority, item.sequence, key))
        return True

    def change_priority(self, key: TaskKey, priority: int) -> bool:
        """Reorder a queued key; False if it is not queued here."""
        item = self.queued_tasks.get(key)
        if item is None:
            return False
        item.priority = priority
        heapq.heappush(self._heap, (-priority, item.sequence, key))
        return True

    def dequeue(self, key: TaskKey) -> bool:
        """Take a key out of ``queued_tasks`` before it starts; False if it is not queued."""
        return self.queued_tasks.pop(key, None) is not None

    def has_task(self, key: TaskKey) -> bool:
        """True while the key is queued or running here."""
        return key in self.queued_tasks or key in self.running

    @property
    def slots_available(self) -> int:
        """How many more keys may be queued before the executor is full."""
        if self.parallelism:
            return self.parallelism - len(self.running) - len(self.queued_tasks)
        return sys.maxsize

    @property
    def slots_occupied(self) -> int:
        return len(self.running) + len(self.queued_tasks)

    def open_slots(self) -> int:
        """How many queued keys the next heartbeat may start."""
        if self.parallelism:
            return max(self.parallelism - len(self.running), 0)
        return len(self.queued_tasks)

    def prefetch_depth(self) -> int:
        """How many tries may be handed out beyond ``parallelism``, to wait at the workers.

        0 here: a try is handed out only when a slot is free. An executor whose
        workers would otherwise sit idle between tries, waiting for the next
        heartbeat, can keep a few waiting at them (see LocalExecutor). The number
        running at once is still bounded by ``parallelism``.
        """
        return 0

    def prefetched(self) -> list[TaskKey]:
        """Keys handed out (so in ``running``) that no worker has started yet."""
        return []

    def queued_reason(self, key: TaskKey) -> str | None:
        """Why a try handed out here has not started, when the executor knows (None here).

        The engine asks before taking back a try stuck in queued, and puts the
        answer in the reason the operator reads (``"queue 'typo' has no consumer"``).
        """
        return None

    def order_queued_tasks_by_priority(self) -> list[tuple[TaskKey, QueuedTask]]:
        """Queued keys in the order they will start: higher priority first, then first in."""
        return sorted(
            self.queued_tasks.items(), key=lambda entry: (-entry[1].priority, entry[1].sequence)
        )

    # ---- the heartbeat ----------------------------------------------------
    def heartbeat(self) -> int:
        """Start what fits, then collect states. Returns the open slots it saw."""
        open_slots = self.open_slots()
        room = open_slots
        if self.parallelism and self.queued_tasks:
            depth = self.prefetch_depth()
            if depth:
                room = max(self.parallelism + depth - len(self.running), 0)
        if room and self.queued_tasks:
            self.trigger_tasks(room)
        self.sync()
        return open_slots

    def _pop_next(self) -> tuple[TaskKey, QueuedTask] | None:
        """The next queued key in priority order, skipping stale heap entries."""
        while self._heap:
            negative_priority, sequence, key = heapq.heappop(self._heap)
            item = self.queued_tasks.get(key)
            if item is None or item.sequence != sequence or item.priority != -negative_priority:
                continue  # dequeued or reprioritised since this entry was pushed
            return key, item
        return None

    def trigger_tasks(self, open_slots: int) -> None:
        """Start up to ``min(open_slots, queued)`` keys, highest priority first.

        A key that is still in ``running`` is not started twice: it stays queued
        and is looked at again on later heartbeats until the stuck-running window
        has passed, then dropped with an entry in ``task_event_logs``.
        """
        to_start: list[tuple[TaskKey, QueuedTask]] = []
        held_back: list[tuple[TaskKey, QueuedTask]] = []
        for _ in range(min(open_slots, len(self.queued_tasks))):
            entry = self._pop_next()
            if entry is None:
                break
            key, item = entry
            if key in self.running:
                attempt = self.attempts.get(key)
                if attempt is None:
                    attempt = self.attempts[key] = RunningRetryAttempt()
                if attempt.can_try_again():
                    log.info(
                        "%s queued while still running; will look again (check %d)",
                        key,
                        attempt.total_tries,
                    )
                    held_back.append((key, item))
                    continue
                message = (
                    f"dropped: queued again while still running, after {attempt.total_tries} checks"
                )
                log.error("%s %s", key, message)
                self.task_event_logs.append((key, message))
                self._counters.dropped_stuck += 1
                del self.attempts[key]
                del self.queued_tasks[key]
                continue
            self.attempts.pop(key, None)
            to_start.append((key, item))
        for key, item in held_back:
            heapq.heappush(self._heap, (-item.priority, item.sequence, key))
        for key, item in to_start:
            del self.queued_tasks[key]
            self.running.add(key)
            self._counters.triggered += 1
            self.execute_async(key, item.workload)

    def execute_async(self, key: TaskKey, workload: Workload) -> None:
        """Start running a workload. Every executor implements this."""
        raise NotImplementedError

    def sync(self) -> None:
        """Collect state changes into the event buffer. Called by every heartbeat."""

    # ---- state changes ----------------------------------------------------
    def change_state(
        self,
        key: TaskKey,
        state: TaskState,
        info: TaskReport | None = None,
        remove_running: bool = True,
    ) -> None:
        """Record ``(state, info)`` for the engine; by default the key leaves ``running``."""
        if remove_running:
            self.running.discard(key)
            if state.is_finished:
                self._counters.finished += 1
        self.event_buffer[key] = (state, info)

    def success(self, key: TaskKey, info: TaskReport | None = None) -> None:
        self.change_state(key, TaskState.SUCCESS, info)

    def fail(self, key: TaskKey, info: TaskReport | None = None) -> None:
        self.change_state(key, TaskState.FAILED, info)

    def running_state(self, key: TaskKey, info: TaskReport | None = None) -> None:
        """Report that a try has started; unlike the others it stays in ``running``."""
        self.change_state(key, TaskState.RUNNING, info, remove_running=False)

    def get_event_buffer(
        self, dag_ids: Iterable[str] | None = None
    ) -> dict[TaskKey, EventBufferValue]:
        """Return and forget buffered events; with ``dag_ids``, only those dags' events."""
        if dag_ids is None:
            events, self.event_buffer = self.event_buffer, {}
            return events
        wanted = set(dag_ids)
        events = {key: value for key, value in self.event_buffer.items() if key.dag_id in wanted}
        for key in events:
            del self.event_buffer[key]
        return events

    def get_task_event_logs(self) -> list[tuple[TaskKey, str]]:
        """Return and forget audit messages about keys the executor gave up on."""
        messages = list(self.task_event_logs)
        self.task_event_logs.clear()
        return messages

    # ---- callbacks --------------------------------------------------------
    def send_callback(self, request: Any) -> None:
        """Hand a callback request to the sink the engine installed."""
        if self.callback_sink is None:
            raise ValueError(
                f"executor {self.executor_name!r} has no callback sink: "
                "set executor.callback_sink before sending callbacks"
            )
        self.callback_sink.send(request)

    # ---- lifecycle --------------------------------------------------------
    @classmethod
    def warm_up(cls) -> None:
        """Prepare this process to host the executor; called once, as early as possible.

        Hosts call it before they parse workflows or open the store, so that
        slow preparations (the LocalExecutor boots its forkserver here) overlap
        that work instead of delaying the first task. Must be idempotent and
        cheap to call again; the default does nothing.
        """

    def start(self) -> None:
        """Prepare to run work (open queues, connect). Called once before queueing."""

    def end(self, timeout: float = 10.0) -> None:
        """Stop gracefully: let running tries finish (bounded by ``timeout``), then release resources."""

    def terminate(self) -> None:
        """Stop now: kill what runs and leave no process behind."""

    def detach(self) -> None:
        """Stop watching but leave running tries running, for the next engine to adopt.

        The console's "leave them running" quit calls this. The default ends the
        executor at once (running tries may be stopped); executors with
        ``supports_adoption`` override it so nothing that runs is disturbed.
        """
        self.end(timeout=0)

    # ---- optional capabilities (defaults do nothing) -----------------------
    def stop_requested(self, kill_after: float) -> None:
        """The host is stopping (a signal): end within ``kill_after`` seconds what blocks it.

        Called from a signal handler, so it must only note the deadline and
        return. Executors whose tries run outside the engine's thread have
        nothing to do (the default); one that runs a try inline, blocking the
        engine, must kill it once ``kill_after`` has passed and start no other.
        """

    def kill(self, key: TaskKey) -> bool:
        """Stop a running try; its FAILED event follows. Override when ``supports_kill``."""
        raise NotImplementedError(
            f"{type(self).__name__} cannot kill tasks (supports_kill is False)"
        )

    def set_parallelism(self, parallelism: int) -> None:
        """Change parallelism live. Override (or set ``supports_live_scaling``) to allow it."""
        if parallelism < 0:
            raise ValueError(f"parallelism must be 0 (unlimited) or more, not {parallelism}")
        if not self.supports_live_scaling:
            raise NotImplementedError(
                f"{type(self).__name__} cannot change parallelism while running"
            )
        self.parallelism = parallelism

    def adopt(self, records: list[AdoptionRecord]) -> dict[TaskKey, Adoption]:
        """Take over tries a dead engine left in flight. Override when ``supports_adoption``.

        Returns an outcome for every record. The default can adopt nothing:
        queued tries are reported NEVER_STARTED only if this executor cannot have
        started them, which a base executor cannot know, so everything is LOST.
        """
        return {record.key: Adoption(AdoptionOutcome.LOST) for record in records}

    def get_task_log(self, key: TaskKey, log_path: str | None, max_bytes: int = 64_000) -> TaskLog:
        """The end of a try's log. The default reads the local file at ``log_path``."""
        if not log_path:
            return TaskLog(text="", size=0, source="no log recorded")
        try:
            size = os.path.getsize(log_path)
            with open(log_path, "rb") as handle:
                if size > max_bytes:
                    handle.seek(size - max_bytes)
                data = handle.read(max_bytes)
        except FileNotFoundError:
            return TaskLog(text="", size=0, source=f"{log_path} (no output)")
        return TaskLog(
            text=data.decode("utf-8", errors="replace"),
            size=size,
            source=log_path,
            truncated=size > max_bytes,
        )

    def forget_finished(self, in_flight_tokens: set[str]) -> None:
        """Drop bookkeeping (claim files, remote results) of tries no longer in flight.

        The engine calls this right after a commit, with the tokens of every try
        it still has in flight; anything else has its outcome in the store.
        """

    def wait_handles(self) -> list[Any]:
        """Objects the engine may block on until this executor has news.

        Anything ``multiprocessing.connection.wait`` accepts (a Connection, a
        socket, a file descriptor). With none, the engine simply sleeps until its
        next tick; returning the result pipe lets it react within microseconds.
        """
        return []

    def wait_for_events(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds until this executor has news; True if it has.

        The engine calls this instead of waiting on ``wait_handles()`` itself
        when this is its only executor, so an executor can keep its own
        long-lived poller and its own timers. This default waits on
        ``wait_handles()`` (or sleeps when there are none).
        """
        handles = self.wait_handles()
        if not handles:
            time.sleep(max(timeout, 0.0))
            return False
        from multiprocessing.connection import wait

        return bool(wait(handles, timeout=max(timeout, 0.0)))

    def worker_processes(self) -> list[WorkerInfo]:
        """Worker processes on this machine (meaningful when ``is_local``)."""
        return []

    @classmethod
    def cli_groups(cls) -> list[CliGroup]:
        """CLI command groups this executor adds as ``execconsole <group>``."""
        return []

    @classmethod
    def console_panels(cls) -> list[ConsolePanel]:
        """Tabs this executor adds to the console."""
        return []

    @classmethod
    def key_bindings(cls) -> list[KeyBinding]:
        """Keys this executor adds to the console."""
        return []

    # ---- observability ----------------------------------------------------
    def gauges(self) -> dict[str, int]:
        """Open slots, queued and running, named per executor so several can be shown side by side."""
        prefix = f"executor.{self.executor_name}"
        prefetched = self.prefetched()  # handed out but not started: waiting, not running
        return {
            f"{prefix}.open_slots": self.open_slots() if self.parallelism else -1,
            f"{prefix}.queued_tasks": len(self.queued_tasks) + len(prefetched),
            f"{prefix}.running_tasks": len(self.running) - len(prefetched),
        }

    def debug_dump(self) -> str:
        """A readable picture of the executor's state, for logs and SIGUSR2."""
        lines = [
            f"executor {self.executor_name} ({type(self).__name__}), parallelism {self.parallelism or 'unlimited'}",
            f"  queued {len(self.queued_tasks)}, running {len(self.running)}, "
            f"events waiting {len(self.event_buffer)}, triggered {self._counters.triggered}, "
            f"finished {self._counters.finished}, dropped as stuck {self._counters.dropped_stuck}",
        ]
        for key, item in self.order_queued_tasks_by_priority()[:20]:
            lines.append(f"  queued  {key} priority={item.priority} queue={item.queue}")
        for key in sorted(self.running, key=str)[:50]:
            lines.append(f"  running {key}")
        for key, (state, _info) in list(self.event_buffer.items())[:20]:
            lines.append(f"  event   {key} {state}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.executor_name} parallelism={self.parallelism}>"


__all__ = [
    "Adoption",
    "AdoptionOutcome",
    "AdoptionRecord",
    "BaseExecutor",
    "CallbackSink",
    "EventBufferValue",
    "QueuedTask",
    "TaskLog",
    "WorkerInfo",
]
