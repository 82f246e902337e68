"""A workflow's cwd must be a folder here, checked by `check` and `run` up front, as `submit --cwd` is."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_bad_input import assert_bad_input
from tests.helpers import run_cli


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    folder = tmp_path / "flows"
    (folder / "data").mkdir(parents=True)
    (folder / "notes.txt").write_text("a file\n")
    return folder


def write(flows: Path, task_lines: str, defaults: str = "") -> Path:
    path = flows / "wf.toml"
    path.write_text(f'id = "w"\n{defaults}\n[[task]]\nid = "a"\ncommand = ["pwd"]\n{task_lines}\n')
    return path


@pytest.mark.parametrize(
    ("lines", "defaults", "fragment"),
    [
        ('cwd = "missing"', "", "task 'a': 'cwd' {flows}/missing does not exist"),
        ('cwd = "notes.txt"', "", "task 'a': 'cwd' {flows}/notes.txt is a file, not a folder"),
        ("", '[defaults]\ncwd = "missing"', "[defaults]: 'cwd' {flows}/missing does not exist"),
    ],
    ids=["missing", "a file", "in defaults"],
)
def test_a_cwd_that_is_not_a_folder_is_refused_by_check_and_run_and_nothing_is_stored(
    home: Path, flows: Path, lines: str, defaults: str, fragment: str
) -> None:
    path = write(flows, lines, defaults)
    expected = fragment.format(flows=flows)
    checked = run_cli(home, "check", str(path))
    assert checked.returncode == 2
    assert expected in checked.stderr
    assert "relative cwd is taken from the workflow file's folder" in checked.stderr
    assert_bad_input(run_cli(home, "run", str(path), "--headless"), expected)
    assert list(home.iterdir()) == []


def test_a_relative_cwd_is_looked_for_beside_the_workflow_file_not_where_run_starts(
    home: Path, flows: Path
) -> None:
    path = write(flows, 'cwd = "data"')
    checked = run_cli(home, "check", str(path))  # run from the repository, not from flows/
    assert checked.returncode == 0, checked.stderr
    ran = run_cli(home, "run", str(path), "--headless")
    assert ran.returncode == 0, ran.stderr
    logs = run_cli(home, "tasks", "logs", "w/a")
    assert logs.stdout == f"{flows / 'data'}\n"
