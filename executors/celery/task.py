"""The Celery task that runs one try on a worker: claim, supervise, report.

Runs in a prefork pool process. The try itself is started by
``executors.supervisor.run_workload``, as on a local worker: its own session and
process group, stdin from /dev/null, output to its log file, its timeout. Around
that, this task

1. claims the try's token in Redis, and drops the delivery if the token is
   claimed already (Celery redelivered a message; the try must not run twice),
   or fails the try if the worker holding the claim is gone;
2. keeps the try's lease alive and its log tail in Redis while it runs;
3. publishes a custom ``RUNNING`` state carrying the pid and where it runs,
   once the try has run for ``running_report_delay`` (a try that ends sooner
   reports only its end, which carries the same facts);
4. turns Celery's terminate (SIGTERM to this pool process) into stopping the
   try's whole process tree, which lives in its own session and would
   otherwise outlive this process;
5. stores how the try ended (claim, lease, log tail and the TaskReport as the
   task's JSON result) in one Redis round trip (outcome.py), and returns only
   a short summary to Celery, which stores nothing more for a success.

The claim and the outcome go on a connection the task thread keeps for
itself (pinned.py); the try's variables reach it through this process's own
environment (``WorkerRuntime.environment``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import psutil
import redis
from celery import Task, signals
from celery.exceptions import Ignore, Reject
from setproctitle import getproctitle, setproctitle

from executors.celery.app import redis_client
from executors.celery.claims import (
    CLAIMED,
    REVOKED,
    STARTED,
    RedisClaims,
    decode_record,
    encode_record,
)
from executors.celery.guard import TryGuard
from executors.celery.keys import RedisKeys
from executors.celery.lease import LeaseKeeper
from executors.celery.log_tail import LogTails
from executors.celery.outcome import OutcomeWriter
from executors.celery.pinned import PinnedConnection
from executors.celery.task_meta import RUNNING
from executors.claims import ClaimBook
from executors.log_spool import LogSpool, writer_name
from executors.supervisor import (
    HOSTNAME,
    TERMINATE_GRACE_SECONDS,
    kill_process_tree,
    process_create_time,
    run_workload,
    signal_group,
    signal_process,
    stop_passing_on_ignored,
)
from executors.task_environment import InheritedEnvironment
from executors.workload import TaskReport, Workload

if TYPE_CHECKING:
    from executors.celery.settings import CelerySettings

log = logging.getLogger(__name__)

CLAIM_PATIENCE_SECONDS = 300.0
"""How long a delivery waits for Redis to claim its try before handing the message back."""


@dataclasses.dataclass(slots=True)
class WorkerRuntime:
    """What a pool process keeps between tries: its Redis client, lease keeper and the rest."""

    pid: int
    client: redis.Redis
    claims: RedisClaims
    tails: LogTails
    keeper: LeaseKeeper
    outcomes: OutcomeWriter
    environment: InheritedEnvironment
    """A try's variables are set in this process's environment and inherited by
    the try: encoding the whole environment for every spawn cost more than the
    fork and exec. Safe here because a pool process runs one try at a time and
    no other thread of it starts processes (the lease keeper and stop_tree's
    timers only signal them)."""
    sigterm: SigtermRelay
    spool: LogSpool
    """Silent short tries share this output file instead of creating a log file each
    (executors/log_spool.py); a pool process runs one try at a time."""
    guard: TryGuard
    """Stops the running try's tree if this process dies (guard.py): with the worker's
    main process, say, which takes its pool processes along."""


_runtime: WorkerRuntime | None = None


@signals.worker_process_shutdown.connect(weak=False)
def _remove_spool(**_: Any) -> None:
    """A pool process that ends removes its (empty) spool."""
    if _runtime is not None and _runtime.pid == os.getpid():
        _runtime.spool.discard()


def runtime_for(settings: CelerySettings) -> WorkerRuntime:
    """This process's runtime, created after the fork (connections must not cross one)."""
    global _runtime
    if _runtime is None or _runtime.pid != os.getpid():
        # First, while this process runs no thread of ours and its environment
        # holds no try's variables: the guard inherits both.
        guard = TryGuard(grace=min(TERMINATE_GRACE_SECONDS, settings.lease_seconds / 2))
        client = redis_client(settings, settings.backend_url, f"execconsole-worker-{os.getpid()}")
        # The claim and the outcome, from this (the task's) thread only.
        pinned = PinnedConnection(client)
        keys = RedisKeys(settings.key_prefix)
        claims = RedisClaims(
            client,
            keys,
            claim_ttl=settings.claim_ttl_seconds,
            lease_seconds=settings.lease_seconds,
            pinned=pinned,
        )
        tails = LogTails(
            client, keys, max_bytes=settings.log_tail_bytes, ttl=settings.result_expires_seconds
        )
        keeper = LeaseKeeper(
            claims,
            tails,
            lease_seconds=settings.lease_seconds,
            log_push_seconds=settings.log_push_seconds,
        )
        outcomes = OutcomeWriter(
            client,
            keys,
            claim_ttl=settings.claim_ttl_seconds,
            log_tail_bytes=settings.log_tail_bytes,
            log_ttl=settings.result_expires_seconds,
            result_ttl=settings.result_expires_seconds,
            pinned=pinned,
        )
        _runtime = WorkerRuntime(
            os.getpid(),
            client,
            claims,
            tails,
            keeper,
            outcomes,
            InheritedEnvironment(),
            SigtermRelay(),
            LogSpool(writer_name(os.getpid())),
            guard,
        )
        # Celery's pool processes ignore SIGINT; the tries they start must not.
        stop_passing_on_ignored(signal.SIGINT)
    return _runtime


def run_try(task: Task, workload_data: dict[str, Any], key_prefix: str | None = None) -> str:
    """Celery task body (bound): run one try once and store its outcome; returns a summary.

    ``key_prefix`` is where the sending executor watches the try's claim and
    lease. A worker keeping them under another prefix would run the try
    unseen: the executor would call it lost and start it again beside
    itself. So such a try is refused before anything starts (Celery stores
    the refusal as the try's failure, naming both prefixes).

    The TaskReport reaches the executor through the result this task stores
    itself (``_finish``), in Celery's layout: the task is ``ignore_result``,
    so Celery neither stores it again nor needs more than a short string back
    (which it ``saferepr``s and sends from the pool process to the worker).
    """
    settings: CelerySettings = task.app.settings  # type: ignore[attr-defined]
    workload = Workload.from_json(workload_data)
    node = task.request.hostname or HOSTNAME
    if key_prefix is not None and key_prefix != settings.key_prefix:
        log.error(
            "%s: refused, the engine's key_prefix is %r, ours %r",
            workload.key,
            key_prefix,
            settings.key_prefix,
        )
        raise KeyPrefixMismatch(
            f"refused by worker {node}: the engine keeps claims under key_prefix {key_prefix!r}, "
            f"the worker under {settings.key_prefix!r}; set the same [celery] key_prefix "
            "(or EXECCONSOLE__CELERY__KEY_PREFIX) for both"
        )
    runtime = runtime_for(settings)

    record = _claim(runtime, workload, node)
    if record is None:
        holder, found = _dead_holder(runtime, workload.token, settings.lease_seconds)
        if holder is not None:
            # Celery stores this as the try's FAILURE: the try is accounted for
            # even if its worker died before it could say it had started.
            raise TryLost(f"worker lost: {holder} claimed the try and stopped renewing its lease")
        # A second delivery of a try that was started, or one that was revoked
        # (taken back or killed before it started): Ignore acknowledges the
        # message and writes no state, so what the executor reads stays as is.
        if found is not None and found.get("state") == REVOKED:
            log.info(
                "%s was revoked before it started (%s); dropping its message",
                workload.key,
                found.get("why") or "no reason given",
            )
        else:
            log.warning("%s was claimed already; dropping this copy of its message", workload.key)
        raise Ignore()

    if settings.log_dir:
        workload = dataclasses.replace(
            workload, log_path=str(Path(settings.log_dir) / f"{workload.token}.log")
        )
    stopper = TreeStopper(spare=runtime.guard.process.pid)
    spawned = _SpawnWatch(runtime.guard, stopper)
    runtime.keeper.watch(
        workload.token, workload.key, record, workload.log_path, HOSTNAME, stopper.stop
    )
    previous_title = getproctitle()
    setproctitle(f"task {workload.key} - celery {node}")
    runtime.sigterm.stopper = stopper
    # A try that ends within the report delay is reported by its end alone:
    # run_workload waits that long before it reads the process's create time
    # and calls on_started, so a short try costs no RUNNING announcement and
    # never wakes the lease thread. Once the delay is over, announce at once.
    delay = settings.running_report_delay
    quiet = workload.timeout is None or workload.timeout > delay
    try:
        report = run_workload(
            workload,
            spawned,
            worker=node,
            on_started=lambda running: _on_started(
                task, runtime, stopper, running, 0.0 if quiet else delay
            ),
            quiet_start=delay,
            environment=runtime.environment,
            spool=runtime.spool,
        )
    finally:
        runtime.guard.release()
        runtime.sigterm.stopper = None
        setproctitle(previous_title)
    _finish(runtime, task.request.id, workload, report)
    if stopper.terminated:
        # Told to stop (Celery's terminate): the tree is gone and its end is
        # stored, so now die of SIGTERM, as Celery expects of a terminated job.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
    return report.reason or "exit 0"


def _claim(runtime: WorkerRuntime, workload: Workload, node: str) -> str | None:
    deadline = time.monotonic() + CLAIM_PATIENCE_SECONDS
    delay = 0.1
    # The same record on every attempt: an attempt whose reply was lost wrote
    # it, and the next attempt finds it and knows the claim is ours.
    details = {
        "worker": node,
        "hostname": HOSTNAME,
        "pool_pid": os.getpid(),
        # Whose exit means the try's tree is gone if this process dies (worker_hooks.py).
        "guard_pid": runtime.guard.process.pid,
        "guard_create_time": runtime.guard.create_time,
        # datetime, not pendulum: a quarter of the cost, the same ISO 8601 instant.
        "claimed_at": dt.datetime.now(dt.UTC).isoformat(),
    }
    while True:
        try:
            return runtime.claims.claim(workload.token, **details)
        except redis.RedisError as error:
            if time.monotonic() > deadline:
                # Nothing was started: hand the message back for a later try.
                raise Reject(f"cannot claim {workload.key}: {error}", requeue=True) from error
            log.warning("waiting for Redis to claim %s: %s", workload.key, error)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


class TryLost(Exception):
    """Raised by a later delivery of a try whose claiming worker is gone."""


class KeyPrefixMismatch(Exception):
    """Raised, before anything starts, for a try sent by an executor with another key_prefix."""


def _dead_holder(
    runtime: WorkerRuntime, token: str, patience: float
) -> tuple[str | None, dict[str, Any] | None]:
    """The worker holding ``token``'s claim if it is gone (else None), and the claim as read.

    Gone means: the claim says claimed or started, and the lease has been
    absent for ``patience`` seconds (a live worker renews it several times in
    that span, even right after Redis restarted).
    """
    keys = runtime.claims.keys
    deadline = time.monotonic() + patience
    while True:
        try:
            raw_claim, lease = runtime.client.mget([keys.claim(token), keys.lease(token)])
        except redis.RedisError:
            return None, None
        record = decode_record(raw_claim)
        if record is None or record.get("state") not in (CLAIMED, STARTED) or lease is not None:
            return None, record
        if time.monotonic() >= deadline:
            return str(record.get("worker") or "its worker"), record
        time.sleep(0.5)


class _SpawnWatch(ClaimBook):
    """What ``run_workload`` tells its claim book, used to learn the try's pid the moment it exists.

    ``run_workload`` names the pid to its claims right after the spawn, before
    the quiet start (``on_started`` comes only after it). The try's real claim
    is in Redis, made before (``_claim``); this only hands the pid to the
    guard, so that a pool process dying at any moment of the try, its first
    milliseconds included, takes the try's tree with it (guard.py), and to the
    stopper (a kill during the quiet start). One pipe write and one /proc read
    a try: no Redis round trip, no lease-thread wake-up.
    """

    def __init__(self, guard: TryGuard, stopper: TreeStopper) -> None:  # noqa: D107
        # No claims directory: nothing is written anywhere but the guard's pipe.
        self._guard = guard
        self._stopper = stopper
        self._try_pid: int | None = None

    def claim(self, token: str, **details: Any) -> bool:
        return True  # claimed in Redis already (_claim)

    def record_started(self, token: str, **details: Any) -> None:
        pid = details.get("pid")
        if pid is None or pid == self._try_pid:
            return
        self._try_pid = pid
        created = details.get("pid_create_time") or process_create_time(pid)
        self._guard.watch(pid, created)
        self._stopper.started(pid)

    def record_finished(self, token: str, **details: Any) -> None:
        pass  # the end goes to Redis with the outcome (_finish)


def _on_started(
    task: Task,
    runtime: WorkerRuntime,
    stopper: TreeStopper,
    running: TaskReport,
    delay: float,
) -> None:
    # Called inside run_workload between starting the process and waiting
    # for it: it must neither raise nor block.
    assert running.pid is not None
    stopper.started(running.pid)
    details = running.to_json()
    token = task.request.id

    def publish_running() -> None:
        task.update_state(task_id=token, state=RUNNING, meta=details)

    runtime.keeper.announce_after(delay, encode_record(STARTED, details), publish_running)


def _finish(
    runtime: WorkerRuntime, task_id: str | None, workload: Workload, report: TaskReport
) -> None:
    """Store the outcome in one round trip, waiting for Redis as long as it takes.

    Celery would retry a result write forever (``result_backend_always_retry``);
    this write carries the result, so it does the same: the message stays
    unacknowledged meanwhile, and its try's report is never lost.
    """
    record = runtime.keeper.release()
    delay = 0.1
    while True:
        try:
            runtime.outcomes.store(
                workload.token,
                workload.key,
                task_id=task_id,
                claim_record=record,
                report=report,
                log_path=workload.log_path,
                host=HOSTNAME,
            )
            return
        except redis.RedisError as error:
            log.warning("waiting for Redis to store the end of %s: %s", workload.key, error)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


class SigtermRelay:
    """This pool process's SIGTERM handler, installed once: it hands the signal to the running try's stopper.

    Installed for the life of the process rather than around each try, which
    cost two ``signal.signal`` calls a try. With no try running it does what
    the handler it replaced would have done: in a prefork pool process that
    is the pool's own handler, which ends the process.
    """

    def __init__(self) -> None:
        self.stopper: TreeStopper | None = None
        self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        stopper = self.stopper
        if stopper is not None:
            stopper.on_sigterm(signum, frame)  # stops the tree, then dies of SIGTERM
            return
        previous = self._previous
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)


class TreeStopper:
    """Stops a try's process tree when this pool process is told to stop it.

    The try runs in its own session, so a signal to this pool process alone
    would leave it running unsupervised. Two ways in:

    - ``on_sigterm`` (through ``SigtermRelay``): Celery's terminate (a kill
      from the console) or a cold shutdown. The tree is stopped (SIGTERM, then
      SIGKILL after a grace period, waiting until it is gone); then
      ``run_workload`` returns how it ended, the task stores that outcome as
      any other, and only then does this process die of SIGTERM, as Celery
      expects of a terminated job. Celery records the task as REVOKED the
      moment it sends the signal, while the tree may run on for the whole
      grace period: the executor waits for the outcome stored here instead.
    - ``stop``: the lease keeper found the claim taken over. The tree is
      signalled without waiting, and ``run_workload`` reports how it ended.

    During a try's quiet start ``run_workload`` has not named the try's pid
    yet (``started``), so the stopper looks for it: the try's process is the
    only child of this pool process besides its guard.
    """

    def __init__(self, grace: float = TERMINATE_GRACE_SECONDS, spare: int | None = None) -> None:
        self.grace = grace
        self.spare = spare
        """A child of this process that is not the try's (the guard process, guard.py)."""
        self.pid: int | None = None
        self.requested = False
        self.terminated = False
        """SIGTERM came: once the try's outcome is stored, this process must die of it."""

    def started(self, pid: int) -> None:
        if pid == self.pid:
            return  # named at the spawn already (_SpawnWatch)
        self.pid = pid
        if self.requested:
            self.stop()

    def _leaders(self) -> list[int]:
        if self.pid is not None:
            return [self.pid]
        try:
            return [child.pid for child in psutil.Process().children() if child.pid != self.spare]
        except psutil.Error:
            return []

    def on_sigterm(self, signum: int, frame: object) -> None:
        """Stop the try's tree and wait until it is gone; the task then stores its end and dies.

        Runs in the task's thread (a signal handler), which was waiting for
        the try's process: once this returns, that wait sees the process
        ended and the task goes on to store the outcome. With no process
        started yet, the one about to start is stopped as soon as it does.
        """
        self.terminated = True
        self.requested = True
        for pid in self._leaders():
            kill_process_tree(pid, self.grace)

    def stop(self) -> None:
        self.requested = True
        for pid in self._leaders():
            stop_tree(pid, self.grace)


def stop_tree(pid: int, grace: float) -> None:
    """SIGTERM a process group and its descendants now, SIGKILL the survivors after ``grace``.

    Unlike ``supervisor.kill_process_tree`` it neither blocks nor waits on the
    leader: reaping the leader here would rob ``run_workload`` of its exit status.
    """
    try:
        leader = psutil.Process(pid)
        members = [leader, *leader.children(recursive=True)]
    except psutil.NoSuchProcess:
        members = []
    signal_group(pid, signal.SIGTERM)
    for member in members:
        signal_process(member, signal.SIGTERM)

    def finish_off() -> None:
        signal_group(pid, signal.SIGKILL)
        for member in members:
            if member.is_running():
                signal_process(member, signal.SIGKILL)

    timer = threading.Timer(grace, finish_off)
    timer.daemon = True
    timer.start()
