"""Fixtures for the Celery executor tests: a real redis-server and real worker processes.

Every test here talks to a Redis started on a free loopback port (no
persistence, in a temporary directory) and to workers started the way an
operator starts them (``python -m executors.celery worker``). A missing
redis-server fails the tests: it never skips them.

Settings are shortened so that failures show within seconds: a try's lease
lasts 2 s, and Redis hands an unacknowledged message to another worker after
4 s, so a try that outlives that is delivered again and the claim check must
drop the copy.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis

from executors.celery.executor import CeleryExecutor
from executors.state import TaskState
from executors.task_key import TaskKey
from executors.workload import TaskReport, Workload
from tests.helpers import REPO, processes_with_env_marker

DEADLINE = 30.0
"""Generous bound for anything these tests wait for; never a measure of speed."""

TEST_SETTINGS = {
    "lease_seconds": 2.0,
    "visibility_timeout": 4.0,
    "log_push_seconds": 0.5,
    "poll_interval": 0.05,
    "inspect_interval": 0.5,
    "inspect_timeout": 0.5,
    "connect_timeout": 1.0,
}


def wait_for(predicate: Callable[[], object], what: str, timeout: float = DEADLINE) -> None:
    """Poll ``predicate`` until truthy; fail naming ``what`` after a generous bound."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {timeout}s")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# Read once, at import: tests clear EXECCONSOLE* variables for their engines.
_REDIS_PORTS = os.environ.get("EXECCONSOLE_TEST_REDIS_PORTS", "")


def redis_port() -> int:
    """A free port for a test's redis-server: any, or one of ``EXECCONSOLE_TEST_REDIS_PORTS``.

    ``EXECCONSOLE_TEST_REDIS_PORTS=6470-6479`` keeps the tests' servers within a
    range, for machines where other people's Redis servers use other ports.
    """
    wanted = _REDIS_PORTS
    if not wanted:
        return free_port()
    first, _, last = wanted.partition("-")
    for port in range(int(first), int(last or first) + 1):
        with socket.socket() as probe:
            # As redis-server binds: a port whose old connections linger in
            # TIME_WAIT is free for it.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.fail(f"no free port in EXECCONSOLE_TEST_REDIS_PORTS={wanted} for redis-server")


class RedisServer:
    """A redis-server of our own on a free loopback port; stop and start it again at will."""

    def __init__(self, directory: Path) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            pytest.fail(
                "redis-server is not installed, and the Celery tests need a real one: "
                "install it (apt-get install redis-server) and run the tests again"
            )
        self.executable = executable
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = redis_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.hung = False
        """SIGSTOPped by ``hang`` and not yet continued."""

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=2)

    def start(self) -> None:
        command = [
            self.executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.directory),
        ]  # fmt: skip
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        wait_for(self._answers, f"redis-server on port {self.port} to answer")

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
            raise AssertionError(f"redis-server exited with {self.process.returncode}:\n{log}")
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def hang(self) -> None:
        """SIGSTOP the server: it still accepts connections (the kernel does) but never answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)
        self.hung = True

    def unhang(self) -> None:
        """SIGCONT the server: it answers again, with every key it had."""
        if self.process is not None and self.hung:
            self.process.send_signal(signal.SIGCONT)
        self.hung = False

    def stop(self, keep_data: bool = False) -> None:
        """Shut Redis down; with ``keep_data`` it saves a snapshot that the next start loads."""
        if self.process is None:
            return
        # A stopped server would hold SIGTERM pending forever (and SAVE would hang).
        self.unhang()
        if keep_data:
            self.client().save()  # the snapshot the next start loads
        # SIGTERM rather than SHUTDOWN: redis-py retries a command whose
        # connection closes, which here means seconds of reconnect attempts.
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


class WorkerProcess:
    """``python -m executors.celery worker`` as an operator would start it."""

    def __init__(
        self,
        name: str,
        queues: str,
        concurrency: int,
        env: dict[str, str],
        logs: Path,
        loglevel: str = "INFO",
    ) -> None:
        self.nodename = f"{name}@test"
        self.loglevel = loglevel
        self.broker_url = env["EXECCONSOLE__CELERY__BROKER_URL"]
        self.log_path = logs / f"worker-{name}-{uuid.uuid4().hex[:6]}.log"
        command = [
            sys.executable, "-m", "executors.celery", "worker",
            "--queues", queues,
            "--concurrency", str(concurrency),
            "--hostname", self.nodename,
            "--loglevel", loglevel,
        ]  # fmt: skip
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self) -> WorkerProcess:
        """Wait for the worker's "ready" line (or, logging less than INFO, for it to answer a ping)."""
        pinger = None
        if self.loglevel != "INFO":
            from celery import Celery

            pinger = Celery(broker=self.broker_url, set_as_current=False)

        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"worker {self.nodename} exited early:\n{self.log()[-3000:]}")
            if pinger is not None:
                return bool(pinger.control.ping(destination=[self.nodename], timeout=0.5))
            return f"{self.nodename} ready." in self.log()

        try:
            wait_for(ready, f"worker {self.nodename} to be ready")
        finally:
            if pinger is not None:
                pinger.close()
        return self

    def pool_pids(self) -> list[int]:
        try:
            return [child.pid for child in psutil.Process(self.process.pid).children()]
        except psutil.NoSuchProcess:
            return []

    def kill_hard(self) -> None:
        """SIGKILL the worker and its pool processes at once, as a dying machine would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


@dataclass
class Cluster:
    """A Redis, the workers started on it, and executors pointed at it."""

    redis: RedisServer
    root: Path
    marker: str
    workers: list[WorkerProcess] = field(default_factory=list)
    executors: list[CeleryExecutor] = field(default_factory=list)
    worker_settings: dict[str, object] = field(default_factory=dict)
    """Settings for workers started from now on, beyond TEST_SETTINGS."""

    @property
    def options(self) -> dict[str, object]:
        return {"broker_url": self.redis.url, **TEST_SETTINGS}

    def worker_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EXECCONSOLE")}
        env["EXECCONSOLE_TEST_MARKER"] = self.marker
        env["EXECCONSOLE__CELERY__BROKER_URL"] = self.redis.url
        for name, value in {**TEST_SETTINGS, **self.worker_settings}.items():
            env[f"EXECCONSOLE__CELERY__{name.upper()}"] = str(value)
        return env

    def start_worker(
        self, name: str, queues: str = "default", concurrency: int = 2
    ) -> WorkerProcess:
        return self.start_workers((name, queues, concurrency))[0]

    def start_workers(self, *specs: tuple[str, str, int]) -> list[WorkerProcess]:
        """Start workers side by side (each takes a second or two), then wait for all."""
        started = [WorkerProcess(*spec, self.worker_env(), self.root) for spec in specs]
        self.workers.extend(started)
        return [worker.wait_ready() for worker in started]

    def executor(self, **options: object) -> CeleryExecutor:
        executor = CeleryExecutor(0, options={**self.options, **options})
        executor.start()
        self.executors.append(executor)
        return executor

    def workload(
        self,
        command: str,
        *,
        queue: str = "default",
        task: str | None = None,
        run: str = "r1",
        token: str | None = None,
    ) -> Workload:
        """A shell workload whose log lives under this cluster's directory."""
        task = task or f"t{uuid.uuid4().hex[:8]}"
        return Workload(
            key=TaskKey("celery_tests", task, run),
            command=[command],
            shell=True,
            log_path=str(self.root / "logs" / f"{task}.{run}.log"),
            token=token or uuid.uuid4().hex,
            env={"EXECCONSOLE_TEST_MARKER": self.marker},
            queue=queue,
        )

    def close(self) -> None:
        for executor in self.executors:
            with contextlib.suppress(Exception):
                executor.end(timeout=0)
        # SIGKILL, not a warm shutdown: the tests are over, and Celery takes
        # seconds to stop even an idle worker. The CLI test covers warm stops.
        for worker in self.workers:
            worker.kill_hard()
        # Tries orphaned on purpose (a worker SIGKILLed under them) carry the marker.
        for process in processes_with_env_marker(self.marker):
            with contextlib.suppress(psutil.Error):
                process.kill()
        self.redis.stop()
        wait_for(
            lambda: not processes_with_env_marker(self.marker),
            "every worker and task process of the test to be gone",
        )


class Driver:
    """Heartbeats an executor and keeps every event it produced."""

    def __init__(self, executor: CeleryExecutor) -> None:
        self.executor = executor
        self.final: dict[TaskKey, tuple[TaskState, TaskReport | None]] = {}
        self.started: dict[TaskKey, TaskReport | None] = {}
        self.beats = 0

    def beat(self) -> None:
        self.executor.heartbeat()
        self.beats += 1
        for key, (state, report) in self.executor.get_event_buffer().items():
            if state.is_finished:
                self.final[key] = (state, report)
            elif state is TaskState.RUNNING:
                self.started[key] = report

    def until(self, predicate: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.beat()
            if predicate():
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"gave up waiting for {what} after {timeout}s; finished so far: {self.final}"
                )
            time.sleep(0.05)

    def until_started(self, *keys: TaskKey, timeout: float = DEADLINE) -> None:
        self.until(lambda: all(k in self.started for k in keys), f"{keys} to start", timeout)

    def until_finished(self, *keys: TaskKey, timeout: float = DEADLINE) -> None:
        self.until(lambda: all(k in self.final for k in keys), f"{keys} to finish", timeout)

    def state(self, key: TaskKey) -> TaskState:
        return self.final[key][0]

    def report(self, key: TaskKey) -> TaskReport:
        report = self.final[key][1]
        assert report is not None
        return report


def _new_cluster(root: Path) -> Cluster:
    server = RedisServer(root / "redis")
    server.start()
    (root / "logs").mkdir(exist_ok=True)
    return Cluster(redis=server, root=root, marker=f"celery-{uuid.uuid4().hex}")


@pytest.fixture(scope="session")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One Redis with two workers for the tests that disturb nothing.

    ``alpha@test`` consumes ``default`` and ``alpha``; ``beta@test`` consumes
    ``beta``. Tests that kill workers or Redis use ``private_cluster``.
    """
    cluster = _new_cluster(tmp_path_factory.mktemp("celery-shared"))
    try:
        cluster.start_workers(("alpha", "default,alpha", 2), ("beta", "beta", 2))
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def cluster(shared_cluster: Cluster) -> Iterator[Cluster]:
    """The shared cluster, with this test's executors ended afterwards."""
    yield shared_cluster
    for executor in shared_cluster.executors:
        with contextlib.suppress(Exception):
            executor.end(timeout=0)
    shared_cluster.executors.clear()


@pytest.fixture
def private_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A Redis of this test's own, with no workers yet; everything is stopped afterwards."""
    cluster = _new_cluster(tmp_path)
    try:
        yield cluster
    finally:
        cluster.close()


def lines(path: Path) -> list[str]:
    """The lines of a side-effect file (empty when nothing wrote it)."""
    return path.read_text().split() if path.exists() else []


# The home and engine factory of the engine-level Celery tests (one definition;
# a test module may still define its own ``home``).
@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from tests.celery.test_engine_celery import make_home

    return make_home(tmp_path, monkeypatch)


@pytest.fixture
def engines(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Request it after the cluster fixture, so engines stop before the cluster does."""
    from tests.celery.test_engine_celery import Engines

    built = Engines(home, monkeypatch)
    try:
        yield built
    finally:
        built.close()
