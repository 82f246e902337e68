"""``execconsole celery worker|inspect|stop`` (run here as ``python -m executors.celery``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.celery.conftest import Cluster, free_port, wait_for
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
