"""Input that used to end in a traceback: one line, exit code 2, the store unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_bad_input import assert_bad_input, seeded, store_digest
from tests.helpers import cli_env, run_cli

__all__ = ["seeded"]  # the fixture, shared with test_bad_input

# How Python hands an argument holding the byte 0xff (not UTF-8) to the program.
NOT_UTF8 = "\udcff"


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["tasks", "list", "--dag", NOT_UTF8], ["--dag '\\xff' is not UTF-8", "workflow id"]),
        (["tasks", "list", "--run", NOT_UTF8], ["--run '\\xff' is not UTF-8", "run id"]),
        (["runs", "list", "--dag", NOT_UTF8], ["--dag '\\xff' is not UTF-8"]),
        (["runs", "cancel", NOT_UTF8], ["run '\\xff' is not UTF-8"]),
        (["runs", "cancel", f"adhoc/{NOT_UTF8}"], ["run 'adhoc/\\xff' is not UTF-8"]),
        (["runs", "clean", "--older-than", "1d", "--dag", NOT_UTF8], ["--dag '\\xff'"]),
    ],
    ids=["tasks --dag", "tasks --run", "runs --dag", "cancel dag", "cancel run", "clean --dag"],
)
def test_a_filter_that_is_not_utf8_is_refused_in_one_line(
    seeded: Path, args: list[str], fragments: list[str]
) -> None:
    before = store_digest(seeded)
    assert_bad_input(run_cli(seeded, *args), *fragments)
    assert store_digest(seeded) == before


def test_submit_refuses_a_working_directory_whose_path_is_not_utf8(
    seeded: Path, tmp_path: Path
) -> None:
    folder = tmp_path / f"d{NOT_UTF8}"
    folder.mkdir()
    before = store_digest(seeded)
    assert_bad_input(
        run_cli(seeded, "submit", "--cwd", str(folder), "--", "true"),
        "--cwd",
        "d\\xff",
        "UTF-8",
    )
    assert store_digest(seeded) == before


@pytest.mark.parametrize("age", ["99999999999999999999d", "200000w", "36501d"])
def test_runs_clean_refuses_an_age_beyond_a_hundred_years(seeded: Path, age: str) -> None:
    before = store_digest(seeded)
    assert_bad_input(
        run_cli(seeded, "runs", "clean", "--older-than", age, "--dry-run"),
        f"--older-than '{age}'",
        "36500d",
    )
    assert store_digest(seeded) == before


@pytest.mark.parametrize(
    ("setting", "fragments"),
    [
        ("[core]\ntick_interval = 1e9\n", ["tick_interval", "at most 60"]),
        ("[core]\nqueued_timeout = 1e300\n", ["queued_timeout", "a year"]),
        ("[core]\nparallelism = 9223372036854775807\n", ["parallelism", "at most 2147483647"]),
        ("[core]\nqueued_retry_limit = 100000\n", ["queued_retry_limit", "at most 1000"]),
        ("[console]\nrefresh_interval = 1e9\n", ["refresh_interval", "at most 60"]),
    ],
    ids=["tick", "queued timeout", "parallelism", "retry limit", "refresh"],
)
def test_a_config_number_too_large_to_use_is_refused_before_anything_is_written(
    home: Path, setting: str, fragments: list[str]
) -> None:
    (home / "config.toml").write_text(setting)
    assert_bad_input(run_cli(home, "submit", "--", "true"), "config.toml", *fragments)
    assert sorted(path.name for path in home.iterdir()) == ["config.toml"]


def test_a_tick_interval_too_large_from_the_environment_names_the_variable(home: Path) -> None:
    env = cli_env(home, EXECCONSOLE__CORE__TICK_INTERVAL="1e9")
    assert_bad_input(
        run_cli(home, "scheduler", "--until-idle", env=env),
        "EXECCONSOLE__CORE__TICK_INTERVAL",
        "at most 60",
    )
    assert list(home.iterdir()) == []
