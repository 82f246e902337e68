"""A command refused for bad input or a bad config creates nothing: no store, no logs/ or claims/."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_bad_input import assert_bad_input
from tests.helpers import cli_env, run_cli

WORKFLOW = 'id = "w"\n[[task]]\nid = "a"\ncommand = ["true"]\n'


def contents(home: Path) -> list[str]:
    return sorted(str(path.relative_to(home)) for path in home.rglob("*"))


@pytest.mark.parametrize(
    "args",
    [["submit", "--", "true"], ["scheduler", "--until-idle"], ["pause"], ["parallelism", "3"]],
    ids=["submit", "scheduler", "pause", "parallelism"],
)
def test_an_unknown_executor_in_the_config_file_names_the_file_and_creates_nothing(
    home: Path, args: list[str]
) -> None:
    config = home / "config.toml"
    config.write_text('[core]\nexecutor = "nope"\n')
    result = run_cli(home, *args)
    assert_bad_input(result, f"{config}: [core] executor", "unknown executor 'nope'", "local")
    assert contents(home) == ["config.toml"]


@pytest.mark.parametrize(
    ("entry", "fragments"),
    [
        ("nope", ["unknown executor 'nope'"]),
        ("local,nope", ["unknown executor 'nope'"]),
        ("nosuch.module:Foo", ["cannot import nosuch.module"]),
        ("os:path", ["os:path is not an executor class"]),
    ],
    ids=["unknown", "unknown second", "module missing", "not an executor"],
)
def test_an_unusable_executor_in_the_environment_names_the_variable_and_creates_nothing(
    home: Path, entry: str, fragments: list[str]
) -> None:
    workflow = home.parent / "wf.toml"
    workflow.write_text(WORKFLOW)
    env = cli_env(home, EXECCONSOLE__CORE__EXECUTOR=entry)
    for args in (["scheduler", "--until-idle"], ["run", str(workflow), "--headless"]):
        result = run_cli(home, *args, env=env)
        assert_bad_input(
            result, "environment variable EXECCONSOLE__CORE__EXECUTOR: [core] executor", *fragments
        )
        assert contents(home) == [], args


@pytest.mark.parametrize(
    "args",
    [
        ["submit", "--cwd", "/nonexistent/folder", "--", "true"],
        ["submit", "--retries", "-1", "--", "true"],
        ["submit", "--executor", "sequential", "--", "true"],
        ["submit", "--", ""],
        ["parallelism", "-3"],
        ["parallelism", "99999999999"],
    ],
    ids=["missing cwd", "negative retries", "executor not configured", "empty", "negative", "huge"],
)
def test_a_refused_command_that_would_create_the_store_leaves_a_fresh_home_empty(
    home: Path, args: list[str]
) -> None:
    assert_bad_input(run_cli(home, *args))
    assert contents(home) == []


def test_a_good_submit_still_creates_the_store(home: Path) -> None:
    result = run_cli(home, "submit", "--", "true")
    assert result.returncode == 0, result.stderr
    assert (home / "execconsole.db").is_file()
