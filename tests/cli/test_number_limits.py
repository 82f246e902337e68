"""Number options share their limits: --parallelism everywhere as `execconsole parallelism N`,
--limit of every list as `tasks list --limit`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_bad_input import assert_bad_input
from tests.helpers import run_cli

WORKFLOW = 'id = "w"\n[[task]]\nid = "a"\ncommand = ["true"]\n'


@pytest.mark.parametrize("value", ["2147483648", "99999999999999999999999"])
@pytest.mark.parametrize("command", ["run", "scheduler", "console", "parallelism"])
def test_parallelism_beyond_a_32_bit_integer_is_refused_everywhere_and_nothing_is_created(
    home: Path, tmp_path: Path, command: str, value: str
) -> None:
    workflow = tmp_path / "wf.toml"
    workflow.write_text(WORKFLOW)
    args = {
        "run": ["run", str(workflow), "--headless", "--parallelism", value],
        "scheduler": ["scheduler", "--until-idle", "--parallelism", value],
        "console": ["console", "--parallelism", value],
        "parallelism": ["parallelism", value],
    }[command]
    assert_bad_input(run_cli(home, *args), "parallelism must be at most 2147483647", value)
    assert list(home.iterdir()) == []


def test_the_largest_parallelism_is_accepted(home: Path) -> None:
    done = run_cli(home, "scheduler", "--until-idle", "--parallelism", "2147483647")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("listing", [["tasks", "list"], ["runs", "list"]])
def test_a_list_limit_beyond_what_sqlite_takes_is_refused_by_every_list(
    home: Path, listing: list[str]
) -> None:
    assert_bad_input(
        run_cli(home, *listing, "--limit", "99999999999999999999"),
        "--limit 99999999999999999999 is too large",
        "--limit 0",
    )
    assert_bad_input(run_cli(home, *listing, "--limit", "-1"), "--limit must be 0 (all) or more")
