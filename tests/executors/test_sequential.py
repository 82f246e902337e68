"""SequentialExecutor: one try at a time, inside heartbeat()."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from executors.adoption import LOST_AFTER_ADOPTION
from executors.base import AdoptionOutcome, AdoptionRecord
from executors.claims import ClaimBook
from executors.sequential import SequentialExecutor
from executors.state import TaskState
from tests.executors.conftest import Driver, is_gone, make_workload, wait_for


@pytest.fixture
def executor(tmp_path: Path) -> Iterator[SequentialExecutor]:
    made = SequentialExecutor(home=str(tmp_path / "home"), options={"terminate_grace": 1.0})
    made.start()
    yield made
    made.terminate()


def test_declares_itself_single_threaded_and_not_for_production() -> None:
    capabilities = SequentialExecutor.capabilities()
    assert capabilities["is_single_threaded"]
    assert not capabilities["is_production"]
    assert not capabilities["supports_kill"]
    assert not capabilities["supports_live_scaling"]
    assert capabilities["supports_adoption"]
    assert SequentialExecutor.name == "sequential"


def test_parallelism_is_always_one(tmp_path: Path) -> None:
    assert SequentialExecutor(8).parallelism == 1
    assert SequentialExecutor(0).parallelism == 1
    with pytest.raises(NotImplementedError):
        SequentialExecutor().set_parallelism(4)


def test_a_heartbeat_runs_one_try_to_its_end(executor: SequentialExecutor, tmp_path: Path) -> None:
    first = make_workload(tmp_path, ["true"], run="a")
    second = make_workload(tmp_path, "exit 3", run="b")
    executor.queue_workload(first)
    executor.queue_workload(second)

    executor.heartbeat()
    events = executor.get_event_buffer()
    assert events[first.key][0] is TaskState.SUCCESS
    assert second.key in executor.queued_tasks
    assert executor.running == set()

    executor.heartbeat()
    state, report = executor.get_event_buffer()[second.key]
    assert state is TaskState.FAILED
    assert report is not None and report.reason == "exited with code 3"


def test_running_is_reported_before_the_end(executor: SequentialExecutor, tmp_path: Path) -> None:
    item = make_workload(tmp_path, "echo hi")
    seen = []
    original = executor.running_state

    def spy(key, info=None):  # type: ignore[no-untyped-def]
        seen.append((key, info))
        original(key, info)

    executor.running_state = spy  # type: ignore[method-assign]
    executor.queue_workload(item)
    executor.heartbeat()
    assert [key for key, _ in seen] == [item.key]
    assert seen[0][1] is not None and seen[0][1].pid
    assert Path(item.log_path).read_text() == "hi\n"


def test_shell_env_cwd_and_missing_commands(executor: SequentialExecutor, tmp_path: Path) -> None:
    driver = Driver(executor)
    workdir = tmp_path / "wd"
    workdir.mkdir()
    shell = make_workload(tmp_path, 'echo "$WHO in $(pwd)"', env={"WHO": "me"}, cwd=str(workdir))
    missing = make_workload(tmp_path, ["/no/such/tool"], task="missing")
    executor.queue_workload(shell)
    executor.queue_workload(missing)
    driver.until_finished(shell.key, missing.key)
    assert Path(shell.log_path).read_text() == f"me in {workdir}\n"
    assert driver.state(missing.key) is TaskState.FAILED
    assert "/no/such/tool" in (driver.reason(missing.key) or "")


def test_timeout_fails_the_try_with_a_reason(executor: SequentialExecutor, tmp_path: Path) -> None:
    driver = Driver(executor)
    item = make_workload(tmp_path, ["sleep", "300"], timeout=0.3)
    executor.queue_workload(item)
    driver.until_finished(item.key)
    assert driver.reason(item.key) == "timed out after 0.3s"


def test_a_claimed_token_is_not_run_again(executor: SequentialExecutor, tmp_path: Path) -> None:
    driver = Driver(executor)
    marker = tmp_path / "ran"
    item = make_workload(tmp_path, f"touch {marker}")
    assert ClaimBook(tmp_path / "home" / "claims").claim(item.token, worker="elsewhere")
    executor.queue_workload(item)
    driver.until_finished(item.key)
    assert driver.state(item.key) is TaskState.FAILED
    assert "claimed or revoked elsewhere" in (driver.reason(item.key) or "")
    assert not marker.exists()


def test_adoption_revokes_unclaimed_and_watches_running_tries(
    executor: SequentialExecutor, tmp_path: Path
) -> None:
    claims = ClaimBook(tmp_path / "home" / "claims")
    queued = make_workload(tmp_path, ["true"], task="queued")
    release = tmp_path / "release"
    runner = subprocess.Popen(
        ["sh", "-c", f"while [ ! -e {release} ]; do sleep 0.05; done"], start_new_session=True
    )
    try:
        running = make_workload(tmp_path, ["true"], task="running")
        claims.claim(running.token, worker="old", worker_pid=1)
        claims.record_started(
            running.token, pid=runner.pid, pid_create_time=psutil.Process(runner.pid).create_time()
        )
        outcomes = executor.adopt(
            [
                AdoptionRecord(queued.key, TaskState.QUEUED, queued.token),
                AdoptionRecord(running.key, TaskState.RUNNING, running.token),
            ]
        )
        assert outcomes[queued.key].outcome is AdoptionOutcome.NEVER_STARTED
        assert outcomes[running.key].outcome is AdoptionOutcome.ADOPTED
        assert executor.running == {running.key}

        release.touch()
        runner.wait(timeout=30)
        driver = Driver(executor)
        driver.until_finished(running.key)
        assert driver.state(running.key) is TaskState.FAILED
        assert driver.reason(running.key) == LOST_AFTER_ADOPTION
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()


def test_terminate_from_another_thread_stops_the_inline_try(
    executor: SequentialExecutor, tmp_path: Path
) -> None:
    item = make_workload(tmp_path, ["sleep", "300"])
    executor.queue_workload(item)
    beat = threading.Thread(target=executor.heartbeat)
    beat.start()
    wait_for(lambda: executor._current is not None, "the try to start")
    pid = executor._current.pid  # type: ignore[union-attr]
    executor.terminate()
    beat.join(timeout=30)
    assert not beat.is_alive()
    state, report = executor.get_event_buffer()[item.key]
    assert state is TaskState.FAILED
    assert report is not None and (report.reason or "").startswith("killed: executor terminated")
    assert pid is not None and is_gone(pid)
