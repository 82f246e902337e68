"""The engine: the loop between the store and the executors. No UI code.

::

    store (scheduled) --ready()--> Engine --queue_workload--> executor.queued_tasks
         ^                           |                              | heartbeat: trigger + sync
         |                           |<---- get_event_buffer -------+
         +---- one commit per tick --+  (states, retries, timeouts, operator requests)

Two cadences:

- the **executor loop** heartbeats every executor as soon as one of them has
  news (``wait_handles``) or every ``tick_interval``: starting the next task
  never waits for the store;
- the **store tick** drains event buffers, applies retries, timeouts and
  operator requests, picks newly ready tries, and writes all of it in ONE
  transaction. Only after that commit are the new tries handed to their
  executors, so a try is never running without the store knowing its token.
  It comes every ``tick_interval``, sooner (2 ms apart at most) while
  executors have reports to record and little queued, and at once after a
  tick that made tries ready (their last upstream succeeded) or left
  nothing in flight.

Each executor keeps a small backlog of queued tries (its ``queued_tasks``),
sized from its recent throughput, so fast tasks never starve between store
ticks and slow ones are not hoarded where the operator cannot reorder them.
"""

from __future__ import annotations

import bisect
import logging
import operator
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from datetime import datetime
from multiprocessing.connection import wait as wait_for_handles
from pathlib import Path
from typing import Any

import pendulum

from console.operator_requests import RequestHandler
from console.recovery import recover_in_flight
from executors.base import BaseExecutor
from executors.state import TaskState
from executors.task_key import TaskKey
from executors.workload import TaskReport, Workload
from store import Batch, Store, TaskRecord
from store.runs import forget_logs
from store.store import RESTART_ACTOR

log = logging.getLogger(__name__)

MAX_HANDOFF_PER_TICK = 1024
SETTING_PAUSED = "paused"
LEASE_RENEW_SECONDS = 2.0
# How often executors may drop the bookkeeping of committed tries (claim files).
FORGET_FINISHED_SECONDS = 30.0
UNHOSTED_CHECK_SECONDS = 30.0  # how often to look for tries no executor here can run
# An executor that still has a try running this long past its timeout is
# asked to kill it; the supervisor normally does it first.
TIMEOUT_BACKSTOP_SECONDS = 10.0


def parallelism_setting(executor_name: str) -> str:
    return f"parallelism.{executor_name}"


_RECORD_FIELDS = tuple(f.name for f in dataclass_fields(TaskRecord))
_RECORD_INDEX = {name: index for index, name in enumerate(_RECORD_FIELDS)}
_RECORD_VALUES = operator.attrgetter(*_RECORD_FIELDS)  # every field in one C call


def evolve(record: TaskRecord, **changes: Any) -> TaskRecord:
    """``dataclasses.replace`` for task records, without its per-call introspection.

    A few run for every try on the engine's hot path.
    """
    values = list(_RECORD_VALUES(record))
    for name, value in changes.items():
        values[_RECORD_INDEX[name]] = value
    return TaskRecord(*values)


def seconds_between(started: str, ended: str) -> float:
    """``ended - started`` in seconds, for two ISO-8601 times.

    ``datetime.fromisoformat`` reads what pendulum writes (``...Z``) some 50
    times faster than ``pendulum.parse``; anything it cannot read, or a naive
    time it cannot subtract from an aware one, goes to pendulum as before.
    """
    try:
        return (datetime.fromisoformat(ended) - datetime.fromisoformat(started)).total_seconds()
    except (ValueError, TypeError):
        return (pendulum.parse(ended) - pendulum.parse(started)).total_seconds()  # type: ignore[operator,union-attr]


@dataclass
class InFlight:
    """What the engine remembers of a try it handed to an executor."""

    record: TaskRecord
    executor: BaseExecutor
    handed_at: float  # monotonic
    started_at: float | None = None  # monotonic
    no_retry: bool = False  # an operator killed it: do not retry
    kill_reason: str | None = None
    restart: str | None = None  # cleared by an operator while in flight: a new try follows (why)


class EngineCallbackSink:
    """Where executors' ``send_callback`` requests go: the engine's message log."""

    def __init__(self, engine: Engine, executor_name: str) -> None:
        self.engine = engine
        self.executor_name = executor_name

    def send(self, request: Any) -> None:
        self.engine.note(f"callback from executor {self.executor_name}: {request}")


@dataclass
class EngineStats:
    ticks: int = 0
    dispatched: int = 0
    finished: int = 0
    finished_times: deque[float] = field(default_factory=lambda: deque(maxlen=4096))


class Engine:
    """Hosts executors in-process and keeps the store and them in step.

    Args:
        store: the store this engine owns (it takes the lease in ``start``).
        executors: configured executors by name; the first is the default.
        logs_dir: where each try's log file goes.
        tick_interval: seconds between store ticks when nothing else prompts one.
        queued_timeout: seconds a try may wait in an executor before it is revoked.
        queued_retry_limit: how many times a revoked try is handed out again.
        keep_parallelism: the executors' parallelism was chosen for this engine
            (``--parallelism``): it wins over the one an operator last set live
            on the store, and becomes the live setting.
    """

    def __init__(
        self,
        store: Store,
        executors: dict[str, BaseExecutor],
        *,
        logs_dir: str | os.PathLike[str],
        tick_interval: float = 0.05,
        queued_timeout: float = 600.0,
        queued_retry_limit: int = 2,
        clock: Callable[[], pendulum.DateTime] | None = None,
        keep_parallelism: bool = False,
    ) -> None:
        if not executors:
            raise ValueError("an engine needs at least one executor")
        self.store = store
        self.executors = executors
        self.logs_dir = Path(logs_dir)
        self._logs_prefix = os.path.join(str(self.logs_dir), "")
        self.tick_interval = tick_interval
        self.queued_timeout = queued_timeout
        self.queued_retry_limit = queued_retry_limit
        self.keep_parallelism = keep_parallelism
        self.clock = clock or (lambda: pendulum.now("UTC"))
        self.in_flight: dict[TaskKey, InFlight] = {}
        self.paused = False
        # Held (not persisted, unlike paused): dispatch waits until whoever
        # started this engine is ready to watch, e.g. the console's first screen.
        self.held = False
        self.draining = False
        self.stats = EngineStats()
        self.messages: deque[str] = deque(maxlen=200)
        self._requests = RequestHandler(self)
        self._calls: deque[Callable[[], None]] = deque()
        self._stop = threading.Event()
        self._dump_requested = False
        self._last_lease_renewal = 0.0
        self._last_store_tick = float("-inf")  # the first tick is due at once, whatever the clock
        self._last_forget = 0.0
        self._last_unhosted_check = 0.0
        self._unhosted_noted: set[str] = set()
        # Set by a store tick after which the next one should come soon; see
        # _wants_follow_up.
        self._follow_up = False
        self._started = False
        self.started_at: str | None = None  # when start() took the lease (ISO-8601 UTC)

    # ---- lifecycle ---------------------------------------------------------
    @property
    def default_executor(self) -> BaseExecutor:
        return next(iter(self.executors.values()))

    @property
    def started(self) -> bool:
        """Whether ``start`` has run (and ``shutdown`` has not)."""
        return self._started

    def start(self) -> None:
        """Take the store's lease, start executors, recover what a dead engine left."""
        # Before anything else: SIGUSR2's default action would kill the process.
        self._install_debug_signal()
        self.store.acquire_lease()
        self.started_at = self.store.now()
        try:
            settings = self.store.get_setting
            batch = Batch()
            self.paused = bool(settings(SETTING_PAUSED, False))
            if self.paused:
                self.note(
                    "dispatch is paused on this store (`execconsole pause`): "
                    "nothing new starts until `execconsole resume`"
                )
            for name, executor in self.executors.items():
                if executor.supports_live_scaling:
                    self._settle_parallelism(name, executor, settings, batch)
                executor.callback_sink = EngineCallbackSink(self, name)
                executor.start()
            recover_in_flight(self, batch)
            self._resume_operator_kills()
            self.store.commit(batch)
            self._forget_finished()
        except BaseException:
            self.store.release_lease()
            raise
        self._started = True

    def _resume_operator_kills(self) -> None:
        """Kill again the adopted tries an operator was killing when the last engine died.

        That engine's kill died with it (its SIGKILL after the grace, or the
        whole kill), and the try would run on. A try killed for good ends
        without a retry; one a clear was killing gets the new try the clear
        promised once it has ended (``finish``).
        """
        for key, flight in self.in_flight.items():
            asked = self.store.kill_asked(flight.record)
            if asked is None:
                continue
            actor, why = asked
            if actor == RESTART_ACTOR:
                flight.restart = why
                kill_reason = f"killed: {why}"
            else:
                flight.no_retry = True
                kill_reason = why
            if flight.executor.supports_kill:
                flight.kill_reason = kill_reason
                if not flight.executor.kill(key):
                    # It runs on: a restart's new try still follows when it
                    # ends; a kill for good is the operator's to ask again.
                    flight.kill_reason = None
                    flight.no_retry = False

    def _settle_parallelism(
        self,
        name: str,
        executor: BaseExecutor,
        settings: Callable[[str, Any], Any],
        batch: Batch,
    ) -> None:
        """Which parallelism an executor starts with: the live setting, unless chosen for this engine."""
        stored = settings(parallelism_setting(name), None)
        if self.keep_parallelism:
            # Stored even on a store that had none: a console attached from
            # another process reads the engine's parallelism there, and its
            # +/- step from it (without it, it showed its own default, and +
            # on an engine at 5 asked for 3).
            if stored is None or int(stored) != executor.parallelism:
                batch.set_setting(parallelism_setting(name), executor.parallelism)
            return
        if stored is not None and int(stored) != executor.parallelism:
            executor.parallelism = int(stored)
            self.note(
                f"parallelism of {name} is {int(stored) or 'unlimited'}, as last set live on this store "
                "(`execconsole parallelism N` changes it; --parallelism overrides it)"
            )

    def drain(self) -> None:
        """Stop dispatching; tries handed out but not started go back to the store, as on pause."""
        self.draining = True
        batch = Batch()
        for executor in self.executors.values():
            self.return_backlog(executor, batch)
        self.store.commit(batch)

    def _install_debug_signal(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        try:
            signal.signal(signal.SIGUSR2, lambda *_: setattr(self, "_dump_requested", True))
        except (ValueError, OSError):  # not the main interpreter thread
            pass

    def request_stop(self) -> None:
        """Ask ``run`` to return after the current iteration (thread- and signal-safe)."""
        self._stop.set()

    def call_soon(self, function: Callable[[], None]) -> None:
        """Run ``function`` on the engine's thread at the start of the next iteration."""
        self._calls.append(function)

    def shutdown(self, mode: str = "finish", timeout: float = 10.0) -> None:
        """Stop the executors and give up the lease.

        mode "finish": let running tries end (bounded by ``timeout``) and record them;
        mode "kill": kill running tries (they fail, without retry) and stop at once;
        mode "detach": leave running tries alone for the next engine to adopt.
        """
        if not self._started:
            return
        try:
            batch = Batch()
            for executor in self.executors.values():
                self.return_backlog(executor, batch)
            self.store.commit(batch)
            if mode == "kill":
                for flight in list(self.in_flight.values()):
                    flight.no_retry = True
                    flight.kill_reason = "killed: the engine was told to stop and kill"
                for executor in self.executors.values():
                    executor.terminate()
            elif mode == "finish":
                for executor in self.executors.values():
                    executor.end(timeout=timeout)
                    # Whatever outlived the grace period is killed: shutdown is bounded.
                    executor.terminate()
            else:
                for executor in self.executors.values():
                    executor.detach()
            if mode != "detach":
                self.store_tick(dispatch=False)
        finally:
            self.store.release_lease()
            self._started = False

    def return_backlog(self, executor: BaseExecutor, batch: Batch) -> None:
        """Give back tries the executor holds but never started, so they stay scheduled."""
        # Prefetched tries wait at the workers; they are taken back too, unless a
        # worker has already claimed one (then it runs and is recorded as usual).
        for key in [*executor.queued_tasks, *executor.prefetched()]:
            if not executor.dequeue(key):
                continue
            flight = self.in_flight.pop(key, None)
            if flight is not None:
                batch.transition(
                    flight.record,
                    TaskState.SCHEDULED,
                    actor="engine",
                    reason="given back before it started",
                    token=None,
                    queued_at=None,
                )

    # ---- the loop ------------------------------------------------------------
    def run(
        self, *, until_idle: bool = False, on_tick: Callable[[Engine], None] | None = None
    ) -> None:
        """Run until ``request_stop`` (or, with ``until_idle``, until no try is unfinished)."""
        while not self._stop.is_set():
            self.iterate()
            if on_tick is not None:
                on_tick(self)
            if until_idle and not self.in_flight and not self.store.has_unfinished(self.executors):
                break
            if self.draining and not self.in_flight:
                break

    def iterate(self) -> None:
        """One pass: run queued calls, heartbeat executors, a store tick when due, then wait."""
        while self._calls:
            self._calls.popleft()()
        for executor in self.executors.values():
            executor.heartbeat()
        now = time.monotonic()
        if self._store_tick_due(now):
            self.store_tick()
            followed_up = self._follow_up and self._dispatching
            if followed_up:
                # Tries it made ready start now, not a tick later (at most one
                # follow-up a pass, and only after a tick that made tries ready).
                self.store_tick()
            for executor in self.executors.values():
                executor.heartbeat()
            if followed_up:
                return  # and the host looks at once: the run may have just ended
        self._wait(now)

    @property
    def _dispatching(self) -> bool:
        """Whether a store tick may hand out new tries now."""
        return not self.paused and not self.draining and not self.held

    def _forget_finished(self) -> None:
        """Let executors drop what they keep for tries whose outcome is now committed."""
        self._last_forget = time.monotonic()
        for executor in self.executors.values():
            tokens = {
                flight.record.token
                for flight in self.in_flight.values()
                if flight.executor is executor and flight.record.token
            }
            executor.forget_finished(tokens)

    def _backlog_low(self) -> bool:
        """Some executor has finished work to record and little left to start."""
        return any(
            executor.event_buffer and len(executor.queued_tasks) < max(1, executor.parallelism)
            for executor in self.executors.values()
        )

    def _store_tick_due(self, now: float) -> bool:
        since = now - self._last_store_tick
        if since >= self.tick_interval:
            return True
        # Fast tasks: refill a running-dry backlog without waiting a whole tick,
        # but never more often than every 2 ms, so the store is not hammered.
        return since >= 0.002 and self._dispatching and (self._follow_up or self._backlog_low())

    def _wait(self, since: float) -> None:
        """Sleep until an executor has news or the next store tick is due."""
        timeout = max(0.0, self._last_store_tick + self.tick_interval - time.monotonic())
        if self._follow_up or self._backlog_low():
            timeout = min(timeout, 0.002)
        if timeout <= 0:
            return
        if len(self.executors) == 1:
            [executor] = self.executors.values()
            if executor.wait_handles():
                # Its own poller: no selector built and torn down every iteration.
                executor.wait_for_events(timeout)
                return
        handles = [
            handle for executor in self.executors.values() for handle in executor.wait_handles()
        ]
        if handles:
            wait_for_handles(handles, timeout=timeout)
        else:
            self._stop.wait(timeout)

    # ---- the store tick --------------------------------------------------------
    def store_tick(self, *, dispatch: bool = True) -> None:
        """Everything that touches the store, committed as one transaction."""
        now_mono = time.monotonic()
        self._last_store_tick = now_mono
        self.stats.ticks += 1
        finished_before = self.stats.finished
        batch = Batch()
        now = self.clock()
        for executor in self.executors.values():
            for key, (state, report) in executor.get_event_buffer().items():
                self._record_event(batch, key, state, report, now)
            for key, message in executor.get_task_event_logs():
                flight = self.in_flight.get(key)
                if flight is not None:
                    batch.note(flight.record, f"executor:{executor.executor_name}", message)
        before_requests = len(batch.transitions)
        self._requests.handle_pending(batch)
        # Tries an operator just ended (a kill, a cancel, a mark) are still
        # scheduled in the store until this tick commits: not to be picked now.
        settled = {t.record.id for t in batch.transitions[before_requests:]}
        self._enforce_timeouts(batch, now_mono)
        if now_mono - self._last_lease_renewal >= LEASE_RENEW_SECONDS:
            batch.renew_lease = True
            self._last_lease_renewal = now_mono
        handoffs: list[tuple[BaseExecutor, Workload]] = []
        if dispatch and self._dispatching:
            handoffs = self._pick_ready(batch, now, settled)
        self.store.commit(batch)
        if batch.forgotten:
            forget_logs(self.logs_dir, batch.forgotten)
        self._follow_up = self._wants_follow_up(batch, self.stats.finished > finished_before)
        if now_mono - self._last_forget >= FORGET_FINISHED_SECONDS:
            self._forget_finished()
        if now_mono - self._last_unhosted_check >= UNHOSTED_CHECK_SECONDS:
            self.unhosted_waiting()
        # Only now, with each token durable in the store, may executors see them.
        for executor, workload in handoffs:
            executor.queue_workload(workload)
        self.stats.dispatched += len(handoffs)
        if self._dump_requested:
            self._dump_requested = False
            log.warning("%s", self.debug_dump())

    def _wants_follow_up(self, batch: Batch, finished_some: bool) -> bool:
        """Whether the tick just committed may have made work the next one should see soon.

        Tries become ready in a commit (their last upstream succeeded, a
        retry was scheduled), after this tick picked what was ready, so
        without a follow-up the next try of a chain waited for the next
        regular tick: up to ``tick_interval`` (50 ms) a link. And when the
        last try in flight has ended, the host should get to ask whether the
        run is over without waiting out a tick either. Runs of independent
        tasks set neither, and a fan-in only with its last upstream: both
        keep ticking at the pace their reports set.
        """
        if batch.made_ready or batch.revive:
            return True
        if any(entry[1] is None for entry in batch.new_tries):  # (record, not_before, ...)
            return True
        return finished_some and not self.in_flight

    def _backlog_target(self, executor: BaseExecutor) -> int:
        """How many handed-out, not-yet-started tries to keep at an executor.

        Enough to cover a store tick at the recent completion rate (so fast tasks
        never wait for the store), at least twice the parallelism, and never so
        many that slow tasks sit where the operator cannot reorder them.
        """
        if not executor.parallelism:
            return MAX_HANDOFF_PER_TICK
        cutoff = time.monotonic() - 1.0
        # finished_times is in time order: count the last second's by bisection,
        # not by walking up to 4,096 entries on every tick.
        finished = self.stats.finished_times
        recent_per_second = len(finished) - bisect.bisect_left(finished, cutoff)
        per_tick = int(recent_per_second * self.tick_interval * 3)
        return min(max(executor.parallelism * 2, per_tick), MAX_HANDOFF_PER_TICK)

    def _pick_ready(
        self,
        batch: Batch,
        now: pendulum.DateTime,
        settled: set[int] = frozenset(),  # type: ignore[assignment]
    ) -> list[tuple[BaseExecutor, Workload]]:
        handoffs = []
        now_iso = now.to_iso8601_string()
        for name, executor in self.executors.items():
            room = self._backlog_target(executor) - len(executor.queued_tasks)
            if room <= 0:
                continue
            for record in self.store.ready(name, room, now_iso):
                if settled and record.id in settled:
                    continue
                token = os.urandom(16).hex()  # uuid4().hex's randomness, without building a UUID
                log_path = self.log_path_for(record)
                batch.transition(
                    record,
                    TaskState.QUEUED,
                    actor="engine",
                    token=token,
                    queued_at=now_iso,
                    log_path=log_path,
                )
                queued = evolve(
                    record,
                    state=TaskState.QUEUED,
                    token=token,
                    queued_at=now_iso,
                    log_path=log_path,
                )
                self.in_flight[queued.key] = InFlight(queued, executor, time.monotonic())
                handoffs.append((executor, self.workload_for(queued)))
        return handoffs

    def log_path_for(self, record: TaskRecord) -> str:
        """``<logs>/<dag>/<run>/<task>[.<map>].<try>.log``: one folder per run, not per task,
        so starting a task never costs a mkdir."""
        task = record.task_id if record.map_index < 0 else f"{record.task_id}.{record.map_index}"
        if record.dag_id in (".", "..") or record.run_id in (".", ".."):
            # Let pathlib decide what such names mean, as it always has.
            return str(
                self.logs_dir / record.dag_id / record.run_id / f"{task}.{record.try_number}.log"
            )
        # Ids never hold "/", so joining strings gives what pathlib gives, several times sooner.
        return f"{self._logs_prefix}{record.dag_id}/{record.run_id}/{task}.{record.try_number}.log"

    @staticmethod
    def workload_for(record: TaskRecord) -> Workload:
        env = dict(record.env)
        env.update(
            EXECCONSOLE_DAG_ID=record.dag_id,
            EXECCONSOLE_TASK_ID=record.task_id,
            EXECCONSOLE_RUN_ID=record.run_id,
            EXECCONSOLE_MAP_INDEX=str(record.map_index),
            EXECCONSOLE_TRY_NUMBER=str(record.try_number),
        )
        return Workload(
            key=record.key,
            command=list(record.command),
            log_path=record.log_path or "",
            token=record.token or "",
            env=env,
            cwd=record.cwd,
            timeout=record.timeout,
            shell=record.shell,
            priority=record.priority,
            queue=record.queue,
        )

    # ---- events from executors ---------------------------------------------------
    def _record_event(
        self,
        batch: Batch,
        key: TaskKey,
        state: TaskState,
        report: TaskReport | None,
        now: pendulum.DateTime,
    ) -> None:
        flight = self.in_flight.get(key)
        record = flight.record if flight is not None else self.store.get(key)
        if record is None:
            log.error("event for unknown try %s (%s) ignored", key, state)
            return
        if record.state.is_finished:
            log.info("late event %s for %s, already %s; ignored", state, key, record.state)
            self.in_flight.pop(key, None)
            return
        actor = f"executor:{flight.executor.executor_name}" if flight else "executor"
        if state == TaskState.RUNNING:
            fields = self._running_fields(report, now)
            batch.transition(record, TaskState.RUNNING, actor=actor, **fields)
            if flight is not None:
                flight.record = evolve(record, state=TaskState.RUNNING, **fields)
                flight.started_at = time.monotonic()
            return
        if record.state == TaskState.QUEUED:
            # Started and finished within one tick: keep the audit trail whole.
            fields = self._running_fields(report, now)
            batch.transition(record, TaskState.RUNNING, actor=actor, **fields)
            record = evolve(record, state=TaskState.RUNNING, **fields)
        self.finish(batch, record, state, report, now, actor=actor, flight=flight)

    @staticmethod
    def _running_fields(report: TaskReport | None, now: pendulum.DateTime) -> dict[str, Any]:
        report = report or TaskReport()
        return {
            "pid": report.pid,
            "pid_create_time": report.pid_create_time,
            "hostname": report.hostname,
            "worker": report.worker,
            "start_date": report.started_at or now.to_iso8601_string(),
        }

    def finish(
        self,
        batch: Batch,
        record: TaskRecord,
        state: TaskState,
        report: TaskReport | None,
        now: pendulum.DateTime,
        *,
        actor: str,
        flight: InFlight | None = None,
    ) -> None:
        """Record how a try ended and apply the retry policy."""
        report = report or TaskReport()
        ended = report.ended_at or now.to_iso8601_string()
        started = report.started_at or record.start_date
        duration = None
        if started:
            duration = max(0.0, seconds_between(started, ended))
        reason = report.reason
        no_retry = record.no_retry
        restart = flight.restart if flight is not None else None
        if flight is None:
            # A try a dead engine left, finished by recovery: an operator's kill
            # of it, if that engine was carrying one out, is in its audit log.
            asked = self.store.kill_asked(record)
            if asked is not None and asked[0] == RESTART_ACTOR:
                restart = asked[1]
            elif asked is not None and state != TaskState.SUCCESS:
                reason, no_retry = asked[1], True
        elif flight.kill_reason and state != TaskState.SUCCESS:
            reason = flight.kill_reason
            no_retry = no_retry or flight.no_retry
        fields: dict[str, Any] = {
            "end_date": ended,
            "duration": duration,
            "exit_code": report.exit_code,
            "signal": report.signal,
            "no_retry": int(no_retry),
        }
        # How this try ended is its reason now: an earlier note (such as
        # "handed out again") must not read as the outcome of a success.
        fields["clear_reason"] = reason is None and record.reason is not None
        if report.pid is not None:
            fields["pid"] = report.pid
        if restart and not no_retry:
            # Cleared while it ran (Airflow's "restarting"): however it ended, a
            # new try follows, whatever its retries, and waits for its upstreams.
            ended = TaskState.SUCCESS if state == TaskState.SUCCESS else TaskState.UP_FOR_RETRY
            batch.transition(record, ended, actor=actor, reason=reason, **fields)
            batch.new_try(record, actor="operator", reason=restart, fresh_retries=True)
        elif state == TaskState.SUCCESS:
            batch.transition(record, TaskState.SUCCESS, actor=actor, reason=reason, **fields)
        elif not no_retry and record.retries_left > 0:
            delay = record.retry_delay
            not_before = now.add(seconds=delay).to_iso8601_string() if delay else None
            batch.transition(record, TaskState.UP_FOR_RETRY, actor=actor, reason=reason, **fields)
            batch.new_try(
                record,
                actor="engine",
                not_before=not_before,
                reason=f"retry {record.try_number - record.retry_base} of {record.retries}"
                + (f" in {delay:g}s" if delay else ""),
            )
        else:
            batch.transition(record, TaskState.FAILED, actor=actor, reason=reason, **fields)
        self.in_flight.pop(record.key, None)
        self.stats.finished += 1
        self.stats.finished_times.append(time.monotonic())

    # ---- timeouts ------------------------------------------------------------------
    def _enforce_timeouts(self, batch: Batch, now_mono: float) -> None:
        now = self.clock()
        for key, flight in list(self.in_flight.items()):
            record = flight.record
            executor = flight.executor
            if (
                record.state == TaskState.RUNNING
                and record.timeout
                and flight.started_at is not None
            ):
                overdue = now_mono - flight.started_at - record.timeout
                if (
                    overdue > TIMEOUT_BACKSTOP_SECONDS
                    and executor.supports_kill
                    and not flight.kill_reason
                ):
                    flight.kill_reason = f"timed out after {record.timeout:g}s"
                    try:
                        executor.kill(key)
                    except Exception as error:  # an executor bug must not stop the engine
                        log.error("could not kill %s on timeout: %s", key, error)
            elif (
                record.state == TaskState.QUEUED
                and now_mono - flight.handed_at > self.queued_timeout
            ):
                self._revoke_stuck_queued(batch, flight, now)

    def _revoke_stuck_queued(self, batch: Batch, flight: InFlight, now: pendulum.DateTime) -> None:
        record, executor = flight.record, flight.executor
        # Asked first: a dequeue makes the executor forget the try.
        why = executor.queued_reason(record.key)
        because = f"; {why}" if why else ""
        if executor.dequeue(record.key):
            self.in_flight.pop(record.key, None)
            if record.requeues < self.queued_retry_limit:
                batch.transition(
                    record,
                    TaskState.SCHEDULED,
                    actor="engine",
                    token=None,
                    queued_at=None,
                    requeues=record.requeues + 1,
                    reason=f"queued for over {self.queued_timeout:g}s; handed out again "
                    f"({record.requeues + 1} of {self.queued_retry_limit}){because}",
                )
            else:
                handed = record.requeues + 1
                times = "once" if handed == 1 else f"{handed} times"
                batch.transition(
                    record,
                    TaskState.FAILED,
                    actor="engine",
                    end_date=now.to_iso8601_string(),
                    reason=f"stuck in queued: handed out {times} and never started, giving up{because}",
                )
        elif executor.supports_kill and not flight.kill_reason:
            # Started by the executor but never reported running: revoke it there;
            # its FAILED event then takes the normal retry path.
            flight.kill_reason = (
                f"revoked: queued for over {self.queued_timeout:g}s without starting"
            )
            try:
                executor.kill(record.key)
            except Exception as error:
                log.error("could not revoke %s: %s", record.key, error)
            flight.handed_at = time.monotonic()

    # ---- views ------------------------------------------------------------------------
    def gauges(self) -> dict[str, int]:
        result: dict[str, int] = {}
        for executor in self.executors.values():
            result.update(executor.gauges())
        return result

    def debug_dump(self) -> str:
        lines = [
            f"engine pid {os.getpid()} store {self.store.path}: paused={self.paused} draining={self.draining} "
            f"in flight {len(self.in_flight)}, ticks {self.stats.ticks}, dispatched {self.stats.dispatched}, "
            f"finished {self.stats.finished}"
        ]
        lines += [executor.debug_dump() for executor in self.executors.values()]
        return "\n".join(lines)

    def unhosted_waiting(self) -> dict[str, int]:
        """Unfinished tries for executors this engine does not host, by executor; noted once each.

        The store may hold tries for an executor configured elsewhere (another
        engine's ``--executor``, a config changed since): this engine never
        starts them, and without a word they would just wait.
        """
        self._last_unhosted_check = time.monotonic()
        unhosted = self.store.unfinished_by_executor(besides=self.executors)
        for name, count in unhosted.items():
            if name not in self._unhosted_noted:
                self._unhosted_noted.add(name)
                tries = "try waits" if count == 1 else "tries wait"
                self.note(
                    f"{count} {tries} for executor {name!r}, which this engine does not host "
                    f"(it hosts {', '.join(self.executors)}): start an engine with it, "
                    f"e.g. `execconsole scheduler --executor {name}`"
                )
        return unhosted

    def hosted_unfinished(self) -> int:
        """Unfinished tries this engine's executors could run (started or not)."""
        counts = self.store.unfinished_by_executor()
        return sum(count for name, count in counts.items() if name in self.executors)

    def note(self, message: str) -> None:
        """A message for the operator (shown by the console, logged by the scheduler)."""
        log.info("%s", message)
        self.messages.append(message)
