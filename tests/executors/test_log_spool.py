"""Log spools: silent short tries create no log file; every try's output still lands in its own.

The LocalExecutor's workers run with a long quiet start here, so that "ends
within its quiet start" holds for ``true`` even on a slow, shared machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from executors.adoption import adopt_from_claims
from executors.base import AdoptionOutcome, AdoptionRecord
from executors.claims import ClaimBook
from executors.local import LocalExecutor
from executors.log_spool import SPOOL_PREFIX, LogSpool, writer_name
from executors.state import TaskState
from executors.task_key import TaskKey
from tests.executors.conftest import Driver, MakeLocal, is_gone, make_workload, wait_for

LONG_QUIET_START = 1.0


def spools_in(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.startswith(SPOOL_PREFIX))


def test_silent_short_tries_share_one_spool_and_leave_no_log_file(
    make_local: MakeLocal, home: Path
) -> None:
    executor = make_local(1, quiet_start=LONG_QUIET_START)
    driver = Driver(executor)
    workloads = [make_workload(home, ["true"], task=f"silent{i}") for i in range(5)]
    for workload in workloads:
        executor.queue_workload(workload)
    driver.until_finished(*(w.key for w in workloads))

    assert all(driver.state(w.key) is TaskState.SUCCESS for w in workloads)
    assert not any(os.path.exists(w.log_path) for w in workloads)
    logs = home / "logs"
    # Besides the workers' own log, only the spool: no file per try.
    assert sorted(os.listdir(logs)) == [*spools_in(logs), "local-workers.log"]
    assert len(spools_in(logs)) == 1  # one worker, one spool, reused by every try
    executor.end()
    assert spools_in(logs) == []  # a worker that ends removes its spool


def test_each_try_that_writes_gets_only_its_own_output(make_local: MakeLocal, home: Path) -> None:
    executor = make_local(1, quiet_start=LONG_QUIET_START)
    driver = Driver(executor)
    hello = make_workload(home, "echo hello; echo oops >&2", task="hello")
    silent = make_workload(home, ["true"], task="silent")
    world = make_workload(home, "echo world", task="world")
    missing = make_workload(home, ["/no/such/program"], task="missing")
    for workload in (hello, missing, world, silent):
        executor.queue_workload(workload)
    driver.until_finished(hello.key, silent.key, world.key, missing.key)

    assert Path(hello.log_path).read_text() == "hello\noops\n"
    assert not os.path.exists(silent.log_path)
    assert Path(world.log_path).read_text() == "world\n"
    assert "could not start '/no/such/program'" in Path(missing.log_path).read_text()
    assert driver.state(missing.key) is TaskState.FAILED
    # What is left in the spool is nobody's output.
    [spool] = spools_in(home / "logs")
    assert (home / "logs" / spool).stat().st_size == 0


def test_a_try_that_outlives_its_quiet_start_writes_to_its_log_file_while_it_runs(
    make_local: MakeLocal, home: Path, tmp_path: Path
) -> None:
    executor = make_local(1, quiet_start=0.2)
    driver = Driver(executor)
    gate = tmp_path / "gate"
    slow = make_workload(
        home, f"echo before; while [ ! -e {gate} ]; do sleep 0.05; done; echo after", task="slow"
    )
    executor.queue_workload(slow)
    driver.until_started(slow.key)

    # The engine hears the try started only once its log file is in place.
    assert driver.started[slow.key] is not None
    assert Path(slow.log_path).read_text() == "before\n"
    gate.touch()
    driver.until_finished(slow.key)
    assert Path(slow.log_path).read_text() == "before\nafter\n"


def test_a_silent_try_that_outlives_its_quiet_start_gets_an_empty_log_file(
    make_local: MakeLocal, home: Path
) -> None:
    executor = make_local(1, quiet_start=0.05)
    driver = Driver(executor)
    slow = make_workload(home, ["sleep", "0.3"], task="slow")
    executor.queue_workload(slow)
    driver.until_finished(slow.key)
    assert Path(slow.log_path).read_bytes() == b""


def test_the_spool_follows_tries_into_another_runs_folder(
    make_local: MakeLocal, home: Path
) -> None:
    executor = make_local(1, quiet_start=LONG_QUIET_START)
    driver = Driver(executor)
    first = replace(
        make_workload(home, ["true"], task="a", run="r1"), log_path=str(home / "logs/r1/a.log")
    )
    second = replace(
        make_workload(home, ["true"], task="b", run="r2"), log_path=str(home / "logs/r2/b.log")
    )
    executor.queue_workload(first)
    driver.until_finished(first.key)
    assert len(spools_in(home / "logs" / "r1")) == 1
    executor.queue_workload(second)
    driver.until_finished(second.key)
    assert spools_in(home / "logs" / "r1") == []  # moved along, not left behind
    assert len(spools_in(home / "logs" / "r2")) == 1


def test_output_a_failed_hand_over_could_not_place_is_kept_apart(tmp_path: Path) -> None:
    spool = LogSpool("w1")
    fd = spool.descriptor_for(str(tmp_path / "one.log"))
    os.write(fd, b"first try's output\n")
    assert spool.holds_output()
    with pytest.raises(OSError):
        os.stat(tmp_path / "gone")
    spool.hand_over(str(tmp_path / "gone" / "one.log"))  # no such folder: the rename fails

    kept = tmp_path / f"{SPOOL_PREFIX}w1"
    assert kept.read_bytes() == b"first try's output\n"
    fd = spool.descriptor_for(str(tmp_path / "two.log"))
    os.write(fd, b"second\n")
    spool.hand_over(str(tmp_path / "two.log"))
    assert (tmp_path / "two.log").read_bytes() == b"second\n"
    assert kept.read_bytes() == b"first try's output\n"  # not truncated by the next spool


def test_a_worker_killed_in_a_quiet_start_leaves_its_output_to_the_try(
    make_local: MakeLocal, home: Path
) -> None:
    # A quiet start longer than the test: the try never leaves the spool by itself.
    executor = make_local(1, quiet_start=60)
    driver = Driver(executor)
    victim = make_workload(home, "echo partial; exec sleep 300", task="victim")
    executor.queue_workload(victim)
    logs = home / "logs"
    driver.until(
        lambda: logs.exists() and any((logs / name).stat().st_size for name in spools_in(logs)),
        "the try to write to the spool",
    )
    assert executor._claims is not None
    task_pid = executor._claims.read(victim.token)["pid"]  # type: ignore[index]
    [worker_pid] = [info.pid for info in executor.worker_processes() if info.alive]

    os.kill(worker_pid, signal.SIGKILL)
    driver.until_finished(victim.key)

    assert driver.state(victim.key) is TaskState.FAILED
    assert Path(victim.log_path).read_text() == "partial\n"
    assert spools_in(logs) == []
    wait_for(lambda: is_gone(task_pid), "the orphaned task process to be killed")


def test_an_engine_restart_gives_a_dead_workers_spool_to_the_try_it_ran(
    tmp_path: Path,
) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid nobody runs under any more (for the few ms of this test)
    claims = ClaimBook(tmp_path / "claims")
    token = "a" * 32
    assert claims.claim(token, worker=f"local:{dead.pid}", worker_pid=dead.pid)
    log_path = tmp_path / "logs" / "t.1.log"
    log_path.parent.mkdir()
    (log_path.parent / f"{SPOOL_PREFIX}{writer_name(dead.pid)}").write_text("half a line")
    record = AdoptionRecord(
        TaskKey("d", "t", "r"), TaskState.RUNNING, token, log_path=str(log_path)
    )

    outcomes, watched = adopt_from_claims(ClaimBook(tmp_path / "claims"), [record])

    assert outcomes[record.key].outcome is AdoptionOutcome.LOST
    assert not watched
    assert log_path.read_text() == "half a line"
    assert spools_in(log_path.parent) == []


def test_with_log_every_try_each_silent_try_gets_its_own_empty_log_file(
    make_local: MakeLocal, home: Path
) -> None:
    executor = make_local(1, quiet_start=LONG_QUIET_START, log_every_try="true")
    driver = Driver(executor)
    workloads = [make_workload(home, ["true"], task=f"silent{i}") for i in range(3)]
    for workload in workloads:
        executor.queue_workload(workload)
    driver.until_finished(*(w.key for w in workloads))
    assert [Path(w.log_path).read_bytes() for w in workloads] == [b"", b"", b""]
    assert spools_in(home / "logs") == []


def test_log_every_try_must_be_a_flag(home: Path) -> None:
    with pytest.raises(ValueError, match="'log_every_try' must be true or false"):
        LocalExecutor(1, home=str(home), options={"log_every_try": "sometimes"})
