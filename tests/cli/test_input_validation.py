"""Input the headless commands must refuse at once (one line, exit 2, nothing stored),
and the behaviour that goes with it: numbers the store cannot hold, empty names,
executor options, the directory an ad-hoc task runs in."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.cli.test_bad_input import assert_bad_input, store_digest
from tests.helpers import REPO, cli_env, processes_with_env_marker, run_cli, start_cli, wait_until

TOO_LARGE = "99999999999999999999999"  # more than SQLite's 64-bit INTEGER holds
TOO_SMALL = "-9223372036854775809"  # -2**63 - 1


def rows(home: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(home / "execconsole.db")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


@pytest.fixture
def waiting(home: Path) -> Path:
    """A store holding one task, adhoc/w, that no engine has run yet."""
    result = run_cli(home, "submit", "--task", "w", "--", "true")
    assert result.returncode == 0, result.stderr
    return home


def workflow_file(home: Path, extra: str) -> Path:
    path = home / "wf.toml"
    path.write_text(f'id = "x"\n[[task]]\nid = "a"\ncommand = ["true"]\n{extra}\n')
    return path


# ---- 1. numbers the store cannot hold ----------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["tasks", "priority", "adhoc/w", TOO_LARGE], ["priority", TOO_LARGE]),
        (["tasks", "priority", "adhoc/w", "--", TOO_SMALL], ["priority", TOO_SMALL]),
        (["tasks", "priority", "adhoc/w", "2147483648"], ["-2147483648 to 2147483647"]),
        (["submit", "--priority", TOO_LARGE, "--", "true"], ["--priority", TOO_LARGE]),
        (["submit", "--priority", TOO_SMALL, "--", "true"], ["--priority", TOO_SMALL]),
        (["submit", "--retries", TOO_LARGE, "--", "true"], ["--retries", "0 to 1000"]),
        (["submit", "--retries", "1001", "--", "true"], ["--retries", "0 to 1000"]),
        (["parallelism", TOO_LARGE], ["parallelism", "0 means no limit"]),
        (["tasks", "list", "--limit", TOO_LARGE], ["--limit", "--limit 0 for all"]),
    ],
    ids=[
        "priority request too large",
        "priority request too small",
        "priority request beyond 32 bits",
        "submit priority too large",
        "submit priority too small",
        "submit retries too large",
        "submit retries over 1000",
        "parallelism too large",
        "list limit too large",
    ],
)
def test_an_integer_out_of_range_is_refused_and_nothing_is_stored(
    waiting: Path, args: list[str], fragments: list[str]
) -> None:
    before = store_digest(waiting)
    assert_bad_input(run_cli(waiting, *args), *fragments)
    assert store_digest(waiting) == before


def test_after_a_refused_priority_the_engine_still_runs_the_store(waiting: Path) -> None:
    # The request used to be stored, and every engine then died on it for good.
    assert_bad_input(run_cli(waiting, "tasks", "priority", "adhoc/w", TOO_LARGE), "priority")
    result = run_cli(waiting, "scheduler", "--until-idle")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert rows(waiting, "SELECT state FROM task_instances") == [("success",)]


def test_the_priority_bounds_themselves_are_accepted(waiting: Path) -> None:
    for value in ("2147483647", "-2147483648"):
        result = run_cli(waiting, "tasks", "priority", "adhoc/w", value)
        assert result.returncode == 0, result.stderr
    result = run_cli(
        waiting, "submit", "--priority", "2147483647", "--retries", "1000", "--", "true"
    )
    assert result.returncode == 0, result.stderr
    payloads = [json.loads(p) for (p,) in rows(waiting, "SELECT payload FROM requests")]
    assert [payload["priority"] for payload in payloads] == [2**31 - 1, -(2**31)]


@pytest.mark.parametrize(
    ("line", "fragments"),
    [
        (f"priority = {TOO_LARGE}", ["'priority'", TOO_LARGE]),
        (f"retries = {TOO_LARGE}", ["'retries'", "0 to 1000"]),
        ('retry_delay = "99999999999999h"', ["'retry_delay'", "8760h"]),
        ("timeout = 1e300", ["'timeout'", "8760h"]),
    ],
    ids=["priority", "retries", "retry_delay", "timeout"],
)
def test_a_workflow_number_out_of_range_is_refused_and_nothing_is_stored(
    waiting: Path, line: str, fragments: list[str]
) -> None:
    before = store_digest(waiting)
    result = run_cli(waiting, "run", str(workflow_file(waiting, line)), "--headless")
    assert_bad_input(result, "wf.toml", *fragments)
    assert store_digest(waiting) == before


# ---- 2, 3, 11. tasks logs --bytes and tasks list --limit ---------------------------------------


@pytest.fixture
def finished(home: Path) -> Path:
    """A store whose task adhoc/hello printed "hello\\n" and succeeded."""
    submitted = run_cli(home, "submit", "--task", "hello", "--", "echo", "hello")
    assert submitted.returncode == 0, submitted.stderr
    ran = run_cli(home, "scheduler", "--until-idle")
    assert ran.returncode == 0, ran.stderr
    return home


def test_a_negative_byte_count_for_logs_is_refused(finished: Path) -> None:
    assert_bad_input(
        run_cli(finished, "tasks", "logs", "adhoc/hello", "--bytes", "-5"), "--bytes", "-5"
    )


def test_logs_with_zero_bytes_prints_the_whole_log(finished: Path) -> None:
    result = run_cli(finished, "tasks", "logs", "adhoc/hello", "--bytes", "0")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello\n"
    assert result.stderr == ""


def test_logs_cut_to_one_byte_says_byte_not_bytes(finished: Path) -> None:
    result = run_cli(finished, "tasks", "logs", "adhoc/hello", "--bytes", "1")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "\n"
    assert result.stderr.strip() == "(showing the last 1 byte of 6)"


def test_a_negative_list_limit_is_refused(waiting: Path) -> None:
    assert_bad_input(run_cli(waiting, "tasks", "list", "--limit", "-1"), "--limit", "-1")


# ---- 4, 5. submit --timeout and --task -------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400", "0"])
def test_a_timeout_that_is_not_a_finite_positive_number_is_refused(
    waiting: Path, value: str
) -> None:
    before = store_digest(waiting)
    assert_bad_input(run_cli(waiting, "submit", "--timeout", value, "--", "true"), "--timeout")
    assert store_digest(waiting) == before


@pytest.mark.parametrize("option", ["--task", "--dag", "--executor"])
def test_an_empty_name_given_to_submit_is_refused(waiting: Path, option: str) -> None:
    before = store_digest(waiting)
    assert_bad_input(run_cli(waiting, "submit", option, "", "--", "true"), option.lstrip("-"), "''")
    assert store_digest(waiting) == before


# ---- 6. run --executor '' --------------------------------------------------------------------


def test_run_with_an_empty_executor_is_refused_listing_the_executors(home: Path) -> None:
    workflow = workflow_file(home, "")
    assert_bad_input(
        run_cli(home, "run", str(workflow), "--headless", "--executor", ""), "executor", "local"
    )
    assert store_digest(home) == "absent"


# ---- 7. executor options ---------------------------------------------------------------------


def test_a_misspelt_executor_option_in_the_config_file_is_refused_with_a_suggestion(
    waiting: Path,
) -> None:
    (waiting / "config.toml").write_text("[executor.local]\nterminate_grce = 5\n")
    before = store_digest(waiting)
    result = run_cli(waiting, "run", str(workflow_file(waiting, "")), "--headless")
    assert_bad_input(
        result,
        "config.toml",
        "'terminate_grce'",
        "[executor.local]",
        "did you mean 'terminate_grace'",
    )
    assert store_digest(waiting) == before


@pytest.mark.parametrize("value", ["-3", "nan", "true", '"soon"'])
def test_an_invalid_executor_option_from_the_environment_is_refused_naming_the_variable(
    waiting: Path, value: str
) -> None:
    variable = "EXECCONSOLE__EXECUTOR__LOCAL__TERMINATE_GRACE"
    env = cli_env(waiting, **{variable: value})
    before = store_digest(waiting)
    result = run_cli(waiting, "run", str(workflow_file(waiting, "")), "--headless", env=env)
    assert_bad_input(result, f"environment variable {variable}", "terminate_grace", "0 to 3600")
    assert store_digest(waiting) == before


def test_valid_executor_options_are_still_accepted(waiting: Path) -> None:
    (waiting / "config.toml").write_text(
        "[executor.local]\nterminate_grace = 2\nprefetch = false\nquiet_start = 0.01\n"
    )
    env = cli_env(waiting, EXECCONSOLE__EXECUTOR__LOCAL__LOG_EVERY_TRY="yes")
    result = run_cli(waiting, "run", str(workflow_file(waiting, "")), "--headless", env=env)
    assert result.returncode == 0, result.stderr


# ---- 8. submit --cwd -------------------------------------------------------------------------


def submit_from(folder: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`execconsole submit ...` run from ``folder``, as an operator in that folder would."""
    return subprocess.run(
        [sys.executable, "-m", "console", "submit", *args],
        cwd=folder,
        env=cli_env(home, PYTHONPATH=str(REPO)),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_submit_runs_the_command_in_the_directory_it_was_submitted_from(
    home: Path, tmp_path: Path
) -> None:
    # The README's example, from the folder that holds backup.sh; the engine starts elsewhere.
    project = tmp_path / "proj"
    project.mkdir()
    script = project / "backup.sh"
    script.write_text('#!/bin/sh\necho "backing up $1 from $(pwd)"\n')
    script.chmod(0o755)
    submitted = submit_from(
        project, home, "--priority", "5", "--retries", "2", "--", "./backup.sh", "/srv"
    )
    assert submitted.returncode == 0, submitted.stderr
    ran = run_cli(home, "scheduler", "--until-idle")  # from the repository's folder
    assert ran.returncode == 0, ran.stderr
    assert rows(home, "SELECT state, cwd FROM task_instances") == [("success", str(project))]
    logs = run_cli(home, "tasks", "logs", "adhoc/backup.sh")
    assert logs.stdout == f"backing up /srv from {project}\n"


def test_submit_cwd_names_another_directory_relative_to_where_submit_runs(
    home: Path, tmp_path: Path
) -> None:
    (tmp_path / "data").mkdir()
    submitted = submit_from(tmp_path, home, "--task", "where", "--cwd", "data", "--", "pwd")
    assert submitted.returncode == 0, submitted.stderr
    assert rows(home, "SELECT cwd FROM task_instances") == [(str(tmp_path / "data"),)]


@pytest.mark.parametrize(
    ("name", "fragment"),
    [("missing", "does not exist"), ("a-file", "is not a directory"), ("", "--cwd is empty")],
)
def test_submit_refuses_a_cwd_that_is_not_a_directory(
    waiting: Path, tmp_path: Path, name: str, fragment: str
) -> None:
    (tmp_path / "a-file").write_text("")
    cwd = str(tmp_path / name) if name else ""
    before = store_digest(waiting)
    assert_bad_input(run_cli(waiting, "submit", "--cwd", cwd, "--", "true"), "--cwd", fragment)
    assert store_digest(waiting) == before


def test_submit_help_documents_cwd(home: Path) -> None:
    result = run_cli(home, "submit", "--help")
    assert result.returncode == 0, result.stderr
    assert "--cwd" in result.stdout
    assert "the directory submit was run from" in " ".join(result.stdout.split())


# ---- 9. a command given without -- -----------------------------------------------------------


def test_a_command_given_without_the_separator_is_refused_with_where_to_put_it(home: Path) -> None:
    result = run_cli(home, "submit", "ls", "-la")
    assert_bad_input(result, "No such option: -l", "after --", "`execconsole submit -- ls -la`")
    assert store_digest(home) == "absent"
    with_options = run_cli(home, "submit", "--priority", "5", "grep", "-c", "x", "f")
    assert_bad_input(with_options, "`execconsole submit --priority 5 -- grep -c x f`")


def test_a_misspelt_submit_option_still_gets_clicks_suggestion(home: Path) -> None:
    result = run_cli(home, "submit", "--prioritty", "5", "--", "true")
    assert_bad_input(result, "--prioritty", "--priority")
    assert "after --" not in result.stderr


# ---- 10. the same try named twice --------------------------------------------------------------


def test_a_key_named_twice_is_killed_once_and_named_once(home: Path) -> None:
    marker = uuid.uuid4().hex
    env = cli_env(home, EXECCONSOLE_TEST_MARKER=marker)
    submitted = run_cli(home, "submit", "--task", "nap", "--", "sleep", "300", env=env)
    assert submitted.returncode == 0, submitted.stderr
    scheduler = start_cli(home, "scheduler", env=env)
    try:
        wait_until(
            lambda: rows(home, "SELECT state FROM task_instances") == [("running",)],
            message="the task to run",
        )
        (full_key,) = (
            f"adhoc/nap/{run}#1" for (run,) in rows(home, "SELECT run_id FROM task_instances")
        )
        killed = run_cli(home, "tasks", "kill", "adhoc/nap", "adhoc/nap", full_key, env=env)
        assert killed.returncode == 0, killed.stderr
        ((payload,),) = rows(home, "SELECT payload FROM requests")
        assert json.loads(payload)["ids"] == [1]
        wait_until(
            lambda: rows(home, "SELECT status FROM requests") == [("done",)],
            message="the engine to carry out the kill",
        )
        assert rows(home, "SELECT result FROM requests") == [(f"killed {full_key}",)]
    finally:
        scheduler.send_signal(signal.SIGTERM)
        scheduler.wait(timeout=60)
        for process in processes_with_env_marker(marker):
            process.kill()


# ---- 12. live scaling the configured executor cannot do -----------------------------------------


def test_parallelism_for_an_executor_without_live_scaling_is_refused_with_no_engine(
    waiting: Path,
) -> None:
    env = cli_env(waiting, EXECCONSOLE__CORE__EXECUTOR="sequential")
    before = store_digest(waiting)
    result = run_cli(waiting, "parallelism", "3", env=env)
    assert_bad_input(result, "'sequential'", "parallelism", "executors show sequential")
    assert store_digest(waiting) == before
    mixed = cli_env(waiting, EXECCONSOLE__CORE__EXECUTOR="local,sequential")
    assert_bad_input(
        run_cli(waiting, "parallelism", "3", "--executor", "sequential", env=mixed), "'sequential'"
    )
    assert store_digest(waiting) == before


def test_parallelism_for_an_executor_with_live_scaling_is_stored_for_the_next_engine(
    waiting: Path,
) -> None:
    result = run_cli(waiting, "parallelism", "3")
    assert result.returncode == 0, result.stderr
    assert [json.loads(p)["value"] for (p,) in rows(waiting, "SELECT payload FROM requests")] == [3]
