"""run_workload and kill_process_tree: one task as an OS process, and how it ended.

Every run_workload test runs twice: as the SequentialExecutor and Celery start
tasks (Popen) and as a LocalExecutor worker does (posix_spawn, in a process
whose descriptors are sealed, with the try's variables in its own environment).
"""

from __future__ import annotations

import functools
import os
import random
import signal
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest

from executors import spawn
from executors.claims import FINISHED, STARTED, ClaimBook
from executors.supervisor import NotClaimed, iso_from_ns, kill_process_tree, now_iso
from executors.supervisor import run_workload as supervisor_run_workload
from executors.task_environment import InheritedEnvironment
from executors.workload import TaskReport
from tests.executors.conftest import is_gone, make_workload, wait_for

RunWorkload = Callable[..., TaskReport]


@pytest.fixture
def claims(tmp_path: Path) -> ClaimBook:
    return ClaimBook(tmp_path / "claims")


@pytest.fixture(params=["popen", "posix_spawn"])
def run_workload(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RunWorkload]:
    if request.param == "popen":
        yield supervisor_run_workload
        return
    # As if sealed: the tasks here may inherit pytest's descriptors, which no test looks at.
    monkeypatch.setattr(spawn, "_sealed", True)
    environment = InheritedEnvironment()
    try:
        yield functools.partial(supervisor_run_workload, environment=environment)
    finally:
        environment.apply({})  # this process's environment as it was


def test_exit_zero_is_reported_without_a_reason(
    run_workload: RunWorkload, tmp_path: Path, claims: ClaimBook
) -> None:
    report = run_workload(make_workload(tmp_path, ["true"]), claims, worker="w")
    assert report.exit_code == 0
    assert report.signal is None
    assert report.reason is None
    assert report.pid and report.started_at and report.ended_at


def test_non_zero_exit_code_is_the_reason(
    run_workload: RunWorkload, tmp_path: Path, claims: ClaimBook
) -> None:
    report = run_workload(make_workload(tmp_path, "exit 3"), claims, worker="w")
    assert report.exit_code == 3
    assert report.reason == "exited with code 3"


def test_death_by_sigkill_reads_as_possibly_out_of_memory(
    run_workload: RunWorkload, tmp_path: Path, claims: ClaimBook
) -> None:
    report = run_workload(make_workload(tmp_path, ["sh", "-c", "kill -9 $$"]), claims, worker="w")
    assert report.signal == signal.SIGKILL
    assert report.exit_code is None
    assert report.reason == "killed by SIGKILL — possibly out of memory"


def test_shell_string_runs_through_the_shell(
    run_workload: RunWorkload, tmp_path: Path, claims: ClaimBook
) -> None:
    workload = make_workload(tmp_path, "echo one && echo two | tr a-z A-Z")
    report = run_workload(workload, claims, worker="w")
    assert report.exit_code == 0
    assert Path(workload.log_path).read_text() == "one\nTWO\n"


def test_env_and_cwd_reach_the_task(
    run_workload: RunWorkload, tmp_path: Path, claims: ClaimBook
) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    workload = make_workload(
        tmp_path, 'echo "$GREETING from $(pwd)"', env={"GREETING": "hello"}, cwd=str(workdir)
    )
    run_workload(workload, claims, worker="w")
    assert Path(workload.log_path).read_text() == f"hello from {workdir}\n"


def test_stdin_is_dev_null_and_stderr_goes_to_the_log(
    run_workload: RunWorkload, tmp_path: Path, claims: ClaimBook
) -> None:
    workload = make_workload(tmp_path, "cat; echo oops >&2; readlink /proc/self/fd/0")
    run_workload(workload, claims, worker="w")
    assert Path(workload.log_path).read_text() == "oops\n/dev/null\n"


def test_missing_command_fails_with_a_reason_naming_it(
    run_workload: RunWorkload, tmp_path: Path, claims: ClaimBook
) -> None:
    workload = make_workload(tmp_path, ["/no/such/program", "--flag"])
    report = run_workload(workload, claims, worker="w")
    assert report.exit_code == 127
    assert report.reason is not None
    assert "/no/such/program" in report.reason
    assert "could not start" in Path(workload.log_path).read_text()
    assert (claims.read(workload.token) or {})["state"] == FINISHED


def test_timeout_kills_the_task_and_says_so(
    run_workload: RunWorkload, tmp_path: Path, claims: ClaimBook
) -> None:
    workload = make_workload(tmp_path, ["sleep", "300"], timeout=0.5)
    report = run_workload(workload, claims, worker="w", terminate_grace=2)
    assert report.reason == "timed out after 0.5s"
    assert report.signal == signal.SIGTERM
    assert report.pid is not None and is_gone(report.pid)


def test_a_claimed_token_is_never_started_twice(
    run_workload: RunWorkload, tmp_path: Path, claims: ClaimBook
) -> None:
    workload = make_workload(tmp_path, ["true"])
    run_workload(workload, claims, worker="first")
    with pytest.raises(NotClaimed):
        run_workload(workload, claims, worker="second")


def test_a_revoked_token_is_never_started(
    run_workload: RunWorkload, tmp_path: Path, claims: ClaimBook
) -> None:
    marker = tmp_path / "ran"
    workload = make_workload(tmp_path, f"touch {marker}")
    assert claims.revoke(workload.token)
    with pytest.raises(NotClaimed):
        run_workload(workload, claims, worker="w")
    assert not marker.exists()


def test_started_report_and_claim_record_the_pid(
    run_workload: RunWorkload, tmp_path: Path, claims: ClaimBook
) -> None:
    seen: list[TaskReport] = []
    seen_claims: list[dict] = []
    workload = make_workload(tmp_path, ["true"])

    def on_started(report: TaskReport) -> None:
        seen.append(report)
        seen_claims.append(claims.read(workload.token) or {})

    final = run_workload(workload, claims, worker="w1", on_started=on_started)
    assert len(seen) == 1
    assert seen[0].pid == final.pid
    assert seen[0].pid_create_time is not None
    assert seen[0].worker == "w1"
    assert seen_claims[0]["state"] == STARTED
    assert seen_claims[0]["pid"] == final.pid
    assert (claims.read(workload.token) or {})["exit_code"] == 0


def test_a_program_that_may_not_be_executed_fails_with_126(
    run_workload: RunWorkload, tmp_path: Path, claims: ClaimBook
) -> None:
    program = tmp_path / "not-executable"
    program.write_text("#!/bin/sh\necho ran\n")
    program.chmod(0o644)
    workload = make_workload(tmp_path, [str(program)])
    report = run_workload(workload, claims, worker="w")
    assert report.exit_code == 126
    assert report.reason == f"could not start {str(program)!r}: Permission denied"
    assert Path(workload.log_path).read_text() == (
        f"execconsole: could not start {str(program)!r}: [Errno 13] Permission denied: "
        f"{str(program)!r}\n"
    )
    assert (claims.read(workload.token) or {})["exit_code"] == 126


def test_a_bare_program_name_is_looked_up_in_the_tries_own_path(
    run_workload: RunWorkload, tmp_path: Path, claims: ClaimBook
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program = bin_dir / "say-hello"
    program.write_text("#!/bin/sh\necho hello from $0\n")
    program.chmod(0o755)
    found = make_workload(tmp_path, ["say-hello"], run="found", env={"PATH": str(bin_dir)})
    assert run_workload(found, claims, worker="w").exit_code == 0
    assert Path(found.log_path).read_text() == f"hello from {program}\n"
    # Not on this process's PATH: only the try's PATH has it.
    missing = make_workload(tmp_path, ["say-hello"], run="missing")
    report = run_workload(missing, claims, worker="w")
    assert report.exit_code == 127
    assert report.reason == "could not start 'say-hello': No such file or directory"


def test_the_path_search_goes_past_a_program_that_cannot_run(
    run_workload: RunWorkload, tmp_path: Path, claims: ClaimBook
) -> None:
    """As Popen's search does (glibc's own would stop at the first one and fail)."""
    broken, good = tmp_path / "broken", tmp_path / "good"
    for directory, text in ((broken, "no #! line\n"), (good, "#!/bin/sh\necho good\n")):
        directory.mkdir()
        (directory / "prog").write_text(text)
        (directory / "prog").chmod(0o755)
    runs = make_workload(tmp_path, ["prog"], run="runs", env={"PATH": f"{broken}:{good}"})
    assert run_workload(runs, claims, worker="w").exit_code == 0
    assert Path(runs.log_path).read_text() == "good\n"
    fails = make_workload(tmp_path, ["prog"], run="fails", env={"PATH": f"{broken}"})
    report = run_workload(fails, claims, worker="w")
    assert report.exit_code == 126
    assert report.reason == "could not start 'prog': Exec format error"


def test_the_task_gets_default_sigpipe_and_sigxfsz(
    run_workload: RunWorkload, tmp_path: Path, claims: ClaimBook
) -> None:
    """Python ignores SIGPIPE and SIGXFSZ; a task must not inherit that (Popen's restore_signals)."""
    workload = make_workload(tmp_path, ["cat", "/proc/self/status"])
    run_workload(workload, claims, worker="w")
    status = dict(line.split(":\t", 1) for line in Path(workload.log_path).read_text().splitlines())
    ignored = int(status["SigIgn"], 16)
    for signum in (signal.SIGPIPE, signal.SIGXFSZ):
        assert not ignored & (1 << (signum - 1)), signal.Signals(signum).name


def test_grandchildren_left_in_the_group_die_with_the_try(
    run_workload: RunWorkload, tmp_path: Path, claims: ClaimBook
) -> None:
    pid_file = tmp_path / "grandchild"
    workload = make_workload(tmp_path, f"sleep 300 & echo $! > {pid_file}")
    report = run_workload(workload, claims, worker="w")
    assert report.exit_code == 0
    wait_for(lambda: is_gone(int(pid_file.read_text())), "the grandchild to die")


def test_a_task_ignoring_sigterm_is_killed_after_the_grace(
    run_workload: RunWorkload, tmp_path: Path, claims: ClaimBook
) -> None:
    workload = make_workload(tmp_path, "trap '' TERM; sleep 300; sleep 300", timeout=0.3)
    report = run_workload(workload, claims, worker="w", terminate_grace=0.5)
    assert report.reason == "timed out after 0.3s"
    assert report.signal == signal.SIGKILL
    assert report.pid is not None and is_gone(report.pid)


def test_kill_process_tree_reaches_descendants_that_left_the_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    leader = subprocess.Popen(
        ["sh", "-c", f"setsid sleep 300 & echo $! > {pid_file}; sleep 300"],
        start_new_session=True,
    )
    try:
        wait_for(lambda: pid_file.exists() and pid_file.read_text().strip() != "", "the child pid")
        escaped = int(pid_file.read_text())
        assert psutil.Process(escaped).ppid() == leader.pid
        kill_process_tree(leader.pid, grace=2)
        leader.wait(timeout=10)
        wait_for(lambda: is_gone(escaped), "the escaped child to die")
    finally:
        if leader.poll() is None:
            os.killpg(leader.pid, signal.SIGKILL)
            leader.wait()


def test_timestamps_read_as_datetime_writes_them() -> None:
    """now_iso formats only the microseconds per call; the text must stay isoformat's."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    second = 1_795_314_963 * 10**9
    samples = [0, 999, 1_000, second, second + 999, second + 123_456_789, second + 10**9 - 1]
    samples += [random.randrange(0, 4_102_444_800 * 10**9) for _ in range(2000)]
    for ns in samples:
        expected = (epoch + timedelta(microseconds=ns // 1000)).isoformat()[:-6] + "Z"
        assert iso_from_ns(ns) == expected
    before = datetime.now(UTC)
    now = datetime.fromisoformat(now_iso())
    assert before <= now <= datetime.now(UTC)


def test_a_missing_working_directory_is_named_as_the_reason_not_the_program(
    run_workload: RunWorkload, tmp_path: Path, claims: ClaimBook
) -> None:
    gone = tmp_path / "no" / "such" / "dir"
    workload = make_workload(tmp_path, ["true"], cwd=str(gone))
    report = run_workload(workload, claims, worker="w")
    assert report.exit_code == 127
    assert (
        report.reason
        == f"could not start 'true': its working directory {str(gone)!r} does not exist"
    )
    assert str(gone) in Path(workload.log_path).read_text()
