"""The real binary end to end: runs, crashes, restarts, signals, floods of submissions."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

from tests.helpers import REPO, cli_env, processes_with_env_marker, run_cli, start_cli, wait_until


def write_workflow(home: Path, body: str, name: str = "wf.toml") -> Path:
    path = home / name
    path.write_text(textwrap.dedent(body))
    return path


def store_rows(home: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(home / "execconsole.db")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_headless_run_exits_0_when_every_task_succeeds(home: Path) -> None:
    workflow = write_workflow(
        home,
        """
        id = "ok"
        [[task]]
        id = "a"
        command = ["true"]
        [[task]]
        id = "b"
        upstream = ["a"]
        command = ["sh", "-c", "echo done"]
        """,
    )
    result = run_cli(home, "run", str(workflow), "--headless")
    assert result.returncode == 0, result.stderr
    assert "all 2 tasks succeeded" in result.stderr
    assert "2/2 done" in result.stderr  # the progress bar's last state
    assert result.stdout == ""


def test_headless_run_exits_1_and_names_the_failures_when_a_task_fails(home: Path) -> None:
    workflow = write_workflow(
        home,
        """
        id = "bad"
        [[task]]
        id = "boom"
        command = ["sh", "-c", "exit 3"]
        [[task]]
        id = "after"
        upstream = ["boom"]
        command = ["true"]
        """,
    )
    result = run_cli(home, "run", str(workflow), "--headless")
    assert result.returncode == 1, result.stderr
    assert "exited with code 3" in result.stderr
    assert "upstream_failed" in result.stderr


SUBMITTER = """
import sys
from console import actions
from store import Store

store = Store(sys.argv[1])
for n in range(50):
    actions.submit_command(store, ["true"], executor="local", configured_executors=["local"],
                           dag_id="s" + sys.argv[2], task_id=f"t{n}")
"""


def test_twenty_concurrent_submitting_processes_lose_no_submission(home: Path) -> None:
    store_path = home / "execconsole.db"
    run_cli(home, "tasks", "list")  # create the store once, as a first command would
    # 20 processes at once, each submitting 50 times through the submit code path.
    submitters = [
        subprocess.Popen([sys.executable, "-c", SUBMITTER, str(store_path), str(index)], cwd=REPO)
        for index in range(20)
    ]
    codes = [process.wait(timeout=240) for process in submitters]
    assert codes == [0] * 20
    assert store_rows(home, "SELECT count(*) FROM task_instances") == [(1000,)]
    assert store_rows(
        home, "SELECT count(DISTINCT dag_id || '/' || task_id) FROM task_instances"
    ) == [(1000,)]
    assert store_rows(home, "SELECT count(*) FROM events") == [(1000,)]


def test_concurrent_submit_commands_all_land(home: Path) -> None:
    run_cli(home, "tasks", "list")

    def submitter(index: int) -> list[int]:
        return [
            run_cli(
                home, "submit", "--dag", f"c{index}", "--task", f"t{n}", "--", "true"
            ).returncode
            for n in range(3)
        ]

    with ThreadPoolExecutor(max_workers=6) as pool:
        codes = [code for batch in pool.map(submitter, range(6)) for code in batch]
    assert codes == [0] * 18
    assert store_rows(home, "SELECT count(*) FROM task_instances") == [(18,)]


def test_submit_json_prints_exactly_one_document(home: Path) -> None:
    result = run_cli(home, "submit", "--priority", "7", "--json", "--", "echo", "hi")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert (
        document["command"] == ["echo", "hi"]
        and document["priority"] == 7
        and document["state"] == "scheduled"
    )
    listed = json.loads(run_cli(home, "tasks", "list", "--json", "--state", "scheduled").stdout)
    assert [item["key"] for item in listed] == [document["key"]]


def test_scheduler_until_idle_runs_submissions_and_logs_are_readable(home: Path) -> None:
    submitted = json.loads(
        run_cli(home, "submit", "--json", "--", "sh", "-c", "echo hello from the task").stdout
    )
    result = run_cli(home, "scheduler", "--until-idle")
    assert result.returncode == 0, result.stderr
    shown = json.loads(run_cli(home, "tasks", "show", submitted["key"], "--json").stdout)
    assert shown["state"] == "success"
    assert [h["to_state"] for h in shown["history"]] == [
        "scheduled",
        "queued",
        "running",
        "success",
    ]
    logs = run_cli(home, "tasks", "logs", submitted["key"])
    assert logs.stdout == "hello from the task\n"
    followed = run_cli(
        home, "tasks", "logs", "--follow", submitted["key"]
    )  # a finished try: returns at once
    assert followed.stdout == "hello from the task\n"


def side_effect_workflow(home: Path, count: int, trace: Path) -> Path:
    tasks = "".join(
        f"""
        [[task]]
        id = "t{n:02d}"
        retries = 2
        shell = true
        command = "echo $EXECCONSOLE_TASK_ID $EXECCONSOLE_TRY_NUMBER >> {trace}; sleep {0.3 + (n % 4) * 0.3:.1f}"
        """
        for n in range(count)
    )
    return write_workflow(home, 'id = "crash"\n' + tasks)


def test_engine_killed_with_sigkill_then_restarted_runs_every_try_exactly_once(home: Path) -> None:
    marker = uuid.uuid4().hex
    env = cli_env(home, EXECCONSOLE_TEST_MARKER=marker)
    trace = home / "side-effects"
    workflow = side_effect_workflow(home, 24, trace)
    first = start_cli(home, "run", str(workflow), "--headless", "--parallelism", "3", env=env)
    try:
        # Kill the engine once some tasks have finished and others are running.
        wait_until(
            lambda: trace.exists() and len(trace.read_text().splitlines()) >= 8,
            message="tasks to start",
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    running_at_crash = store_rows(
        home, "SELECT count(*) FROM task_instances WHERE state IN ('queued','running')"
    )[0][0]
    assert running_at_crash > 0, (
        "the crash should leave tries in flight for the restart to account for"
    )

    restarted = run_cli(
        home, "scheduler", "--until-idle", "--parallelism", "3", env=env, timeout=180
    )
    assert restarted.returncode == 0, restarted.stderr

    runs = trace.read_text().split("\n")
    started = [tuple(line.split()) for line in runs if line.strip()]
    # No try ran twice...
    assert len(started) == len(set(started)), sorted(started)
    # ...every task ended in exactly one terminal record, and none was lost.
    latest = store_rows(
        home,
        "SELECT task_id, state FROM task_instances t WHERE try_number = "
        "(SELECT max(try_number) FROM task_instances u WHERE u.task_id = t.task_id AND u.run_id = t.run_id)",
    )
    assert len(latest) == 24
    assert {state for _task, state in latest} <= {"success", "failed"}
    assert store_rows(
        home, "SELECT count(*) FROM task_instances WHERE state IN ('scheduled','queued','running')"
    ) == [(0,)]
    # Every try that the store says started did start, once.
    started_in_store = store_rows(
        home, "SELECT task_id, try_number FROM task_instances WHERE start_date IS NOT NULL"
    )
    assert {(task, str(n)) for task, n in started_in_store} <= set(started)
    # Each step recovery took says why in the audit log.
    unexplained = store_rows(
        home,
        "SELECT from_state, to_state FROM events "
        "WHERE actor = 'engine:recovery' AND coalesce(reason, '') = ''",
    )
    assert unexplained == []
    wait_until(
        lambda: not processes_with_env_marker(marker), timeout=30, message="no process left behind"
    )


def session_members(session_id: int) -> list[psutil.Process]:
    members = []
    for process in psutil.process_iter(["pid"]):
        try:
            if os.getsid(process.pid) == session_id and process.status() != psutil.STATUS_ZOMBIE:
                members.append(process)
        except (ProcessLookupError, PermissionError, psutil.NoSuchProcess):
            continue
    return members


def test_a_headless_run_has_left_no_process_behind_when_it_exits(home: Path) -> None:
    """Not a moment later: the forkserver and resource tracker are stopped before the exit."""
    workflow = write_workflow(
        home,
        """
        id = "tidy"
        [[task]]
        id = "a"
        command = ["true"]
        """,
    )
    run = start_cli(home, "run", str(workflow), "--headless")  # in a session of its own
    _out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    assert session_members(run.pid) == []


def test_sigterm_stops_the_scheduler_within_a_bound_and_leaves_no_process(home: Path) -> None:
    marker = uuid.uuid4().hex
    env = cli_env(home, EXECCONSOLE_TEST_MARKER=marker)
    for _ in range(3):
        run_cli(home, "submit", "--shell", "--", "sleep 300 & sleep 300", env=env)
    scheduler = start_cli(home, "scheduler", "--parallelism", "3", env=env)
    try:
        wait_until(
            lambda: (
                store_rows(home, "SELECT count(*) FROM task_instances WHERE state = 'running'")
                == [(3,)]
            ),
            message="three tasks running",
        )
        scheduler.send_signal(signal.SIGTERM)
        scheduler.wait(timeout=60)
    finally:
        if scheduler.poll() is None:
            scheduler.kill()
    assert scheduler.returncode == 0, scheduler.stderr.read() if scheduler.stderr else ""
    wait_until(
        lambda: not processes_with_env_marker(marker), timeout=30, message="no orphan process"
    )
    # The store knows what happened to each of them.
    assert store_rows(
        home, "SELECT count(*) FROM task_instances WHERE state IN ('queued','running')"
    ) == [(0,)]


def peak_scheduler_rss(home: Path, *command: str) -> tuple[int, str]:
    """Submit one task, run `scheduler --until-idle`, and return the engine's peak RSS and the task key."""
    key = json.loads(run_cli(home, "submit", "--json", "--", *command).stdout)["key"]
    scheduler = start_cli(home, "scheduler", "--until-idle")
    peak = 0
    try:
        process = psutil.Process(scheduler.pid)
        while scheduler.poll() is None:
            try:
                peak = max(peak, process.memory_info().rss)
            except psutil.NoSuchProcess:
                break
            time.sleep(0.02)
        scheduler.wait(timeout=120)
    finally:
        if scheduler.poll() is None:
            scheduler.kill()
    assert scheduler.returncode == 0
    return peak, key


def test_a_task_printing_100_megabytes_does_not_grow_the_engine(tmp_path: Path) -> None:
    flood = "import sys\nchunk = 'x' * 1023 + '\\n'\nfor _ in range(100 * 1024): sys.stdout.write(chunk)\n"
    control_peak, _ = peak_scheduler_rss(tmp_path / "control", sys.executable, "-c", "pass")
    flood_home = tmp_path / "flood"
    flood_peak, key = peak_scheduler_rss(flood_home, sys.executable, "-c", flood)
    shown = json.loads(run_cli(flood_home, "tasks", "show", key, "--json").stdout)
    assert shown["state"] == "success"
    assert os.path.getsize(shown["log_path"]) == 100 * 1024 * 1024
    # The output went to the log file, never through the engine: its memory
    # is what it is for a task that prints nothing.
    assert flood_peak - control_peak < 16 * 1024 * 1024, (control_peak, flood_peak)


def test_headless_modules_never_import_textual() -> None:
    probe = (
        "import sys\n"
        "import console.cli.main, console.cli.runs_cmd, console.engine, console.headless, console.runtime, console.actions\n"
        "import executors.local, executors.sequential, executors.loader, store, store.store\n"
        "from console.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'textual' not in sys.modules, sorted(m for m in sys.modules if m.startswith('textual'))\n"
        "print('clean')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("clean")


def test_sigusr2_makes_the_scheduler_dump_its_executors_state(home: Path) -> None:
    scheduler = start_cli(home, "scheduler")
    try:

        def engine_owns_store() -> bool:
            try:
                return store_rows(home, "SELECT count(*) FROM lease") == [(1,)]
            except sqlite3.OperationalError:  # the store is still being created
                return False

        wait_until(engine_owns_store, message="the scheduler to take the lease")
        scheduler.send_signal(signal.SIGUSR2)
        time.sleep(0.5)  # let a tick or two pass; the dump happens on the engine's next tick
        scheduler.send_signal(signal.SIGTERM)
        _out, err = scheduler.communicate(timeout=60)
    finally:
        if scheduler.poll() is None:
            scheduler.kill()
    assert "executor local (LocalExecutor), parallelism 2" in err
    assert "queued 0, running 0" in err
