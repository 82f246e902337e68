"""A Redis that hangs (SIGSTOPped: it accepts connections and never answers) must not stall the engine.

The engine hosts ``local,celery`` in one thread. While Redis does not answer,
local tries keep starting and finishing, Celery tries keep their states, and
the executor says once that the broker is not answering; once Redis answers
again (SIGCONT) every Celery try ends exactly once. Stopping a scheduler
while Redis hangs is bounded and leaves no process behind; the tries it
could not account for are adopted by the next engine.

"Never waited on Redis again" is checked as: no pass of the engine took as
long as the socket timeout (5 s) after the executor found Redis not
answering. A pass takes milliseconds otherwise; it is the blocking that is
being checked, not speed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
import redis

from console import actions
from console.engine import Engine
from console.workflow import parse_workflow
from executors.celery.app import redis_client, socket_timeout
from executors.celery.probe import AnswerProbe, timed_out
from executors.celery.settings import CelerySettings
from store import Store
from tests.celery.conftest import DEADLINE, Cluster, RedisServer, wait_for
from tests.celery.test_engine_celery import (
    Engines,
    assert_accounted_once,
    cli_env_for,
    hold_until,
    idle,
    poll_rows,
    submit,
    trace_command,
    trace_lines,
)
from tests.helpers import REPO, run_cli, wait_until

pytestmark = pytest.mark.celery

SHUTDOWN_BOUND = 60.0
"""How long a scheduler stopped while Redis hangs may take to exit: a functional bound."""

NOT_ANSWERING = "not answering"


@contextlib.contextmanager
def hung(server: RedisServer) -> Iterator[None]:
    """Redis SIGSTOPped for the block; continued afterwards, whatever happened."""
    server.hang()
    try:
        yield
    finally:
        server.unhang()


def celery_workflow(name: str, trace: Path, release: Path, holders: int, quick: int) -> str:
    """Tries that hold a worker's pool process until ``release`` exists, and quick ones behind them."""
    tasks = [(f"hold{n}", hold_until(release)) for n in range(holders)]
    tasks += [(f"quick{n}", "") for n in range(quick)]
    return f'id = "{name}"\n' + "".join(
        f"""
        [[task]]
        id = "{task}"
        executor = "celery"
        shell = true
        command = "{trace_command(trace, then)}"
        """
        for task, then in tasks
    )


def local_workflow(name: str, count: int) -> str:
    return f'id = "{name}"\n' + "".join(
        f"""
        [[task]]
        id = "true{n}"
        executor = "local"
        command = ["/bin/true"]
        """
        for n in range(count)
    )


class Passes:
    """Iterates an engine, keeping the longest pass: the engine must never wait on Redis."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.longest = 0.0
        self.count = 0

    def until(
        self, predicate: Callable[[], object], what: str, timeout: float = DEADLINE * 2
    ) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"gave up waiting for {what} after {timeout}s:\n{self.engine.debug_dump()}"
                )
            self.one()

    def for_(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.one()

    def one(self) -> None:
        began = time.monotonic()
        self.engine.iterate()
        self.longest = max(self.longest, time.monotonic() - began)
        self.count += 1


def test_the_probe_says_when_a_hung_redis_answers_again(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    settings = CelerySettings(broker_url=server.url, connect_timeout=1.0)
    probe = AnswerProbe(lambda: [redis_client(settings, server.url, "probe-test")], interval=0.2)
    try:
        probe.start()  # answering at once: nothing hangs
        wait_for(lambda: probe.answering, "the probe to find Redis answering")
        with hung(server):
            client = redis_client(settings, server.url, "caller")
            with pytest.raises(redis.RedisError) as raised:
                client.ping()
            client.close()
            assert timed_out(raised.value)
            probe.start()
            assert not probe.answering
            time.sleep(socket_timeout(settings) + 1)  # a PING or two timed out meanwhile
            assert not probe.answering
        wait_for(lambda: probe.answering, "the probe to find Redis answering again")
    finally:
        probe.close()
        server.stop()
    # A refused connection fails at once: not a timeout (nothing listens on port 1).
    refused = redis_client(settings, "redis://127.0.0.1:1/0", "refused")
    with pytest.raises(redis.RedisError) as raised:
        refused.ping()
    assert not timed_out(raised.value)


def running_tasks(home: Path) -> set[str]:
    return {
        task
        for (task,) in poll_rows(home, "SELECT task_id FROM task_instances WHERE state = 'running'")
    }


def broker_notes(engine: Engine) -> list[str]:
    return [m for m in engine.messages if NOT_ANSWERING in m]


def test_local_tries_go_on_while_redis_hangs_and_celery_tries_end_once_after(
    private_cluster: Cluster, engines: Engines, tmp_path: Path
) -> None:
    cluster = private_cluster
    cluster.start_worker("steady", "default", concurrency=2)
    trace = tmp_path / "trace"
    release = tmp_path / "release"
    engine = engines.build(cluster, executor="local,celery", parallelism=4)
    submit(engine, celery_workflow("remote", trace, release, holders=2, quick=4))
    store = engine.store
    passes = Passes(engine)
    passes.until(
        lambda: running_tasks(engines.home) == {"hold0", "hold1"},
        "the two holding Celery tries to run before Redis hangs",
    )
    timeout = socket_timeout(engine.executors["celery"].settings)  # type: ignore[attr-defined]

    with hung(cluster.redis):
        # The first call that meets the hung Redis waits out the socket timeout.
        passes.until(
            lambda: engine.gauges()["executor.celery.broker_ok"] == 0,
            "the executor to find Redis not answering",
        )
        passes.longest = 0.0
        submit(engine, local_workflow("local", 20))
        passes.until(
            lambda: store.count_by_state(dag_id="local")["success"] == 20,
            "20 local tries to succeed while Redis hangs",
        )
        # Longer than the executor's pace of retrying Redis: it must not try from this thread.
        passes.for_(3.0)
        assert passes.longest < timeout, (
            f"a pass of the engine waited {passes.longest:.1f}s: on Redis, as it hangs"
        )
        remote = store.count_by_state(dag_id="remote")
        assert remote["failed"] == 0 and remote["up_for_retry"] == 0, remote
        assert remote["success"] == 0, remote
        assert len(broker_notes(engine)) == 1, list(engine.messages)
        assert cluster.redis.url in broker_notes(engine)[0]
        local_done = store.count_by_state(dag_id="local")["success"]
        print(
            f"while Redis hung: {local_done} local tries succeeded, {passes.count} engine passes, "
            f"the longest {passes.longest:.3f}s"
        )

    release.touch()
    passes.until(idle(engine), "every try to finish once Redis answers", timeout=120)
    assert local_done == 20
    assert engine.gauges()["executor.celery.broker_ok"] == 1
    assert len(broker_notes(engine)) == 1, list(engine.messages)
    assert len([m for m in engine.messages if "answers again" in m]) == 1, list(engine.messages)
    remote_tasks = {"hold0", "hold1", *(f"quick{n}" for n in range(4))}
    found = assert_accounted_once(engines.home, "remote", remote_tasks)
    assert {task: [t["state"] for t in tries] for task, tries in found.items()} == {
        task: ["success"] for task in remote_tasks
    }
    # Each Celery try ran exactly once: one side effect each.
    assert sorted(trace_lines(trace)) == sorted(f"{task} 1" for task in remote_tasks)
    local = assert_accounted_once(engines.home, "local", {f"true{n}" for n in range(20)})
    assert all([t["state"] for t in tries] == ["success"] for tries in local.values())


@pytest.mark.parametrize("mode", ["finish", "kill", "detach"])
def test_each_shutdown_mode_returns_while_redis_hangs_and_the_next_engine_adopts_what_was_left(
    private_cluster: Cluster, engines: Engines, tmp_path: Path, mode: str
) -> None:
    cluster = private_cluster
    cluster.start_worker("steady", "default", concurrency=2)
    trace = tmp_path / "trace"
    release = tmp_path / "release"
    # No limit: twenty tries in flight, eighteen of them sent and waiting in Redis.
    engine = engines.build(cluster, executor="local,celery", parallelism=0)
    submit(engine, celery_workflow("remote", trace, release, holders=2, quick=18))
    store = engine.store
    celery = engine.executors["celery"]
    passes = Passes(engine)
    passes.until(
        lambda: (
            running_tasks(engines.home) == {"hold0", "hold1"}
            and store.count_by_state(dag_id="remote")["queued"] == 18
            and celery.gauges()["executor.celery.unsent_tasks"] == 0
        ),
        "two Celery tries running and eighteen waiting in Redis",
    )

    # Hung without the executor having noticed: the shutdown meets it first.
    with hung(cluster.redis):
        began = time.monotonic()
        engine.shutdown(mode, timeout=10.0)
        took = time.monotonic() - began
        assert took < SHUTDOWN_BOUND, f"shutdown({mode!r}) took {took:.0f}s while Redis hung"
        print(f"shutdown({mode!r}) returned {took:.1f}s after Redis hung")
        assert not engine.started
        # Nothing was settled without Redis: every try is left for the next engine.
        counts = store.count_by_state(dag_id="remote")
        assert counts["running"] + counts["queued"] + counts["scheduled"] == 20, counts

    release.touch()
    second = engines.build(cluster, executor="local,celery", parallelism=0)
    passes = Passes(second)
    passes.until(idle(second), "the next engine to finish the run", timeout=120)
    tasks = {"hold0", "hold1", *(f"quick{n}" for n in range(18))}
    found = assert_accounted_once(engines.home, "remote", tasks)
    assert {task: [t["state"] for t in tries] for task, tries in found.items()} == {
        task: ["success"] for task in tasks
    }
    assert sorted(trace_lines(trace)) == sorted(f"{task} 1" for task in tasks)


def _session_processes(sid: int) -> list[psutil.Process]:
    """Live processes of session ``sid`` (the scheduler runs in a session of its own)."""
    found = []
    for process in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error, OSError):  # gone meanwhile
            if os.getsid(process.pid) == sid and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
    return found


def test_a_scheduler_stopped_while_redis_hangs_exits_and_the_next_one_finishes_the_run(
    private_cluster: Cluster, home: Path, tmp_path: Path
) -> None:
    cluster = private_cluster
    cluster.start_worker("steady", "default", concurrency=2)
    trace = tmp_path / "trace"
    release = tmp_path / "release"
    workflow = celery_workflow("remote", trace, release, holders=2, quick=8)
    env = cli_env_for(cluster, home, "local,celery")
    with Store(home / "execconsole.db") as store:
        spec = parse_workflow(textwrap.dedent(workflow), known_executors=["local", "celery"])
        actions.submit_workflow(store, spec, default_executor="local")
    log_path = tmp_path / "scheduler.log"
    with open(log_path, "wb") as log:
        scheduler = subprocess.Popen(
            # No limit: the quick tries wait in Redis, sent, when it hangs.
            [sys.executable, "-m", "console", "scheduler", "--executor", "local,celery"]
            + ["--parallelism", "0"],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    second: subprocess.CompletedProcess[str] | None = None
    try:
        wait_until(
            lambda: running_tasks(home) == {"hold0", "hold1"},
            timeout=DEADLINE,
            message="the two holding Celery tries to run",
        )
        with hung(cluster.redis):
            # Its warning (the note below is checked after it exited).
            wait_until(
                lambda: "executors.celery.executor: Redis" in log_path.read_text(errors="replace"),
                timeout=DEADLINE,
                message="the scheduler to find Redis failing",
            )
            members = _session_processes(scheduler.pid)
            assert scheduler.pid in {p.pid for p in members}
            began = time.monotonic()
            scheduler.send_signal(signal.SIGTERM)
            try:
                scheduler.wait(timeout=SHUTDOWN_BOUND)
            except subprocess.TimeoutExpired:
                raise AssertionError(
                    f"the scheduler did not exit within {SHUTDOWN_BOUND}s of SIGTERM while Redis "
                    f"hung:\n{log_path.read_text(errors='replace')[-3000:]}"
                ) from None
            took = time.monotonic() - began
            left = [p for p in members if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
            assert not left, left
            assert not _session_processes(scheduler.pid)
            print(f"scheduler exited {took:.1f}s after SIGTERM with Redis hung")
        said = log_path.read_text(errors="replace")
        notes = [line for line in said.splitlines() if "celery: Redis at" in line]
        assert len(notes) == 1 and NOT_ANSWERING in notes[0], said
        release.touch()
        second = run_cli(home, "scheduler", "--until-idle", env=env, timeout=180)
        assert second.returncode == 0, second.stderr
    finally:
        if scheduler.poll() is None:
            os.killpg(scheduler.pid, signal.SIGKILL)
            scheduler.wait(timeout=10)

    tasks = {"hold0", "hold1", *(f"quick{n}" for n in range(8))}
    found = assert_accounted_once(home, "remote", tasks)
    assert {task: [t["state"] for t in tries] for task, tries in found.items()} == {
        task: ["success"] for task in tasks
    }
    assert sorted(trace_lines(trace)) == sorted(f"{task} 1" for task in tasks)
