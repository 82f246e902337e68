"""Hybrid executors: ``local,celery`` side by side in one engine, through the real CLI and engine.

Each task runs on the executor it names (the first configured one when it
names none); slots are counted per executor; a task naming an executor that
is not configured is refused before anything is stored; the celery
executor's CLI group appears only when celery is configured.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from console.engine import Engine
from tests.celery.conftest import Cluster
from tests.celery.test_engine_celery import (
    HOSTNAME,
    Engines,
    assert_accounted_once,
    cli_env_for,
    drive,
    hold_until,
    idle,
    rows,
    submit,
    trace_command,
    trace_lines,
)
from tests.helpers import REPO, run_cli

pytestmark = pytest.mark.celery

LOCAL_WORKER = re.compile(r"^local:\d+$")


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def store_snapshot(home: Path) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """Everything a submission could have written: runs, task rows, events."""
    return (
        rows(home, "SELECT * FROM dag_runs ORDER BY rowid"),
        rows(home, "SELECT * FROM task_instances ORDER BY id"),
        rows(home, "SELECT * FROM events ORDER BY id"),
    )


def help_commands(result: subprocess.CompletedProcess[str]) -> set[str]:
    """Command names listed by ``execconsole --help`` (Click prints help on stdout)."""
    text = result.stdout
    assert "Commands:" in text, text
    section = text.split("Commands:", 1)[1]
    return {
        line.split()[0] for line in section.splitlines() if line.startswith("  ") and line.split()
    }


def test_each_task_runs_on_the_executor_it_names(
    cluster: Cluster, tmp_path: Path, home: Path
) -> None:
    trace = tmp_path / "trace"
    workflow = write(
        tmp_path / "mixed.toml",
        f"""
        id = "mixed"
        [[task]]
        id = "prepare"
        executor = "local"
        shell = true
        command = "{trace_command(trace)}"
        [[task]]
        id = "crunch"
        executor = "celery"
        upstream = ["prepare"]
        shell = true
        command = "{trace_command(trace)}"
        [[task]]
        id = "crunch_beta"
        executor = "celery"
        queue = "beta"
        upstream = ["prepare"]
        shell = true
        command = "{trace_command(trace)}"
        [[task]]
        id = "unnamed"
        shell = true
        command = "{trace_command(trace)}"
        [[task]]
        id = "report"
        executor = "local"
        upstream = ["crunch", "crunch_beta", "unnamed"]
        shell = true
        command = "{trace_command(trace)}"
        """,
    )
    env = cli_env_for(cluster, home, "local")  # overridden by --executor below
    result = run_cli(
        home, "run", str(workflow), "--headless", "--executor", "local,celery", env=env
    )
    assert result.returncode == 0, result.stderr
    assert "all 5 tasks succeeded" in result.stderr

    found = assert_accounted_once(
        home, "mixed", {"prepare", "crunch", "crunch_beta", "unnamed", "report"}
    )
    where = {task: tries[-1] for task, tries in found.items()}
    assert {task: t["executor"] for task, t in where.items()} == {
        "prepare": "local",
        "crunch": "celery",
        "crunch_beta": "celery",
        "unnamed": "local",  # the first configured executor is the default
        "report": "local",
    }
    for task in ("prepare", "unnamed", "report"):
        assert LOCAL_WORKER.match(where[task]["worker"] or ""), where[task]
    assert where["crunch"]["worker"] == "alpha@test"
    assert where["crunch_beta"]["worker"] == "beta@test"
    assert {t["hostname"] for t in where.values()} == {HOSTNAME}
    assert sorted(trace_lines(trace)) == sorted(f"{task} 1" for task in where)
    ran = trace_lines(trace)
    # Dependencies hold across executors: local before celery before local.
    assert ran.index("prepare 1") < min(ran.index("crunch 1"), ran.index("crunch_beta 1"))
    assert ran[-1] == "report 1"

    # The report the operator reads says the same.
    shown = json.loads(
        run_cli(home, "tasks", "show", "mixed/crunch_beta", "--json", env=env).stdout
    )
    assert (shown["executor"], shown["worker"], shown["hostname"]) == (
        "celery",
        "beta@test",
        HOSTNAME,
    )


def test_slots_are_counted_per_executor(cluster: Cluster, engines: Engines, tmp_path: Path) -> None:
    release = tmp_path / "release"
    trace = tmp_path / "trace"
    engine = engines.build(cluster, executor="local,celery", parallelism=1)
    tasks = {"l1": "local", "l2": "local", "c1": "celery", "c2": "celery"}
    submit(
        engine,
        'id = "slots"\n'
        + "".join(
            f"""
            [[task]]
            id = "{task}"
            executor = "{executor}"
            shell = true
            command = "{trace_command(trace, hold_until(release))}"
            """
            for task, executor in tasks.items()
        ),
    )

    def within_parallelism(engine: Engine) -> None:
        for name, executor in engine.executors.items():
            assert len(executor.running) <= executor.parallelism == 1, (name, executor.running)

    def running_by_executor() -> dict[str, int]:
        return dict(
            rows(
                engines.home,
                "SELECT executor, count(*) FROM task_instances WHERE state = 'running' GROUP BY executor",
            )
        )

    # Parallelism 1 is each executor's: one local and one celery try at once.
    drive(
        engine,
        lambda: running_by_executor() == {"local": 1, "celery": 1},
        "one try running on each executor",
        check=within_parallelism,
    )
    gauges = engine.gauges()
    for name in ("local", "celery"):
        assert gauges[f"executor.{name}.running_tasks"] == 1
        assert gauges[f"executor.{name}.open_slots"] == 0
    assert gauges["executor.celery.broker_ok"] == 1 and "executor.local.workers" in gauges

    release.touch()
    drive(engine, idle(engine), "the rest to finish", check=within_parallelism)
    found = assert_accounted_once(engines.home, "slots", set(tasks))
    assert {task: tries[-1]["executor"] for task, tries in found.items()} == tasks
    assert sorted(trace_lines(trace)) == sorted(f"{task} 1" for task in tasks)


def test_a_task_naming_an_unconfigured_executor_is_refused_before_anything_is_stored(
    cluster: Cluster, tmp_path: Path, home: Path
) -> None:
    env = cli_env_for(cluster, home, "local,celery")
    accepted = run_cli(home, "submit", "--executor", "celery", "--json", "--", "true", env=env)
    assert accepted.returncode == 0, accepted.stderr
    assert json.loads(accepted.stdout)["executor"] == "celery"
    before = store_snapshot(home)

    refused = run_cli(home, "submit", "--executor", "gpu", "--", "true", env=env)
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "'gpu'" in refused.stderr
    assert "local" in refused.stderr and "celery" in refused.stderr
    assert store_snapshot(home) == before

    workflow = write(
        tmp_path / "gpu.toml",
        """
        id = "needs_gpu"
        [[task]]
        id = "fine"
        command = ["true"]
        [[task]]
        id = "train"
        executor = "gpu"
        command = ["true"]
        """,
    )
    refused_run = run_cli(home, "run", str(workflow), "--headless", env=env)
    assert refused_run.returncode == 2
    assert "unknown executor 'gpu'" in refused_run.stderr
    assert store_snapshot(home) == before

    # celery is known, but a run configured with local alone must not accept it.
    celery_task = write(
        tmp_path / "remote.toml",
        """
        id = "remote"
        [[task]]
        id = "far"
        executor = "celery"
        command = ["true"]
        """,
    )
    local_only = run_cli(
        home, "run", str(celery_task), "--headless", "--executor", "local", env=env
    )
    assert local_only.returncode == 2
    assert "unknown executor 'celery'" in local_only.stderr
    assert store_snapshot(home) == before


def test_executors_list_shows_both_with_their_capabilities(cluster: Cluster, home: Path) -> None:
    env = cli_env_for(cluster, home, "local,celery")
    result = run_cli(home, "executors", "list", "--json", env=env)
    assert result.returncode == 0, result.stderr
    listed = {item["name"]: item for item in json.loads(result.stdout)}
    assert list(listed) == ["local", "celery"]
    local, celery = listed["local"], listed["celery"]
    assert (local["default"], celery["default"]) == (True, False)
    assert celery["class"] == "executors.celery.executor.CeleryExecutor"
    assert local["capabilities"]["is_local"] is True
    assert celery["capabilities"]["is_local"] is False
    for flag in ("supports_adoption", "supports_kill", "is_production"):
        assert celery["capabilities"][flag] is True, flag
    assert celery["capabilities"]["serve_logs"] is False
    assert [g["name"] for g in celery["cli_groups"]] == ["celery"]
    assert [p["title"] for p in celery["console_panels"]] == ["Celery"]
    assert "celery" not in [g["name"] for g in local["cli_groups"]]


def test_the_celery_command_group_appears_only_when_celery_is_configured(
    cluster: Cluster, home: Path
) -> None:
    local_only = cli_env_for(cluster, home, "local")
    hybrid = cli_env_for(cluster, home, "local,celery")

    assert "celery" not in help_commands(run_cli(home, "--help", env=local_only))
    missing = run_cli(home, "celery", "inspect", "--json", env=local_only)
    assert missing.returncode == 2
    assert "celery" in missing.stderr and missing.stdout == ""

    listed = help_commands(run_cli(home, "--help", env=hybrid))
    assert {"celery", "tasks", "executors", "run"} <= listed
    inspected = run_cli(home, "celery", "inspect", "--json", env=hybrid)
    assert inspected.returncode == 0, inspected.stderr
    workers = {worker["hostname"] for worker in json.loads(inspected.stdout)["workers"]}
    assert {"alpha@test", "beta@test"} <= workers


def test_the_vended_group_is_imported_only_when_its_command_runs(
    cluster: Cluster, home: Path
) -> None:
    probe = (
        "import sys\n"
        "from console.cli.main import main\n"
        "code = main(['tasks', 'list', '--json'])\n"
        "assert code == 0, code\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('executors.celery.cli', 'celery')))\n"
        "print('LOADED', loaded, file=sys.stderr)\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        env=cli_env_for(cluster, home, "local,celery"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_tasks_logs_shows_a_celery_trys_log_from_its_file_or_from_redis(
    cluster: Cluster, tmp_path: Path, home: Path
) -> None:
    """``tasks logs`` builds the celery executor without starting it (the engine runs
    elsewhere): it reads the log file when it is on this machine, else the tail in Redis."""
    workflow = write(
        tmp_path / "talk.toml",
        """
        id = "talk"
        [[task]]
        id = "speak"
        executor = "celery"
        shell = true
        command = "echo hello-from-celery; echo second-line"
        """,
    )
    env = cli_env_for(cluster, home, "local,celery")
    result = run_cli(home, "run", str(workflow), "--headless", env=env)
    assert result.returncode == 0, result.stderr

    from_file = run_cli(home, "tasks", "logs", "talk/speak", env=env)
    assert from_file.returncode == 0, from_file.stderr
    assert from_file.stdout == "hello-from-celery\nsecond-line\n"

    # As on a console whose workers run on other machines: no file here.
    (log_path,) = rows(home, "SELECT log_path FROM task_instances WHERE task_id = 'speak'")[0]
    Path(log_path).unlink()
    from_redis = run_cli(home, "tasks", "logs", "talk/speak", "--bytes", "12", env=env)
    assert from_redis.returncode == 0, from_redis.stderr
    assert from_redis.stdout == "second-line\n"
    assert "kept in Redis" in from_redis.stderr
