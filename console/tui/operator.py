"""The console's operator actions: console/actions.py, on the console's own store connection.

Every key that changes something ends here, and every method calls the same
function in ``console.actions`` that the headless command calls, so a key and
its command can never disagree. Requests are then awaited (bounded) so the
operator reads what the engine did, or why it refused, in one line.

Plain Python: the console runs these on worker threads, never on the UI thread.
"""

from __future__ import annotations

import os
import shlex
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from console import actions
from console.cli.output import tasks
from console.shell_syntax import shell_syntax
from executors.task_key import TaskKey

if TYPE_CHECKING:
    from console.actions import Requested
    from store import Store
    from store.records import RequestRecord
    from store.runs import RunSummary

REQUEST_WAIT_SECONDS = 10.0

# What s and f mark a try.
MARKS = {"mark_success": "success", "mark_failed": "failed"}


def state_refusal(
    name: str, key: object, state: str, *, retry_delay: bool | None = None
) -> str | None:
    """Why the console's task action ``name`` cannot apply to a try in ``state``, or None.

    The line ``console.actions`` refuses the action with (its ``*_refusal``
    functions are the one definition); None too for actions that a try's
    state does not decide (detail, logs, cancel_run). ``retry_delay`` as in
    ``actions.retry_refusal``.
    """
    if name == "kill":
        return actions.kill_refusal(key, state)
    if name in ("retry", "retry_downstream"):
        return actions.retry_refusal(key, state, retry_delay=retry_delay)
    if name in MARKS:
        return actions.mark_refusal(key, state, MARKS[name]) or actions.already_marked(
            key, state, MARKS[name]
        )
    if name in ("priority_up", "priority_down"):
        return actions.priority_refusal(key, state)
    return None


class OperatorActions:
    """Operator actions on one store connection (used by one worker thread at a time).

    Args:
        store_path: the store file; a connection of its own, so that writes never
            wait behind the snapshot builder's reads.
        executor_names: the configured executors, default first.
        engine_present: whether some engine (here or attached) will carry out
            requests; a callable when that changes as the console runs (its
            engine stops, the engine it watched goes, another takes the store).
    """

    def __init__(
        self,
        store_path: str | os.PathLike[str],
        executor_names: Sequence[str],
        engine_present: bool | Callable[[], bool],
    ) -> None:
        self.store_path = store_path
        self.executor_names = list(executor_names)
        self._engine_present = engine_present
        self._store: Store | None = None
        self._lock = threading.Lock()

    @property
    def store(self) -> Store:
        if self._store is None:
            from store import Store

            self._store = Store(self.store_path)
        return self._store

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None

    @property
    def engine_present(self) -> bool:
        present = self._engine_present
        return present() if callable(present) else present

    def _outcome(
        self, requested: Requested, describe: Callable[[RequestRecord], str] | None = None
    ) -> str:
        """What became of a request: the engine's one-line result (or ``describe``'s account
        of the request carried out), or where it stands."""
        if not self.engine_present:
            return f"request {requested.request_id} ({requested.kind}) written: it runs when an engine starts"
        request = actions.wait_for(self.store, requested.request_id, REQUEST_WAIT_SECONDS)
        if request is None:
            return (
                f"request {requested.request_id} ({requested.kind}) is still waiting for the engine"
            )
        if request.status == "rejected":
            raise RequestRejected(request.result or f"{requested.kind} was refused")
        if describe is not None:
            return describe(request)
        return request.result or f"{requested.kind} done"

    # ---- requests (carried out by the engine that owns the store) ----------------
    def kill(self, key: TaskKey) -> str:
        with self._lock:
            return self._outcome(actions.kill(self.store, [key]))

    def retry(self, key: TaskKey, *, downstream: bool = False) -> str:
        """A retry's outcome in one line; with ``downstream``, counted rather than listed
        (the engine's result names every task below: a toast of dozens of keys)."""
        with self._lock:
            requested = actions.retry(self.store, [key], downstream=downstream)
            return self._outcome(requested, describe=downstream_summary if downstream else None)

    def mark(self, key: TaskKey, state: str) -> str:
        with self._lock:
            return self._outcome(actions.mark(self.store, [key], state))

    def refusal(self, name: str, key: TaskKey) -> str | None:
        """Why the task action ``name`` would be refused for ``key``'s try now, or None.

        Read from the store, with the checks ``console.actions`` makes before
        writing a request (``state_refusal``, then the latest-try check of a
        retry or a mark): asked before the console asks "Kill ...?" or
        "Mark ...?", so that it never asks about a try it would then refuse.
        """
        with self._lock:
            record = self.store.resolve(key)
            refusal = state_refusal(
                name, record.key, record.state, retry_delay=bool(record.not_before)
            )
            if refusal is None and (name in MARKS or name in ("retry", "retry_downstream")):
                refusal = actions.latest_refusal(self.store, record)
        return refusal

    def cancel_run(self, dag_id: str, run_id: str) -> str:
        """Stop a whole run, as ``execconsole runs cancel dag/run`` does."""
        with self._lock:
            return self._outcome(actions.cancel_run(self.store, f"{dag_id}/{run_id}"))

    def run_summary(self, dag_id: str, run_id: str) -> RunSummary | None:
        """A run and its tasks by the state of their latest try (None: no such run).

        Read before the console asks "Cancel run ...?", to say how many tasks
        it would stop, or that there is nothing left to stop.
        """
        with self._lock:
            return self.store.run(dag_id, run_id)

    def set_priority(self, key: TaskKey, priority: int) -> str:
        with self._lock:
            return self._outcome(actions.set_priority(self.store, [key], priority))

    def change_priority(self, key: TaskKey, step: int) -> str:
        """Raise (``step`` > 0) or lower a waiting try's priority by ``step``."""
        with self._lock:
            record = self.store.resolve(key)
            return self._outcome(actions.set_priority(self.store, [key], record.priority + step))

    def pause(self) -> str:
        with self._lock:
            return self._outcome(actions.pause(self.store))

    def resume(self) -> str:
        with self._lock:
            return self._outcome(actions.resume(self.store))

    def set_parallelism(self, value: int, executor: str) -> str:
        with self._lock:
            return self._outcome(actions.set_parallelism(self.store, value, executor))

    # ---- submissions (written straight to the store) ------------------------------
    def submit_command(
        self,
        command_line: str,
        *,
        executor: str,
        task_id: str | None = None,
        dag_id: str = "adhoc",
        priority: int = 1,
        retries: int = 0,
        timeout: float | None = None,
        shell: bool = False,
    ) -> str:
        """Submit one ad-hoc task; the command line is split like a shell would.

        Refused, in the n form's terms, when it is empty, or when it holds
        shell syntax (``shell_syntax``) and ``shell`` is off: split into
        words, ``echo hi | tr a-z A-Z > out`` would print its words and
        write no file.
        """
        from store import InvalidRequest

        refusal = command_refusal(command_line, shell=shell)
        if refusal is not None:
            raise InvalidRequest(refusal)
        try:
            command = [command_line.strip()] if shell else shlex.split(command_line)
        except ValueError as error:
            raise InvalidRequest(f"the command cannot be split into words: {error}") from None
        with self._lock:
            key = actions.submit_command(
                self.store,
                [part for part in command if part] if not shell else command,
                executor=executor,
                configured_executors=self.executor_names,
                dag_id=dag_id,
                task_id=task_id or None,
                priority=priority,
                retries=retries,
                timeout=timeout,
                shell=shell,
            )
        return f"submitted {key}"

    def submit_workflow(self, path: str | os.PathLike[str], run_id: str | None = None) -> str:
        """Load a workflow file and submit it as one run."""
        from console.workflow import load_workflow

        spec = load_workflow(Path(path).expanduser(), known_executors=self.executor_names)
        with self._lock:
            run_id, keys = actions.submit_workflow(
                self.store, spec, default_executor=self.executor_names[0], run_id=run_id
            )
        return f"submitted {spec.dag_id}/{run_id}: {tasks(len(keys))}"


def downstream_summary(request: RequestRecord) -> str:
    """A retry with downstream carried out, in one short line: what is retried, how many
    tasks below it run again, and how many of them are killed first.

    Each task's own step is in the audit log (the Events panel, the detail
    screen), where the engine wrote it; ``tasks retry --downstream --json``
    lists them all.
    """
    details = request.payload.get("outcome") or {}
    retried = [_label(key) for key in details.get("retried") or []]
    cleared = details.get("cleared") or []
    what = ", ".join(retried) if len(retried) <= 2 else tasks(len(retried))
    line = f"retrying {what}" if retried else "nothing to retry (next tries already scheduled)"
    if not cleared:
        return line + "; nothing downstream"
    below = len(cleared)
    line += f" and {tasks(below)} downstream"
    killed = sum(1 for entry in cleared if entry.get("action") == "kill")
    if killed:
        line += f" ({killed:,} running: killed first)"
    return line + "; each one is in Events"


def _label(key: str) -> str:
    """``dag/task#try`` for a key the engine wrote in full (``dag/task/run#try``): the run
    is the selected task's, named by the question that was asked."""
    body, _, try_number = key.partition("#")
    parts = body.split("/")
    if len(parts) != 3 or not try_number:
        return key
    return f"{parts[0]}/{parts[1]}#{try_number}"


def command_refusal(command_line: str, *, shell: bool) -> str | None:
    """Why the n form cannot submit ``command_line`` as it stands, in the form's terms, or None."""
    if not command_line.strip():
        return "the command is empty: type the program and its arguments, e.g. sleep 30"
    found = None if shell else shell_syntax(command_line)
    if found is not None:
        return (
            f"the command has shell syntax ({found}) but runs without a shell: "
            f'tick "Run through the shell", or quote the {found} to pass it as a word'
        )
    return None


class RequestRejected(Exception):
    """The engine refused a request; the message is its one-line reason."""
