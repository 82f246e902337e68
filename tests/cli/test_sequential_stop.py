"""Stopping a headless engine is bounded with the SequentialExecutor too.

That executor runs each try inside the engine's own loop, so the loop cannot
look at a stop signal until the try ends: a first SIGTERM must still end it
after the shutdown grace, a second signal at once, and the next try must not
start. Real processes: `execconsole run --headless` on a real store.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from executors.claims import STARTED, ClaimBook
from store import Store
from tests.helpers import cli_env, start_cli, wait_until


def _records(home: Path) -> dict[str, object]:
    with Store(home / "execconsole.db") as store:
        return {record.task_id: record for record in store.list_tasks(dag_id="sq")}


def _started(home: Path) -> bool:
    record = _records(home).get("long")
    token = getattr(record, "token", None)
    claim = ClaimBook(home / "claims").read(token) if token else None
    return (claim or {}).get("state") == STARTED


@pytest.mark.parametrize(
    ("signals", "reason"),
    [
        ([signal.SIGTERM], "killed: the engine was stopping and it still ran after 10s"),
        ([signal.SIGINT, signal.SIGINT], "killed: the engine was "),  # stopped at once / told to
    ],
)
def test_a_stop_signal_ends_the_try_running_inline(
    home: Path, tmp_path: Path, signals: list[signal.Signals], reason: str
) -> None:
    workflow = tmp_path / "sq.toml"
    # The try would outlast the test by far: only the stop can end it.
    workflow.write_text(
        'id = "sq"\n[[task]]\nid = "long"\ncommand = ["sleep", "600"]\n'
        '[[task]]\nid = "next"\ncommand = ["true"]\n'
    )
    run = start_cli(
        home, "run", str(workflow), "--headless", env=cli_env(home, EXECCONSOLE__CORE__EXECUTOR="sequential")
    )  # fmt: skip
    try:
        wait_until(lambda: _started(home), message="the long try started")
        for signum in signals:
            run.send_signal(signum)
        _, stderr = run.communicate(timeout=90)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert run.returncode == 1, stderr
    records = _records(home)
    assert records["long"].state == "failed"  # type: ignore[attr-defined]
    assert records["long"].reason.startswith(reason)  # type: ignore[attr-defined]
    assert records["next"].state == "scheduled"  # type: ignore[attr-defined]  # never started
