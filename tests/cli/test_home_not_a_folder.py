"""A home that is a file (or lies under one) is named as such, not as an unreadable config.toml."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_bad_input import assert_bad_input
from tests.helpers import cli_env, run_cli


@pytest.mark.parametrize("below", [False, True], ids=["the file", "under the file"])
@pytest.mark.parametrize("given", ["--home", "EXECCONSOLE_HOME"])
def test_a_home_that_is_a_file_says_so_and_names_where_it_was_given(
    tmp_path: Path, given: str, below: bool
) -> None:
    afile = tmp_path / "notes.txt"
    afile.write_text("not a folder\n")
    home = afile / "sub" if below else afile
    env = cli_env(home)
    args = ["--home", str(home)] if given == "--home" else []
    for command in (["tasks", "list"], ["submit", "--", "true"], ["config", "show"]):
        result = run_cli(home, *args, *command, env=env)
        expected = "part of that path is a file" if below else "is a file, not a folder"
        assert_bad_input(result, f"{given} {home}", expected)
    assert afile.read_text() == "not a folder\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]
