"""`submit --retry-delay`: an ad-hoc task waits between tries as a workflow task does."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from tests.cli.test_bad_input import assert_bad_input
from tests.helpers import run_cli, start_cli, wait_until


@pytest.mark.parametrize(("given", "seconds"), [("30", 30.0), ("1h30m", 5400.0), ("0", 0.0)])
def test_the_retry_delay_is_stored_with_the_task(home: Path, given: str, seconds: float) -> None:
    done = run_cli(home, "submit", "--retries", "2", "--retry-delay", given, "--json", "--", "true")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["retry_delay"] == seconds


def test_a_failed_try_waits_out_the_delay_before_its_retry(home: Path) -> None:
    done = run_cli(
        home, "submit", "--task", "flaky", "--retries", "1", "--retry-delay", "1h", "--", "false"
    )
    assert done.returncode == 0, done.stderr

    def tries() -> list[str]:
        shown = run_cli(home, "tasks", "show", "adhoc/flaky", "--json")
        return [t["state"] for t in json.loads(shown.stdout)["tries"]]

    engine = start_cli(home, "scheduler")
    try:
        wait_until(lambda: tries() == ["up_for_retry", "scheduled"], message="retry scheduled")
        shown = json.loads(run_cli(home, "tasks", "show", "adhoc/flaky", "--json").stdout)
        assert shown["try_number"] == 2 and shown["not_before"]  # waiting out its hour
    finally:
        os.killpg(engine.pid, signal.SIGTERM)
        engine.communicate(timeout=60)


@pytest.mark.parametrize(
    ("given", "fragment"),
    [
        ("-5", "--retry-delay must be from 0 to 31536000 seconds (a year), not -5"),
        ("2y", "--retry-delay '2y' is not a duration"),
        ("30m1h", "units out of order"),
        ("99999999999", "not 1e+11"),
    ],
)
def test_a_bad_retry_delay_is_refused_and_nothing_is_created(
    home: Path, given: str, fragment: str
) -> None:
    assert_bad_input(run_cli(home, "submit", "--retry-delay", given, "--", "true"), fragment)
    assert list(home.iterdir()) == []
