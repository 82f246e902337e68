"""CeleryExecutor: tries run on Celery workers, possibly on other machines, through Redis.

::

    heartbeat ─► trigger_tasks ─► execute_async: into the outbox
              └► sync ─┬─► flush the outbox: pipelined publishes, 500 a round trip ──► queues
                       │                                                                │
                       │                                 workers BRPOP, claim, run, renew leases
                       │                                                                │
                       └─► one MGET: epoch key, result of every try sent,             │
                           lease of every claimed try ◄─────────────────────────────────┘
                              └─► running / success / failed into the event buffer

    worker stores a try's outcome ─► PUBLISH <prefix>:finished ─► notices thread ─► pipe
                                     (the pipe is wait_handles(): the engine wakes at once)

When ``sync`` reads: every ``poll_interval``, and sooner once a worker
announced a finished try; never more often than a read's own cost allows
(the CPU time the last read took, times ``1 / READ_BUDGET``, at most
``MAX_READ_GAP``), so a read of thousands of tries in flight is not
repeated every few milliseconds.

What guards what:

- A Celery task id is the try's token. Workers claim the token in Redis before
  starting (claims.py), so anything delivered twice runs once.
- A claimed try whose worker died stops renewing its lease; once the lease
  has been gone for ``lease_seconds`` while Redis answered, the try is failed
  into the engine's retry policy ("worker lost").
- If Redis does not answer when the executor starts, ``start`` raises
  BrokerUnreachable (one line for the operator): a host must not take tries
  it cannot send.
- If Redis becomes unreachable later, nothing changes state: unsent tries wait in the
  outbox, ``broker_ok`` turns False with a one-line message for the panel (and
  one note for the engine), and both are retried about once a second until
  Redis answers.
- If Redis *hangs* (a call times out: it accepts connections but never
  replies), the engine's thread makes no further call to it, since each would
  wait out the socket timeout and hold up every executor the engine hosts: a
  probe (probe.py) PINGs it from a thread of its own, and sending and reading
  resume once it answers. Meanwhile kills and take-backs of tries sent to
  Redis are refused, as they are while Redis refuses connections, and stopping
  leaves those tries in the store for the next engine to adopt.
- A killed try (or one Celery calls REVOKED) ends when its worker says so:
  Celery writes REVOKED the moment it signals the pool process, while the
  worker is still stopping the try's tree; the worker's outcome, stored once
  the tree is gone, is the end the engine is told (or the lease's expiry, if
  that worker died). So a new try of the task never runs beside the old one.
- A try no worker has claimed can be taken back (``dequeue``): its claim is
  revoked, so the message is dropped by whichever worker reads it. The engine
  does this to a try queued past ``queued_timeout`` and hands it out again, at
  most ``queued_retry_limit`` times.
- If Redis comes back without its data (the ``epoch`` key vanished), tries not
  known to be claimed are sent again once running workers have had time to
  re-assert their claims; the claim check drops any copy that survived.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import os
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, cast

import redis

from executors.base import Adoption, AdoptionOutcome, AdoptionRecord, BaseExecutor, TaskLog
from executors.celery.app import TASK_NAME, CeleryApp, make_app, redis_client, socket_timeout
from executors.celery.claims import (
    CLAIMED,
    FINISHED,
    REVOKED,
    STARTED,
    RedisClaims,
    decode_record,
)
from executors.celery.keys import RedisKeys
from executors.celery.log_tail import LogTails
from executors.celery.notices import FinishNotices
from executors.celery.probe import AnswerProbe, timed_out
from executors.celery.settings import CelerySettings, declared_options, unreachable_message
from executors.celery.task_meta import read_meta, succeeded
from executors.loader import ExecutorConfigError
from executors.options import ExecutorOption
from executors.state import TaskState
from executors.task_key import TaskKey
from executors.vended import CliGroup, ConsolePanel, KeyBinding
from executors.workload import TaskReport, Workload

if TYPE_CHECKING:
    # Imported when first used (the Celery tab, its keys): not on the engine's way to its first try.
    from executors.celery.cluster import ClusterInspector, ClusterSnapshot

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0
"""While Redis is unreachable, how often sends and state reads are tried again."""

PUBLISH_BATCH = 500
"""Messages per pipelined publish at most; a failed batch is sent again whole."""

FIRST_PUBLISH_BATCH = 16
"""The first batch of a flush is this small, and each next one twice as big (up to
PUBLISH_BATCH), so workers start on the first tries while the rest are encoded."""

READ_BUDGET = 0.03
"""At most this share of the engine's time goes to reading states: after a read
that cost t seconds of this thread's CPU, the next waits at least t / READ_BUDGET..."""

MAX_READ_GAP = 1.0
"""...but never more than this many seconds."""

# KEYS: a queue's Redis lists (kombu keeps one per priority step).
# ARGV: tokens (Celery task ids) whose messages are to go.
# kombu stores each message as JSON whose headers name the task id as
# "id": "<token>" (the body is base64); a message naming one of the tokens
# is overwritten with a marker, and the markers removed in one LREM a list.
_REMOVE_MESSAGES = """
local wanted = {}
for _, token in ipairs(ARGV) do wanted[token] = true end
local marker = '\0execconsole:removed'
local removed = 0
for _, list in ipairs(KEYS) do
  local found = false
  for i, item in ipairs(redis.call('LRANGE', list, 0, -1)) do
    local id = string.match(item, '"id": "([^"]+)"')
    if id and wanted[id] then
      redis.call('LSET', list, i - 1, marker)
      found = true
      removed = removed + 1
    end
  end
  if found then redis.call('LREM', list, 0, marker) end
end
return removed
"""

_WORKLOAD_FIELDS = tuple(Workload.__dataclass_fields__)

LOST_WITH_REDIS_DATA = "lost: Redis has no record of it (its data was lost); it had started"
"""Why an adopted try the store saw start, of which Redis keeps nothing, is failed."""


class BrokerUnreachable(ExecutorConfigError):
    """Redis did not answer when the executor started; the message names the URL and what to do.

    An ExecutorConfigError because, like a bad option, it is the configured
    broker that cannot be used: hosts report it the same way (the CLI prints
    the one line and exits 2) without knowing about Celery.
    """


def workload_message(workload: Workload) -> dict[str, Any]:
    """``Workload.to_json()`` without its deep copy: the dict is serialised at once."""
    data = {name: getattr(workload, name) for name in _WORKLOAD_FIELDS}
    data["key"] = list(workload.key)
    return data


@dataclass(slots=True)
class _Flight:
    """A try handed to this executor and not yet finished."""

    key: TaskKey
    token: str
    workload: Workload | None  # None for tries adopted from a previous engine
    sent: bool = False
    raw_meta: bytes | None = None
    reported_running: bool = False
    claimed: bool = False  # known to be claimed by a worker, so its lease is watched
    lease_missing_since: float | None = None
    kill_requested: bool = False
    watch_claim: bool = False
    """Its claim is read with its result: a kill was sent, or Celery said REVOKED
    or WorkerLostError. Celery's REVOKED comes when it *signals* the try, its
    WorkerLostError when it reaps a dead pool process; either way the try's tree
    may still be dying, and the claim's FINISHED record (written by the worker
    once that tree is gone) is the end."""
    lost_reason: str | None = None
    """Celery's WorkerLostError, as a reason: the end reported if the claim never finishes."""


class CeleryExecutor(BaseExecutor):
    """Runs each try as a Celery task on the queue its workload names."""

    name: ClassVar[str] = "celery"
    # Its options are its settings' fields (which check their own ranges).
    option_specs: ClassVar[Mapping[str, ExecutorOption]] = declared_options()
    is_local: ClassVar[bool] = False
    is_single_threaded: ClassVar[bool] = False
    is_production: ClassVar[bool] = True
    serve_logs: ClassVar[bool] = False
    supports_kill: ClassVar[bool] = True
    supports_live_scaling: ClassVar[bool] = False
    supports_adoption: ClassVar[bool] = True

    def __init__(
        self,
        parallelism: int = 0,
        *,
        name: str | None = None,
        home: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(parallelism, name=name, home=home, options=options)
        self.settings = CelerySettings.load(self.options, executor=self.executor_name)
        self.keys = RedisKeys(self.settings.key_prefix)
        self.broker_ok = True
        """False while Redis cannot be reached; ``broker_message`` says why."""
        self.broker_message = ""
        self._flights: dict[TaskKey, _Flight] = {}
        self._outbox: deque[TaskKey] = deque()
        self._queues_used: set[str] = {self.settings.default_queue}
        # Those already named in Redis (RedisKeys.queues) for a console in
        # another process; the default queue every console knows from config.
        self._queues_recorded: set[str] = {self.settings.default_queue}
        self._retry_at = 0.0
        self._next_read = 0.0
        self._next_claim_probe = time.monotonic() + self.settings.lease_seconds
        self._last_read = 0.0
        self._read_gap = 0.0
        self._notified = False
        self._notices: FinishNotices | None = None
        self._epoch: bytes | None = None
        self._recheck_wiped_at: float | None = None
        self._app: CeleryApp | None = None
        self._client: redis.Redis | None = None
        self._claims: RedisClaims | None = None
        self._tails: LogTails | None = None
        self._cluster: ClusterInspector | None = None
        self._broker: redis.Redis | None = None
        """A client of the broker's Redis when it is not the backend's (``_client``)."""
        self._told_refusal = False
        self._probe = AnswerProbe(self._probe_clients, interval=RETRY_SECONDS)
        """Says when a Redis that hung answers again; until then no call is made to it here."""
        self._taken_back: defaultdict[str, set[str]] = defaultdict(set)
        """Tokens of tries revoked before they started, by queue: their messages are
        removed from the queue at the next ``sync`` (see ``_remove_taken_back``)."""

    # ---- lifecycle --------------------------------------------------------
    def start(self) -> None:
        """Build the Celery app and the Redis clients, and make sure Redis answers.

        Raises:
            BrokerUnreachable: the broker's (or the result backend's) Redis did
                not answer. Started anyway, the host would take tries and keep
                them unsent for as long as Redis stays away, with nothing
                telling the operator why the run does not move. An outage
                *after* start is ridden out instead (see ``sync``).
        """
        self._connect()
        try:
            self._check_reachable()
        except BrokerUnreachable:
            self._release()
            raise
        self._notices = FinishNotices(
            lambda: redis_client(
                self.settings,
                self.settings.backend_url,
                f"execconsole-notices-{self.executor_name}",
            ),
            self.keys.finished_channel,
        )
        self._notices.start()

    def _check_reachable(self) -> None:
        """One round trip to each Redis in use (the backend's also sets the epoch key)."""
        settings = self.settings
        url = settings.backend_url
        try:
            self._epoch = self._ensure_epoch()
            if settings.broker_url != settings.backend_url:
                url = settings.broker_url
                probe = redis_client(settings, url, f"execconsole-probe-{self.executor_name}")
                try:
                    probe.ping()
                finally:
                    probe.close()
        except redis.RedisError as error:
            section = (
                "[celery]" if self.executor_name == "celery" else f"[executor.{self.executor_name}]"
            )
            raise BrokerUnreachable(
                f"executor {self.executor_name!r}: {unreachable_message(settings, url, error, section)}"
            ) from None

    def end(self, timeout: float = 10.0) -> None:
        """Wait (up to ``timeout``) for tries in flight to report, then let go of connections.

        Tries still running when the time is up go on running on their
        workers; the next engine adopts them by token.
        """
        deadline = time.monotonic() + timeout
        while self.running and time.monotonic() < deadline:
            self.sync()
            time.sleep(0.2)
        self._remove_taken_back_before_release()
        self._release()

    def terminate(self) -> None:
        """Kill every try in flight (best effort while Redis is reachable), then let go.

        A running try ends once its worker has stopped its tree (SIGTERM, then
        SIGKILL after the worker's grace): that end is waited for, a bounded
        time, so it is reported rather than left for the next engine.
        """
        left = 0
        for key, flight in list(self._flights.items()):
            if flight.sent and not self._probe.answering:
                # Each kill would be refused; one line says it for all of them.
                left += 1
                continue
            try:
                self.kill(key)
            except Exception:  # noqa: BLE001 - stopping the rest matters more
                log.exception("could not kill %s while terminating", key)
        if left:
            self._tell_engine(
                f"could not kill {left} {'try' if left == 1 else 'tries'} sent to Celery: "
                f"{self.broker_message}; the next engine adopts them"
            )
        from executors.supervisor import TERMINATE_GRACE_SECONDS

        deadline = time.monotonic() + 2 * TERMINATE_GRACE_SECONDS + self.settings.lease_seconds
        while (
            self.broker_ok
            and any(flight.kill_requested for flight in self._flights.values())
            and time.monotonic() < deadline
        ):
            self.sync()
            time.sleep(0.05)
        self._remove_taken_back_before_release()
        self._release()

    def _remove_taken_back_before_release(self) -> None:
        """One attempt at removing messages of tries taken back since the last ``sync``.

        Drained tries are taken back just before the engine ends its executors,
        and no ``sync`` may follow. If Redis refuses, the messages stay until
        a worker reads them or they expire; their tries never run either way.
        """
        if self._taken_back and self._app is not None and self._probe.answering:
            self._remove_taken_back()

    def _release(self) -> None:
        self._probe.close()
        if self._notices is not None:
            self._notices.close()
            self._notices = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None
        if self._client is not None:
            self._client.close()
        if self._broker is not None:
            self._broker.close()
            self._broker = None
        if self._app is not None:
            self._app.close()

    # ---- sending ----------------------------------------------------------
    def execute_async(self, key: TaskKey, workload: Workload) -> None:
        """Put the try in the outbox; ``sync`` publishes the outbox in pipelined batches."""
        self._flights[key] = _Flight(key=key, token=workload.token, workload=workload)
        self._outbox.append(key)
        if workload.queue not in self._queues_used:
            self._queues_used = self._queues_used | {workload.queue}

    def _flush_outbox(self) -> bool:
        """Publish waiting tries in order; False if Redis refused (they stay in the outbox)."""
        app = self._require_app()
        size = FIRST_PUBLISH_BATCH
        # No message outlives the revocation that may be written for it (a claim
        # living claim_ttl_seconds from when it is written, after this): a worker
        # that reads a message later finds it expired and drops it unrun.
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.settings.claim_ttl_seconds)
        while self._outbox:
            head = list(itertools.islice(self._outbox, size))
            size = min(size * 2, PUBLISH_BATCH)
            batch = [key for key in head if key in self._flights]
            try:
                with (
                    app.producer_or_acquire() as producer,
                    producer.batch(max_size=max(len(batch), 1)),
                ):
                    for key in batch:
                        workload = cast(Workload, self._flights[key].workload)
                        app.send_task(
                            TASK_NAME,
                            args=[workload_message(workload)],
                            # Where this executor watches the try's claim and lease:
                            # a worker keeping them elsewhere refuses it (task.py).
                            kwargs={"key_prefix": self.settings.key_prefix},
                            task_id=workload.token,
                            queue=workload.queue,
                            producer=producer,
                            retry=False,
                            expires=expires,
                            # What logs and monitors show for the arguments; also
                            # spares Celery a saferepr of the whole workload.
                            argsrepr=str(workload.key),
                            kwargsrepr="{}",
                        )
            except Exception as error:  # noqa: BLE001 - kombu wraps Redis errors several ways
                # Part of the batch may have reached Redis. Sending it all
                # again is safe: a copy finds the token claimed and is dropped.
                self._redis_failed("sending tries", error)
                return False
            for key in head:
                self._outbox.popleft()
                flight = self._flights.get(key)
                if flight is not None:
                    flight.sent = True
        return True

    # ---- reading states -----------------------------------------------------
    def sync(self) -> None:
        """Send what waits, then read every in-flight try's state in one MGET.

        Sending happens on every call. Reading happens every ``poll_interval``
        seconds, or sooner when a worker announced a finished try (the
        engine's wait handle), but never sooner than the last read's cost
        allows: each read costs Redis and this process time in proportion to
        the tries in flight, and the engine may beat hundreds of times a second.
        """
        now = time.monotonic()
        if self._notices is not None and self._notices.drain():
            self._notified = True
        if not self._probe.answering:
            return  # Redis hangs: a call would wait out the socket timeout (probe.py)
        if not self.broker_ok and now < self._retry_at:
            return
        if self._outbox and not self._flush_outbox():
            return
        if len(self._queues_recorded) != len(self._queues_used) and not self._record_queues():
            return
        if self._taken_back and not self._remove_taken_back():
            return
        since = now - self._last_read
        if since < self._read_gap:
            return
        if now < self._next_read and not self._notified:
            return
        self._notified = False
        self._next_read = now + self.settings.poll_interval
        self._last_read = now
        cpu_before = time.thread_time()
        sent = [flight for flight in self._flights.values() if flight.sent]
        # Leases matter only for tries known to be claimed: an unclaimed try
        # has none, and reading thousands of absent keys costs the client time.
        watched = [flight for flight in sent if flight.claimed]
        settling = [flight for flight in sent if flight.watch_claim]
        # Once a lease span, the claims of tries not known to be claimed: one
        # whose worker died in its quiet start (before it said RUNNING) is
        # claimed, and its lease is what tells that it is lost.
        probing: list[_Flight] = []
        if now >= self._next_claim_probe:
            self._next_claim_probe = now + self.settings.lease_seconds
            probing = [
                flight
                for flight in sent
                if not (flight.claimed or flight.watch_claim or flight.reported_running)
            ]
        names = [self.keys.epoch]
        names += [self.keys.meta(flight.token) for flight in sent]
        names += [self.keys.lease(flight.token) for flight in watched]
        names += [self.keys.claim(flight.token) for flight in settling]
        names += [self.keys.claim(flight.token) for flight in probing]
        try:
            values = cast(list[bytes | None], self._require_client().mget(names))
        except redis.RedisError as error:
            self._redis_failed("reading task states", error)
            return
        recovered = not self.broker_ok
        self._redis_answered()
        try:
            if self._epoch is None:
                self._epoch = self._ensure_epoch()  # never started (start sets it)
            elif values[0] != self._epoch:
                self._on_data_lost()
        except redis.RedisError as error:
            # Redis went away again just after answering: read again once it is back.
            self._redis_failed("checking Redis's data after an outage", error)
            return
        if recovered and values[0] == self._epoch:
            # Leases may have expired while Redis was away; count afresh.
            for flight in self._flights.values():
                flight.lease_missing_since = None
        metas = values[1 : len(sent) + 1]
        leases = values[len(sent) + 1 : len(sent) + 1 + len(watched)]
        claims_at = len(sent) + 1 + len(watched)
        claims = values[claims_at : claims_at + len(settling)]
        probed = values[claims_at + len(settling) :]
        for flight, raw_meta in zip(sent, metas, strict=True):
            self._read_state(flight, raw_meta)
        for flight, raw_claim in zip(settling, claims, strict=True):
            if self._flights.get(flight.key) is flight:
                self._read_claim(flight, raw_claim)
        for flight, lease in zip(watched, leases, strict=True):
            if self._flights.get(flight.key) is flight:
                self._check_lease(flight, lease is not None, now)
        for flight, raw_claim in zip(probing, probed, strict=True):
            record = decode_record(raw_claim)
            if record is not None and record.get("state") in (CLAIMED, STARTED):
                flight.claimed = True  # its lease is watched from the next read on
        if self._recheck_wiped_at is not None and now >= self._recheck_wiped_at:
            self._resend_unclaimed()
        # Thread CPU time, not wall time: a read that waited for a busy core
        # (or for Redis) must not push the next one seconds away.
        self._read_gap = min((time.thread_time() - cpu_before) / READ_BUDGET, MAX_READ_GAP)
        if self._notices is not None:
            self._notices.hold_until(now + self._read_gap)

    def _record_queues(self) -> bool:
        """Name newly used queues in Redis; False if Redis refused (asked again in a second).

        The console's Celery tab polls from an executor that never sends (the
        engine is another process), so this record is how it learns of a
        queue tries wait in that no worker consumes. One SADD per queue per
        engine, not per try.
        """
        new = self._queues_used - self._queues_recorded
        try:
            self._require_broker().sadd(self.keys.queues, *new)
        except redis.RedisError as error:
            self._redis_failed("recording queue names", error)
            return False
        self._queues_recorded |= new
        return True

    def _remove_taken_back(self) -> bool:
        """Remove the messages of tries revoked before they started; False if Redis refused.

        Revoked, such a message would only be dropped by the worker that reads
        it; until then it counts as waiting (``celery inspect``, the Celery tab),
        forever in a queue no worker consumes. One script call per queue, for
        every try taken back from it since the last call: it reads the queue's
        lists whole, which only happens when tries were taken back.
        """
        from kombu.transport.redis import PRIORITY_STEPS, Channel

        broker = self._require_broker()
        while self._taken_back:
            queue, tokens = next(iter(self._taken_back.items()))
            lists = [
                queue if step == 0 else f"{queue}{Channel.sep}{step}" for step in PRIORITY_STEPS
            ]
            try:
                broker.eval(_REMOVE_MESSAGES, len(lists), *lists, *sorted(tokens))
            except redis.RedisError as error:
                self._redis_failed("removing messages of tries taken back", error)
                return False
            del self._taken_back[queue]
        return True

    def _read_state(self, flight: _Flight, raw_meta: bytes | None) -> None:
        if raw_meta is None or raw_meta == flight.raw_meta:
            return
        flight.raw_meta = raw_meta
        reading = read_meta(raw_meta)
        if reading.revoked:
            # Celery writes REVOKED as it signals a running try, whose tree may
            # go on for the worker's whole stop grace; or for a message that
            # expired unread. Either way the claim says what happened (read
            # from now on): finished by its worker once the tree was gone, still
            # held (its lease watched), or never taken.
            flight.watch_claim = True
            return
        if reading.worker_lost:
            # Celery stores this as it reaps the dead pool process, while the
            # try's guard may still be stopping its tree: the claim tells when
            # it is gone (worker_hooks.py), or the lease's expiry does.
            flight.watch_claim = True
            flight.lost_reason = reading.report.reason if reading.report else None
            return
        if reading.state is TaskState.RUNNING:
            flight.claimed = True
            if not flight.reported_running:
                flight.reported_running = True
                self.running_state(flight.key, reading.report)
        elif reading.state is not None:
            if reading.refused and reading.report is not None and not self._told_refusal:
                # One line for the operator; each refused try also says it as its reason.
                self._told_refusal = True
                self._tell_engine(f"{flight.key}: {reading.report.reason}")
            self._finish(flight, reading.state, reading.report)

    def _read_claim(self, flight: _Flight, raw_claim: bytes | None) -> None:
        """Settle a try whose result cannot tell (see ``_Flight.watch_claim``) by its claim."""
        record = decode_record(raw_claim)
        if record is None:
            if flight.claimed or flight.reported_running:
                return  # Redis lost its data: _on_data_lost looks after it
            if flight.lost_reason is not None:
                # The pool process died before it claimed the try: nothing ran.
                # Revoked, so that no copy of the message can run it later.
                try:
                    revoked = self._require_claims().revoke(
                        flight.token, why="its pool process died before it started"
                    )
                except redis.RedisError as error:
                    self._refused_while_hung(
                        flight, "settling a try whose pool process died", error
                    )
                    return
                if revoked:
                    self._finish(flight, TaskState.FAILED, TaskReport(reason=flight.lost_reason))
                else:
                    flight.claimed = True
                return
            if flight.raw_meta is not None and read_meta(flight.raw_meta).revoked:
                # Celery's REVOKED for a try nobody claimed: its message expired.
                self._finish(
                    flight,
                    TaskState.FAILED,
                    TaskReport(
                        reason="its message expired in Redis before any worker took it "
                        f"(after claim_ttl_seconds, {self.settings.claim_ttl_seconds}s)"
                    ),
                )
            return
        state = record.get("state")
        if state == FINISHED:
            report = TaskReport.from_json(record)
            self._finish(
                flight, TaskState.SUCCESS if succeeded(report) else TaskState.FAILED, report
            )
        elif state == REVOKED:
            self._finish(
                flight,
                TaskState.FAILED,
                TaskReport(
                    reason=f"revoked before it started ({record.get('why') or 'no reason'})"
                ),
            )
        else:
            flight.claimed = True  # held by a worker: its lease tells if that worker is gone

    def _check_lease(self, flight: _Flight, leased: bool, now: float) -> None:
        """Fail a claimed try whose lease has been gone for ``lease_seconds`` while Redis answered."""
        if leased:
            flight.lease_missing_since = None
        elif flight.lease_missing_since is None:
            flight.lease_missing_since = now
        elif now - flight.lease_missing_since >= self.settings.lease_seconds:
            self._finish(flight, TaskState.FAILED, self._lost_report(flight))

    def _lost_report(self, flight: _Flight) -> TaskReport:
        if flight.lost_reason is not None:
            return TaskReport(reason=flight.lost_reason)
        where = "its worker"
        if flight.raw_meta is not None:
            running = read_meta(flight.raw_meta).report
            if running is not None and running.worker:
                where = f"worker {running.worker}"
        return TaskReport(
            reason=f"worker lost: {where} stopped renewing the try's lease "
            f"for more than {self.settings.lease_seconds:g}s"
        )

    def _finish(self, flight: _Flight, state: TaskState, report: TaskReport | None) -> None:
        del self._flights[flight.key]
        if flight.kill_requested and state is TaskState.FAILED:
            report = report or TaskReport()
            report.reason = f"killed on request ({report.reason or 'stopped'})"
        self.change_state(flight.key, state, report)

    # ---- Redis availability -------------------------------------------------
    def _redis_failed(self, doing: str, error: BaseException) -> None:
        """Redis failed a call: say so (once an outage), and wait before the next one.

        A call that timed out means Redis hangs: the probe takes over asking it,
        off this thread, and nothing more is sent or read until it answers.
        """
        was_ok = self.broker_ok
        self.broker_ok = False
        url = self.settings.broker_url
        if timed_out(error):
            self._probe.start()
            self.broker_message = (
                f"Redis at {url} not answering (no reply within "
                f"{socket_timeout(self.settings):g}s while {doing}); tries keep their states "
                "and unsent ones wait; asked again in the background until it answers"
            )
        else:
            self.broker_message = (
                f"Redis at {url} unreachable while {doing} ({error}); "
                "tries keep their states and unsent ones wait"
            )
        self._retry_at = time.monotonic() + RETRY_SECONDS
        if was_ok:
            log.warning("Redis failed while %s: %s", doing, error)
            self._tell_engine(self.broker_message)

    def _redis_answered(self) -> None:
        if not self.broker_ok:
            log.warning("Redis reachable again")
            self._tell_engine(f"Redis at {self.settings.broker_url} answers again")
        self.broker_ok = True
        self.broker_message = ""

    def _probe_clients(self) -> list[redis.Redis]:
        """Fresh clients of each Redis in use, for the probe's PINGs (its own connections)."""
        settings = self.settings
        name = f"execconsole-probe-{self.executor_name}"
        urls = dict.fromkeys([settings.backend_url, settings.broker_url])
        return [redis_client(settings, url, name) for url in urls]

    def _refused_while_hung(self, flight: _Flight, doing: str, error: BaseException) -> None:
        """A revocation failed: if it timed out, it may still land once Redis answers.

        Then the try's claim says REVOKED and no worker will run it, though this
        executor was told no: its claim is read from then on (``watch_claim``),
        so such a try still ends, revoked, instead of waiting for nothing.
        """
        self._redis_failed(doing, error)
        if timed_out(error):
            flight.watch_claim = True

    def _ensure_epoch(self) -> bytes:
        client = self._require_client()
        client.set(self.keys.epoch, uuid.uuid4().hex, nx=True)
        value = client.get(self.keys.epoch)
        assert value is not None
        return cast(bytes, value)

    def _on_data_lost(self) -> None:
        """Redis came back without its data: make sure no sent try is left waiting for nothing."""
        log.warning(
            "Redis lost its data; tries that had not started will be sent again if no worker claims them"
        )
        self._epoch = self._ensure_epoch()
        self._queues_recorded = {self.settings.default_queue}  # the record went with the data
        for flight in self._flights.values():
            flight.raw_meta = None
            flight.claimed = flight.reported_running
            flight.lease_missing_since = None
        # Running workers re-create their claims at their next lease renewal
        # (every lease_seconds / 3); look only after that.
        self._recheck_wiped_at = time.monotonic() + self.settings.lease_seconds

    def _resend_unclaimed(self) -> None:
        self._recheck_wiped_at = None
        candidates = [
            f for f in self._flights.values() if f.sent and not f.claimed and f.raw_meta is None
        ]
        if not candidates:
            return
        try:
            claims = self._require_client().mget([self.keys.claim(f.token) for f in candidates])
        except redis.RedisError as error:
            self._redis_failed("looking for tries Redis lost", error)
            self._recheck_wiped_at = time.monotonic()  # at the next read
            return
        for flight, claim in zip(candidates, claims, strict=True):
            if claim is not None:
                flight.claimed = True  # from now on its lease is watched
            elif flight.workload is None:
                # Adopted without its workload, so it cannot be sent again.
                self._finish(
                    flight,
                    TaskState.FAILED,
                    TaskReport(reason="lost: Redis lost its data and no worker reclaimed the try"),
                )
            else:
                flight.sent = False
                self._outbox.append(flight.key)

    # ---- taking tries back -------------------------------------------------------
    def prefetched(self) -> list[TaskKey]:
        """Tries handed to Celery (unsent, or waiting in Redis) that no worker is known to have claimed.

        What the engine takes back when it drains or pauses (``dequeue``): such
        a try has not started, so it counts as never handed out. One a worker
        claimed unbeknown to this executor (it has not said RUNNING yet) is
        refused by ``dequeue`` and runs on, reported as usual.
        """
        flights = list(self._flights.values())  # gauges() may run on another thread
        return [
            flight.key
            for flight in flights
            if not (flight.claimed or flight.reported_running or flight.kill_requested)
        ]

    def dequeue(self, key: TaskKey) -> bool:
        """Take back a try no worker has started, so the engine can hand it out again.

        Besides ``queued_tasks`` (tries beyond parallelism), that is a try still
        in the outbox, or one waiting in Redis that no worker has claimed: its
        claim is revoked, so whichever worker reads its message drops it. This
        is what lets the engine treat a try stuck in queued past
        ``queued_timeout`` as everywhere else: given back and handed out again
        up to ``queued_retry_limit`` times, then failed. False once a worker
        claimed the try (it runs, and reports as usual) or Redis cannot be asked.
        """
        if super().dequeue(key):
            return True
        flight = self._flights.get(key)
        if flight is None or flight.claimed or flight.reported_running or flight.kill_requested:
            return False
        if flight.sent:
            if not self._probe.answering:
                return False  # Redis hangs: its claim cannot be revoked now
            try:
                revoked = self._require_claims().revoke(
                    flight.token, why="taken back before it started"
                )
            except redis.RedisError as error:
                self._refused_while_hung(flight, "taking back a try", error)
                return False
            if not revoked:
                return False  # a worker claimed it just now
            self._take_back_message(flight)
        else:
            self._outbox = deque(k for k in self._outbox if k != key)
        del self._flights[key]
        self.running.discard(key)
        return True

    def _take_back_message(self, flight: _Flight) -> None:
        """Have the revoked try's message removed from its queue at the next ``sync``."""
        if flight.workload is not None:  # an adopted try's queue is not known here
            self._taken_back[flight.workload.queue].add(flight.token)

    # ---- optional capabilities ----------------------------------------------
    def kill(self, key: TaskKey) -> bool:
        """Stop a try: revoke it before it starts, or terminate its process tree if it runs.

        Returns False if the key is not in flight here or Redis cannot be
        reached; the engine then rejects the kill request. Why is told to the
        engine's notes (through the callback sink), which that rejection
        points the operator to.
        """
        flight = self._flights.get(key)
        if flight is None:
            self._tell_engine(f"could not kill {key}: it is not in flight on this executor")
            return False
        if not flight.sent:
            self._outbox = deque(k for k in self._outbox if k != key)
            self._finish(flight, TaskState.FAILED, TaskReport(reason="killed before it was sent"))
            return True
        if not self._probe.answering:
            self._tell_engine(f"could not kill {key}: {self.broker_message}")
            return False
        try:
            if self._require_claims().revoke(flight.token, why="killed on request"):
                # Revoked before any worker claimed it: it can never start.
                self._take_back_message(flight)
                self._finish(
                    flight,
                    TaskState.FAILED,
                    TaskReport(reason="killed on request before it started"),
                )
                return True
            # Claimed, so running somewhere: Celery sends SIGTERM to the pool
            # process, which stops the try's process tree before it dies
            # (task.TreeStopper); Celery then records the task as REVOKED.
            self._require_app().control.revoke(flight.token, terminate=True, signal="SIGTERM")
        except Exception as error:  # noqa: BLE001 - kombu and redis both signal an outage
            self._refused_while_hung(flight, "killing a try", error)
            self._tell_engine(f"could not kill {key}: {self.broker_message}")
            return False
        flight.kill_requested = True
        # Claimed (the revocation found a claim): watch its lease, and take its
        # end from the claim, which its worker finishes once the tree is gone.
        flight.claimed = True
        flight.watch_claim = True
        return True

    def _tell_engine(self, message: str) -> None:
        """Put ``message`` in the engine's notes, where a rejected request tells the operator to look."""
        if self.callback_sink is not None:
            self.send_callback(message)
        else:
            log.warning("%s", message)

    def adopt(self, records: list[AdoptionRecord]) -> dict[TaskKey, Adoption]:
        """Take over tries a previous engine left in flight, by token (the Celery task id)."""
        outcomes: dict[TaskKey, Adoption] = {}
        known = [record for record in records if record.token]
        for record in records:
            if not record.token:
                outcomes[record.key] = Adoption(AdoptionOutcome.LOST)
        if not known:
            return outcomes
        tokens = [cast(str, record.token) for record in known]
        names = [self.keys.meta(t) for t in tokens] + [self.keys.claim(t) for t in tokens]
        try:
            if self._probe.answering:
                values = cast(list[bytes | None], self._require_client().mget(names))
                for record, raw_meta, raw_claim in zip(
                    known, values[: len(known)], values[len(known) :], strict=True
                ):
                    outcomes[record.key] = self._adopt_one(
                        record, raw_meta, decode_record(raw_claim)
                    )
        except redis.RedisError as error:
            self._redis_failed("adopting tries", error)
        # Not looked at (Redis hangs or failed): track every remaining try;
        # sync settles them once Redis answers.
        for record in known:
            if record.key not in outcomes:
                self._track_adopted(record, None, claimed=True)
                outcomes[record.key] = Adoption(AdoptionOutcome.ADOPTED)
        return outcomes

    def _adopt_one(
        self, record: AdoptionRecord, raw_meta: bytes | None, claim: dict[str, Any] | None
    ) -> Adoption:
        token = cast(str, record.token)
        if raw_meta is not None:
            reading = read_meta(raw_meta)
            if reading.revoked or reading.worker_lost:
                # Not an ending by itself (see _Flight.watch_claim): the claim tells.
                raw_meta = None
            elif reading.state is not None and reading.state.is_finished:
                return Adoption(AdoptionOutcome.FINISHED, reading.report)
        if claim is None and raw_meta is None:
            # Nothing in Redis. Revoked either way, so that no surviving copy of
            # its message can run it (and a worker still running it, whose
            # claim vanished with Redis's data, finds its claim taken and stops).
            started = record.state is TaskState.RUNNING or record.pid is not None
            why = (
                "lost: Redis lost its data after the try started"
                if started
                else "engine restarted before the try started"
            )
            if self._require_claims().revoke(token, why=why):
                if not started:
                    return Adoption(AdoptionOutcome.NEVER_STARTED)
                # The store saw it start, so it may well have run (to its end,
                # even): handing it out again under the same try would run it
                # twice. Its record went with Redis's data: it is lost.
                return Adoption(AdoptionOutcome.LOST, TaskReport(reason=LOST_WITH_REDIS_DATA))
            claim = {"state": "claimed"}  # a worker claimed it just now
        if claim is not None and raw_meta is None:
            if claim.get("state") == REVOKED:
                return Adoption(AdoptionOutcome.NEVER_STARTED)
            if claim.get("state") == FINISHED:
                # The result expired but the claim remembers how it ended.
                return Adoption(AdoptionOutcome.FINISHED, TaskReport.from_json(claim))
        self._track_adopted(record, raw_meta, claimed=claim is not None)
        # A claimed try whose result may say nothing more (REVOKED, or none yet):
        # its claim's FINISHED record is how its end will be known.
        self._flights[record.key].watch_claim = raw_meta is None
        return Adoption(AdoptionOutcome.ADOPTED)

    def _track_adopted(self, record: AdoptionRecord, raw_meta: bytes | None, claimed: bool) -> None:
        running = raw_meta is not None and read_meta(raw_meta).state is TaskState.RUNNING
        self._flights[record.key] = _Flight(
            key=record.key,
            token=cast(str, record.token),
            workload=None,
            sent=True,
            raw_meta=raw_meta,
            reported_running=running or record.state is TaskState.RUNNING,
            claimed=claimed or running,
        )
        self.running.add(record.key)

    def wait_handles(self) -> list[Any]:
        """The notices pipe: readable as soon as a worker says a try of ours may have ended."""
        return [self._notices] if self._notices is not None else []

    def get_task_log(self, key: TaskKey, log_path: str | None, max_bytes: int = 64_000) -> TaskLog:
        """The try's log file if it is on this machine, else the end its worker stored in Redis.

        Works on an executor that was never started (``execconsole tasks logs``
        builds one only to ask this): the Redis client is made on first use.
        """
        if log_path and os.path.isfile(log_path):
            # A worker on this machine (or a shared filesystem) wrote it: no Redis needed.
            return super().get_task_log(key, log_path, max_bytes)
        if not self._probe.answering:
            return TaskLog("", 0, self.broker_message)
        try:
            stored = self._require_tails().fetch(key, max_bytes)
        except redis.RedisError as error:
            return TaskLog("", 0, f"Redis at {self.settings.backend_url} unreachable: {error}")
        if stored is not None:
            return stored
        return TaskLog("", 0, "no log stored in Redis for this try yet")

    # ---- the cluster, for the panel and keys ---------------------------------
    @property
    def cluster(self) -> ClusterInspector:
        """Worker and queue polling (started on first use of ``cluster_snapshot``)."""
        if self._cluster is None:
            from executors.celery.cluster import ClusterInspector

            broker = redis_client(
                self.settings, self.settings.broker_url, f"execconsole-inspect-{self.executor_name}"
            )
            self._cluster = ClusterInspector(
                self._require_app(),
                broker,
                interval=self.settings.inspect_interval,
                timeout=self.settings.inspect_timeout,
                known_queues=lambda: self._queues_used,
                recorded_queues=self.keys.queues,
            )
        return self._cluster

    def queued_reason(self, key: TaskKey) -> str | None:
        """Why a try handed out here has not started, when known: ``"queue 'typo' has no consumer"``.

        For the engine's reason when it takes back or gives up on a try stuck
        in queued (ask before ``dequeue``, which forgets the try). None when the
        try is not waiting here, or some worker that answered consumes its
        queue, or the workers cannot be asked. Blocks for one status broadcast
        (``inspect_timeout``) at most once every ``inspect_interval``; otherwise
        the last answer is used.
        """
        flight = self._flights.get(key)
        if flight is None or flight.workload is None or flight.claimed or flight.reported_running:
            return None
        if not self._probe.answering:
            return None  # asking the workers means a broadcast through the hung Redis
        queue = flight.workload.queue
        cluster = self.cluster
        snapshot = cluster.latest()  # no background polling for the engine's sake
        if (
            snapshot.polled_at is None
            or time.time() - snapshot.polled_at > self.settings.inspect_interval
        ):
            try:
                snapshot = cluster.poll()
            except Exception as error:  # noqa: BLE001 - a reason is a nicety, never a failure
                log.debug("could not ask the Celery workers: %s", error)
                return None
        if not snapshot.reachable:
            return None
        if any(queue in worker.queues for worker in snapshot.workers):
            return None
        if not snapshot.workers:
            return f"queue {queue!r} has no consumer (no Celery worker answered)"
        return f"queue {queue!r} has no consumer"

    def cluster_snapshot(self) -> ClusterSnapshot:
        """Workers and queues as last polled; never blocks on the cluster."""
        return self.cluster.snapshot()

    @classmethod
    def cli_groups(cls) -> list[CliGroup]:
        return [
            CliGroup(
                name="celery",
                help="Start, inspect and stop Celery workers for the celery executor.",
                target="executors.celery.cli:app",
            )
        ]

    @classmethod
    def console_panels(cls) -> list[ConsolePanel]:
        return [
            ConsolePanel(id="celery", title="Celery", target="executors.celery.panel:build_panel")
        ]

    @classmethod
    def key_bindings(cls) -> list[KeyBinding]:
        return [
            KeyBinding("g", "Grow pool", _cluster_control("worker", lambda c, w: c.grow_pool(w))),
            KeyBinding(
                "h", "Shrink pool", _cluster_control("worker", lambda c, w: c.shrink_pool(w))
            ),
            KeyBinding(
                "x",
                "Stop consuming queue",
                _cluster_control("queue", lambda c, q: c.stop_consuming(q)),
            ),
            KeyBinding(
                "u",
                "Resume consuming queue",
                _cluster_control("queue", lambda c, q: c.resume_consuming(q)),
            ),
        ]

    # ---- observability ------------------------------------------------------
    @property
    def broker_answering(self) -> bool:
        """False while Redis hangs: from a call that timed out until it answers a PING."""
        return self._probe.answering

    def gauges(self) -> dict[str, int]:
        gauges = super().gauges()
        prefix = f"executor.{self.executor_name}"
        gauges[f"{prefix}.unsent_tasks"] = len(self._outbox)
        gauges[f"{prefix}.broker_ok"] = int(self.broker_ok)
        return gauges

    def debug_dump(self) -> str:
        lines = [super().debug_dump()]
        lines.append(
            f"  broker {'up' if self.broker_ok else 'DOWN: ' + self.broker_message}, "
            f"unsent {len(self._outbox)}, in flight {len(self._flights)}"
        )
        return "\n".join(lines)

    # ---- plumbing ---------------------------------------------------------
    def _connect(self) -> None:
        """Build the Celery app and the Redis clients (no connection is opened yet).

        ``start`` calls it; so does anything that only reads or sends a control
        request (the console's Celery tab, ``tasks logs``, the vended keys),
        which may run in a process where the executor is never started: the
        console builds executors only to vend panels, and the CLI to fetch logs.
        """
        if self._app is None:
            self._app = make_app(self.settings, role="client")
        if self._client is None:
            self._client = redis_client(
                self.settings,
                self.settings.backend_url,
                f"execconsole-executor-{self.executor_name}",
            )
        if self._claims is None:
            self._claims = RedisClaims(
                self._client,
                self.keys,
                claim_ttl=self.settings.claim_ttl_seconds,
                lease_seconds=self.settings.lease_seconds,
            )
        if self._tails is None:
            self._tails = LogTails(
                self._client,
                self.keys,
                max_bytes=self.settings.log_tail_bytes,
                ttl=self.settings.result_expires_seconds,
            )

    def _require_app(self) -> CeleryApp:
        if self._app is None:
            self._connect()
        assert self._app is not None
        return self._app

    def _require_client(self) -> redis.Redis:
        if self._client is None:
            self._connect()
        assert self._client is not None
        return self._client

    def _require_broker(self) -> redis.Redis:
        """The broker's Redis, where the queues are: the backend's client if it is the same."""
        if self.settings.broker_url == self.settings.backend_url:
            return self._require_client()
        if self._broker is None:
            self._broker = redis_client(
                self.settings, self.settings.broker_url, f"execconsole-queues-{self.executor_name}"
            )
        return self._broker

    def _require_claims(self) -> RedisClaims:
        if self._claims is None:
            self._connect()
        assert self._claims is not None
        return self._claims

    def _require_tails(self) -> LogTails:
        if self._tails is None:
            self._connect()
        assert self._tails is not None
        return self._tails


# ---- key bindings: act on what the Celery tab has selected ---------------------
def _cluster_control(
    what: str, act: Callable[[ClusterInspector, str], str]
) -> Callable[[BaseExecutor, TaskKey | None], str]:
    """A Celery-tab key: ``act`` on the worker or queue selected there (``what``).

    Refused at once while Redis hangs: the control broadcast would block the
    engine's thread for the socket timeout.
    """

    def control(executor: BaseExecutor, _key: TaskKey | None) -> str:
        celery = cast(CeleryExecutor, executor)
        if not celery.broker_answering:
            return celery.broker_message
        cluster = celery.cluster
        selected = cluster.selected_worker if what == "worker" else cluster.selected_queue
        if not selected:
            return f"select a {what} in the Celery tab first"
        return act(cluster, selected)

    return control
