"""``execconsole celery worker|inspect|stop`` (run here as ``python -m executors.celery``)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.celery.conftest import Cluster, Driver, free_port, wait_for
from tests.helpers import REPO, run_cli

pytestmark = pytest.mark.celery


def run_celery_cli(
    cluster: Cluster | None, *args: str, broker: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = cluster.worker_env() if cluster else {}
    if broker:
        env = {**env, "EXECCONSOLE__CELERY__BROKER_URL": broker}
    return subprocess.run(
        [sys.executable, "-m", "executors.celery", *args],
        cwd=REPO,
        env={**_base_env(), **env},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("EXECCONSOLE")}


def test_inspect_lists_workers_with_their_pools_and_queues(cluster: Cluster) -> None:
    result = run_celery_cli(cluster, "inspect", "--json")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    workers = {w["hostname"]: w for w in shown["workers"]}
    assert set(workers) >= {"alpha@test", "beta@test"}
    assert workers["alpha@test"]["pool"] == 2
    assert workers["alpha@test"]["queues"] == ["alpha", "default"] or set(
        workers["alpha@test"]["queues"]
    ) == {"alpha", "default"}
    queues = {q["name"]: q["waiting"] for q in shown["queues"]}
    assert {"default", "alpha", "beta"} <= set(queues)

    table = run_celery_cli(cluster, "inspect")
    assert table.returncode == 0, table.stderr
    assert "alpha@test" in table.stdout and "WAITING" in table.stdout


def test_inspect_shows_a_queue_with_work_waiting_that_no_worker_consumes(
    cluster: Cluster,
) -> None:
    """Work piling up where nobody takes it: shown and marked, though no setting names the queue."""
    orphan = f"orphan-{uuid.uuid4().hex[:8]}"
    executor = cluster.executor()
    waiting = [cluster.workload("true", queue=orphan) for _ in range(2)]
    for workload in waiting:
        executor.queue_workload(workload)
    driver = Driver(executor)
    driver.until(
        lambda: executor.gauges()["executor.celery.unsent_tasks"] == 0, "both tries to be sent"
    )
    try:
        result = run_celery_cli(cluster, "inspect", "--json")
        assert result.returncode == 0, result.stderr
        queues = {q["name"]: q for q in json.loads(result.stdout)["queues"]}
        assert queues[orphan]["waiting"] == 2
        assert queues[orphan]["consumers"] == []
        assert queues[orphan]["unconsumed"] is True
        assert queues[orphan]["warning"] == "no worker consumes this queue"
        # A consumed queue is not marked, even when it is empty.
        assert queues["alpha"]["consumers"] == ["alpha@test"]
        assert queues["alpha"]["unconsumed"] is False and queues["alpha"]["warning"] is None

        table = run_celery_cli(cluster, "inspect")
        assert table.returncode == 0, table.stderr
        (row,) = [line for line in table.stdout.splitlines() if line.startswith(orphan)]
        assert row.split()[:3] == [orphan, "2", "-"]
        assert "no worker consumes this queue" in row
        assert f"--queues {orphan}" in table.stdout.splitlines()[-1]
        (alpha,) = [line for line in table.stdout.splitlines() if line.startswith("alpha ")]
        assert "no worker consumes" not in alpha
    finally:
        for workload in waiting:  # revoked: a worker that ever reads them drops them
            executor.kill(workload.key)


def test_stop_asks_the_named_worker_to_shut_down(private_cluster: Cluster) -> None:
    keep, leave = private_cluster.start_workers(("keep", "default", 1), ("leave", "default", 1))

    result = run_celery_cli(private_cluster, "stop", "--hostname", "leave@test")

    assert result.returncode == 0, result.stderr
    assert "leave@test" in result.stdout
    wait_for(lambda: leave.process.poll() is not None, "the stopped worker to exit")
    assert leave.process.returncode == 0
    assert keep.process.poll() is None


def test_a_bad_queue_name_is_one_line_and_exit_code_2(cluster: Cluster) -> None:
    result = run_celery_cli(cluster, "worker", "--queues", "good,bad name")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "bad queue name 'bad name'" in result.stderr


@pytest.mark.parametrize("command", [["inspect"], ["stop"], ["worker"]])
def test_an_unreachable_redis_is_one_line_and_exit_code_2(command: list[str]) -> None:
    nobody = f"redis://127.0.0.1:{free_port()}/0"
    result = run_celery_cli(None, *command, broker=nobody)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert f"cannot reach Redis at {nobody}" in result.stderr


def test_the_commands_read_the_broker_from_config_toml(cluster: Cluster, tmp_path: Path) -> None:
    """No EXECCONSOLE__CELERY__* variable: the broker comes from [celery] in config.toml."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(
        f'[core]\nexecutor = "local,celery"\n\n[celery]\nbroker_url = "{cluster.redis.url}"\n'
    )
    env = {**_base_env(), "EXECCONSOLE_HOME": str(home)}

    standalone = subprocess.run(
        [sys.executable, "-m", "executors.celery", "inspect", "--json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert standalone.returncode == 0, standalone.stderr
    assert json.loads(standalone.stdout)["broker"] == cluster.redis.url
    assert "alpha@test" in {w["hostname"] for w in json.loads(standalone.stdout)["workers"]}

    vended = run_cli(home, "celery", "inspect", "--json", env=env)
    assert vended.returncode == 0, vended.stderr
    assert json.loads(vended.stdout)["broker"] == cluster.redis.url
