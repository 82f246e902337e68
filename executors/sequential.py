"""SequentialExecutor: one try at a time, run inside ``heartbeat()`` on the caller's thread.

For debugging and for machines where starting worker processes is not
wanted. ``execute_async`` only notes the workload; ``sync`` (called by every
heartbeat) runs each noted workload to the end through
``executors.supervisor.run_workload`` before returning. A host must therefore
call ``heartbeat`` off its UI thread (``is_single_threaded``).

Tries still get their own process group, /dev/null stdin, log file, timeout
and claim file, so a try this executor started can be adopted by the next
engine if this one dies while it runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

from executors.adoption import AdoptedTry, adopt_from_claims, outcome_state, poll_adopted
from executors.base import Adoption, AdoptionRecord, BaseExecutor
from executors.claims import ClaimBook
from executors.options import ExecutorOption
from executors.process_trees import same_process_alive
from executors.supervisor import (
    HOSTNAME,
    TERMINATE_GRACE_SECONDS,
    NotClaimed,
    kill_process_tree,
    now_iso,
    run_workload,
)
from executors.task_key import TaskKey
from executors.workload import TaskReport, Workload

log = logging.getLogger(__name__)


class SequentialExecutor(BaseExecutor):
    """Run one try at a time, inline, inside ``heartbeat()``.

    Parallelism is always 1, whatever is configured.
    """

    name: ClassVar[str] = "sequential"
    is_local: ClassVar[bool] = True
    is_single_threaded: ClassVar[bool] = True
    is_production: ClassVar[bool] = False
    serve_logs: ClassVar[bool] = True
    supports_kill: ClassVar[bool] = False
    supports_live_scaling: ClassVar[bool] = False
    supports_adoption: ClassVar[bool] = True
    option_specs: ClassVar[Mapping[str, ExecutorOption]] = MappingProxyType(
        {"terminate_grace": ExecutorOption("seconds", 0, 3600)}
    )

    def __init__(
        self,
        parallelism: int = 1,
        *,
        name: str | None = None,
        home: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        if parallelism != 1:
            log.info(
                "%s runs one try at a time; parallelism %s ignored",
                type(self).__name__,
                parallelism,
            )
        super().__init__(1, name=name, home=home, options=options)
        self.terminate_grace = float(self.options.get("terminate_grace", TERMINATE_GRACE_SECONDS))
        self._to_run: deque[tuple[TaskKey, Workload]] = deque()
        self._adopted: dict[TaskKey, AdoptedTry] = {}
        self._claims: ClaimBook | None = None
        self._owned_home: str | None = None
        self._current: TaskReport | None = None  # the try running inline right now
        self._stopping = False
        # Set by stop_requested: the host is stopping; the inline try is killed
        # at the deadline (why it is killed) and no other starts.
        self._host_stopping = False
        self._stop_timer: threading.Timer | None = None
        self._inline_killed: str | None = None
        self._worker = f"{self.executor_name}:{os.getpid()}"

    def start(self) -> None:
        """Open the claim files under home (a temporary directory when there is none)."""
        if self._claims is not None:
            return
        home = self.home
        if home is None:
            home = self._owned_home = tempfile.mkdtemp(prefix="execconsole-sequential-")
        self._claims = ClaimBook(Path(home) / "claims")
        self._stopping = self._host_stopping = False

    def execute_async(self, key: TaskKey, workload: Workload) -> None:
        """Note the workload; the ``sync`` of this same heartbeat runs it."""
        self._to_run.append((key, workload))

    def sync(self) -> None:
        """Run every noted workload to its end, then check adopted tries."""
        if self._claims is None:
            self.start()
        while self._to_run and not self._stopping and not self._host_stopping:
            key, workload = self._to_run.popleft()
            self._run_one(key, workload)
        if self._adopted:
            self._poll_adopted()

    def _run_one(self, key: TaskKey, workload: Workload) -> None:
        def started(report: TaskReport) -> None:
            self._current = report
            self.running_state(key, report)

        try:
            report = run_workload(
                workload,
                self._claims,
                worker=self._worker,
                on_started=started,
                terminate_grace=self.terminate_grace,
            )
        except NotClaimed:
            self.fail(
                key,
                TaskReport(
                    hostname=HOSTNAME,
                    worker=self._worker,
                    ended_at=now_iso(),
                    reason="not started: its token was claimed or revoked elsewhere",
                ),
            )
            return
        except OSError as error:  # e.g. the log file's folder cannot be created
            self.fail(
                key,
                TaskReport(
                    hostname=HOSTNAME,
                    worker=self._worker,
                    ended_at=now_iso(),
                    reason=f"could not run it: {error}",
                ),
            )
            return
        finally:
            self._current = None
            if self._stop_timer is not None:
                self._stop_timer.cancel()
        if self._inline_killed is not None:
            report.reason, self._inline_killed = self._inline_killed, None
            self.fail(key, report)
        elif self._stopping:
            report.reason = "killed: executor terminated"
            self.fail(key, report)
        else:
            self.change_state(key, outcome_state(report), report)

    def stop_requested(self, kill_after: float) -> None:
        """Kill the try running inline once ``kill_after`` has passed; start no other."""
        self._host_stopping = True
        if self._current is None:
            return
        if self._stop_timer is not None:
            self._stop_timer.cancel()
        why = (
            f"killed: the engine was stopping and it still ran after {kill_after:g}s"
            if kill_after > 0
            else "killed: the engine was stopped at once"
        )
        # A timer thread: the engine's own thread is inside this very try.
        self._stop_timer = threading.Timer(kill_after, self._kill_inline, args=(why,))
        self._stop_timer.daemon = True
        self._stop_timer.start()

    def _kill_inline(self, why: str) -> None:
        current = self._current
        if current is not None and current.pid:
            self._inline_killed = why
            kill_process_tree(current.pid, self.terminate_grace)

    def _poll_adopted(self) -> None:
        assert self._claims is not None
        now = time.monotonic()
        for key, state, report in poll_adopted(
            self._adopted, self._claims, now, self.terminate_grace, self.executor_name
        ):
            self.change_state(key, state, report)

    def adopt(self, records: list[AdoptionRecord]) -> dict[TaskKey, Adoption]:
        """Take over tries a dead engine left in flight (see ``executors.adoption.adopt_from_claims``)."""
        self.start()
        assert self._claims is not None
        outcomes, watched = adopt_from_claims(self._claims, records)
        for key, adopted in watched.items():
            self._adopted[key] = adopted
            self.running.add(key)
        return outcomes

    def end(self, timeout: float = 10.0) -> None:
        """Run what was triggered already, wait for adopted tries up to ``timeout``, then close."""
        self.sync()
        deadline = time.monotonic() + timeout
        while self._adopted and time.monotonic() < deadline:
            time.sleep(AdoptedTry.FINISH_RECORD_GRACE / 10)
            self._poll_adopted()
        if self._adopted:
            self.terminate()
            return
        self._close()

    def terminate(self) -> None:
        """Kill the try running inline (callable from another thread) and adopted tries.

        Tries triggered but not yet run are failed as never started.
        """
        self._stopping = True
        current = self._current
        if current is not None and current.pid:
            kill_process_tree(current.pid, self.terminate_grace)
        for key, adopted in list(self._adopted.items()):
            if same_process_alive(adopted.pid, adopted.create_time) and adopted.pid:
                kill_process_tree(adopted.pid, self.terminate_grace)
            self.fail(
                key,
                TaskReport(
                    pid=adopted.pid,
                    hostname=HOSTNAME,
                    ended_at=now_iso(),
                    reason="killed: executor terminated",
                ),
            )
        self._adopted.clear()
        while self._to_run:
            key, workload = self._to_run.popleft()
            if self._claims is not None:
                with contextlib.suppress(OSError, ValueError):
                    self._claims.revoke(workload.token, why="executor terminated")
            self.fail(
                key,
                TaskReport(
                    hostname=HOSTNAME, ended_at=now_iso(), reason="not started: executor terminated"
                ),
            )
        self._close()

    def _close(self) -> None:
        if self._current is not None:
            return  # terminate() from another thread: the inline try is still being reported
        self._claims = None
        if self._owned_home:
            shutil.rmtree(self._owned_home, ignore_errors=True)
            self._owned_home = None

    def forget_finished(self, in_flight_tokens: set[str]) -> None:
        """Delete the claim files of tries whose outcome the engine has committed."""
        if self._claims is not None:
            self._claims.prune(in_flight_tokens)
