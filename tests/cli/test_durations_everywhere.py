"""Durations read the same in workflow files and on the command line, and refuse the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_bad_input import assert_bad_input
from tests.helpers import run_cli


def workflow(tmp_path: Path, task_lines: str) -> Path:
    path = tmp_path / "wf.toml"
    path.write_text(f'id = "w"\n[[task]]\nid = "a"\ncommand = ["true"]\n{task_lines}\n')
    return path


@pytest.mark.parametrize(
    ("text", "why"),
    [("1m1m", "unit 'm' given twice"), ("30m1h", "units out of order")],
)
def test_a_unit_twice_or_out_of_order_is_refused_everywhere(
    home: Path, tmp_path: Path, text: str, why: str
) -> None:
    flow = workflow(tmp_path, f'timeout = "{text}"')
    assert_bad_input(run_cli(home, "run", str(flow), "--headless"), f'got "{text}" ({why}')
    for args in (
        ["submit", "--timeout", text, "--", "true"],
        ["submit", "--wait", "--wait-timeout", text, "--", "true"],
        ["runs", "clean", "--older-than", text],
        ["tasks", "wait", "adhoc/x", "--timeout", text],
    ):
        assert_bad_input(run_cli(home, *args), f"'{text}'", why)
    assert list(home.iterdir()) == []


def test_a_quoted_number_in_a_workflow_is_refused_with_the_fix(home: Path, tmp_path: Path) -> None:
    flow = workflow(tmp_path, 'retry_delay = "10"')
    assert_bad_input(
        run_cli(home, "run", str(flow), "--headless"), 'got "10" (write 10 for seconds, or "10s")'
    )


def test_days_and_combined_units_are_accepted_in_a_workflow_and_on_the_command_line(
    home: Path, tmp_path: Path
) -> None:
    flow = workflow(tmp_path, 'retry_delay = "1d"\ntimeout = "1h 30m"')
    assert run_cli(home, "check", str(flow)).returncode == 0
    submitted = run_cli(home, "submit", "--timeout", "1h30m", "--json", "--", "true")
    assert submitted.returncode == 0, submitted.stderr
    assert json.loads(submitted.stdout)["timeout"] == 5400.0
    plain = run_cli(home, "submit", "--timeout", "10", "--json", "--", "true")
    assert json.loads(plain.stdout)["timeout"] == 10.0
    cleaned = run_cli(home, "runs", "clean", "--older-than", "1d12h", "--dry-run")
    assert cleaned.returncode == 0, cleaned.stderr


def test_a_timeout_under_a_millisecond_is_refused_so_no_reason_reads_1e_09s(
    home: Path, tmp_path: Path
) -> None:
    flow = workflow(tmp_path, "timeout = 1e-9")
    assert_bad_input(
        run_cli(home, "run", str(flow), "--headless"), "'timeout' must be at least 1ms", "1e-09"
    )
    assert_bad_input(
        run_cli(home, "submit", "--timeout", "1e-9", "--", "true"), "--timeout must be at least 1ms"
    )
    assert list(home.iterdir()) == []
