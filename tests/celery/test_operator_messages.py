"""What the celery executor and its commands tell the operator, in the operator's terms.

- ``celery stop -n NAME`` for a worker that did not answer fails and lists
  those that did, instead of stopping nothing and exiting 0;
- a worker that reads the message of a try revoked before it started says
  it was revoked (not "claimed already");
- a setting out of range names its section (or variable).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from executors.celery.executor import CeleryExecutor
from tests.celery.conftest import Cluster, Driver
from tests.helpers import REPO

pytestmark = pytest.mark.celery


def _celery_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "executors.celery", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_stopping_a_worker_that_did_not_answer_fails_and_lists_those_online(
    cluster: Cluster,
) -> None:
    result = _celery_cli(cluster.worker_env(), "stop", "--hostname", "bogus@test")

    assert result.returncode != 0
    assert result.stderr.count("\n") == 1, result.stderr
    assert "bogus@test" in result.stderr
    assert "alpha@test" in result.stderr and "beta@test" in result.stderr
    # Nothing was stopped.
    assert all(worker.process.poll() is None for worker in cluster.workers)


def test_a_worker_reading_a_revoked_message_says_it_was_revoked(
    private_cluster: Cluster,
) -> None:
    cluster = private_cluster
    queue = "later"
    executor = cluster.executor()
    driver = Driver(executor)
    revoked = cluster.workload("true", queue=queue)
    executor.queue_workload(revoked)
    driver.until(
        lambda: executor.gauges()["executor.celery.unsent_tasks"] == 0, "the try to be sent"
    )
    # Taken back with no beat after it, so its message is still in the queue
    # (as when an engine dies right after taking a try back).
    assert executor.dequeue(revoked.key)

    worker = cluster.start_worker("late", queue, concurrency=1)
    other = Driver(cluster.executor())
    after = cluster.workload("true", queue=queue)
    other.executor.queue_workload(after)
    other.until_finished(after.key)  # the queue is read in order: the revoked message first

    log = worker.log()
    assert f"{revoked.key} was revoked before it started" in log, log[-3000:]
    assert f"{revoked.key} was claimed already" not in log


@pytest.mark.parametrize(
    ("name", "section"), [("celery", "[celery]"), ("remote", "[executor.remote]")]
)
def test_a_setting_out_of_range_names_its_section(name: str, section: str) -> None:
    with pytest.raises(ValueError) as refused:
        CeleryExecutor(0, name=name, options={"lease_seconds": -1})
    message = str(refused.value)
    assert f"{section} lease_seconds must be more than 0" in message, message


def test_a_variable_out_of_range_is_named(tmp_path: os.PathLike[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECCONSOLE")}
    env["EXECCONSOLE_HOME"] = str(tmp_path)
    env["EXECCONSOLE__CELERY__LEASE_SECONDS"] = "-1"
    result = _celery_cli(env, "inspect")
    assert result.returncode == 2
    assert "EXECCONSOLE__CELERY__LEASE_SECONDS must be more than 0" in result.stderr, result.stderr
