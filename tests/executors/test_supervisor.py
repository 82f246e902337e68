"""run_workload and kill_process_tree: one task as an OS process, and how it ended."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import psutil
import pytest

from executors.claims import FINISHED, STARTED, ClaimBook
from executors.supervisor import NotClaimed, kill_process_tree, run_workload
from executors.workload import TaskReport
from tests.executors.conftest import is_gone, make_workload, wait_for


@pytest.fixture
def claims(tmp_path: Path) -> ClaimBook:
    return ClaimBook(tmp_path / "claims")


def test_exit_zero_is_reported_without_a_reason(tmp_path: Path, claims: ClaimBook) -> None:
    report = run_workload(make_workload(tmp_path, ["true"]), claims, worker="w")
    assert report.exit_code == 0
    assert report.signal is None
    assert report.reason is None
    assert report.pid and report.started_at and report.ended_at


def test_non_zero_exit_code_is_the_reason(tmp_path: Path, claims: ClaimBook) -> None:
    report = run_workload(make_workload(tmp_path, "exit 3"), claims, worker="w")
    assert report.exit_code == 3
    assert report.reason == "exited with code 3"


def test_death_by_sigkill_reads_as_possibly_out_of_memory(
    tmp_path: Path, claims: ClaimBook
) -> None:
    report = run_workload(make_workload(tmp_path, ["sh", "-c", "kill -9 $$"]), claims, worker="w")
    assert report.signal == signal.SIGKILL
    assert report.exit_code is None
    assert report.reason == "killed by SIGKILL — possibly out of memory"


def test_shell_string_runs_through_the_shell(tmp_path: Path, claims: ClaimBook) -> None:
    workload = make_workload(tmp_path, "echo one && echo two | tr a-z A-Z")
    report = run_workload(workload, claims, worker="w")
    assert report.exit_code == 0
    assert Path(workload.log_path).read_text() == "one\nTWO\n"


def test_env_and_cwd_reach_the_task(tmp_path: Path, claims: ClaimBook) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    workload = make_workload(
        tmp_path, 'echo "$GREETING from $(pwd)"', env={"GREETING": "hello"}, cwd=str(workdir)
    )
    run_workload(workload, claims, worker="w")
    assert Path(workload.log_path).read_text() == f"hello from {workdir}\n"


def test_stdin_is_dev_null_and_stderr_goes_to_the_log(tmp_path: Path, claims: ClaimBook) -> None:
    workload = make_workload(tmp_path, "cat; echo oops >&2; readlink /proc/self/fd/0")
    run_workload(workload, claims, worker="w")
    assert Path(workload.log_path).read_text() == "oops\n/dev/null\n"


def test_missing_command_fails_with_a_reason_naming_it(tmp_path: Path, claims: ClaimBook) -> None:
    workload = make_workload(tmp_path, ["/no/such/program", "--flag"])
    report = run_workload(workload, claims, worker="w")
    assert report.exit_code == 127
    assert report.reason is not None
    assert "/no/such/program" in report.reason
    assert "could not start" in Path(workload.log_path).read_text()
    assert (claims.read(workload.token) or {})["state"] == FINISHED


def test_timeout_kills_the_task_and_says_so(tmp_path: Path, claims: ClaimBook) -> None:
    workload = make_workload(tmp_path, ["sleep", "300"], timeout=0.5)
    report = run_workload(workload, claims, worker="w", terminate_grace=2)
    assert report.reason == "timed out after 0.5s"
    assert report.signal == signal.SIGTERM
    assert report.pid is not None and is_gone(report.pid)


def test_a_claimed_token_is_never_started_twice(tmp_path: Path, claims: ClaimBook) -> None:
    workload = make_workload(tmp_path, ["true"])
    run_workload(workload, claims, worker="first")
    with pytest.raises(NotClaimed):
        run_workload(workload, claims, worker="second")


def test_a_revoked_token_is_never_started(tmp_path: Path, claims: ClaimBook) -> None:
    marker = tmp_path / "ran"
    workload = make_workload(tmp_path, f"touch {marker}")
    assert claims.revoke(workload.token)
    with pytest.raises(NotClaimed):
        run_workload(workload, claims, worker="w")
    assert not marker.exists()


def test_started_report_and_claim_record_the_pid(tmp_path: Path, claims: ClaimBook) -> None:
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
