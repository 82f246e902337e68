"""A missing store: commands that only read leave it missing, commands that put work in create it.

A mistyped --store (or EXECCONSOLE_HOME) must not leave an empty database
behind and answer from it as if nothing had been submitted. Lists say there
is no store and are empty (exit 0); a command naming a task key says the key
is unknown there (one line, exit 2), like any other bad input.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import cli_env, run_cli

# How a command is pointed at a store that does not exist: a home that does not
# exist, or --store in a folder that does not exist (under a home that does).
Where = Callable[[Path], tuple[Path, list[str], Path]]


def absent_home(tmp_path: Path) -> tuple[Path, list[str], Path]:
    home = tmp_path / "no-such-home"
    return home, [], home / "execconsole.db"


def store_in_absent_folder(tmp_path: Path) -> tuple[Path, list[str], Path]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    store = tmp_path / "typo" / "deeper" / "nope.db"
    return home, ["--store", str(store)], store


WHERE: dict[str, Where] = {
    "absent home": absent_home,
    "--store in absent folder": store_in_absent_folder,
}


def tree(root: Path) -> set[str]:
    """Every file and folder under ``root``, so a test can show a command created nothing."""
    return {str(path.relative_to(root)) for path in root.rglob("*")}


def run_unchanged(tmp_path: Path, where: Where, *args: str):  # type: ignore[no-untyped-def]
    """Run the CLI against a missing store; assert it created no file or folder anywhere under tmp_path."""
    home, options, store = where(tmp_path)
    before = tree(tmp_path)
    result = run_cli(home, *options, *args)
    assert tree(tmp_path) == before, (args, result.stderr)
    assert not store.exists()
    return result, store


def assert_no_store_note(result, store: Path) -> None:  # type: ignore[no-untyped-def]
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert f"no store at {store} yet" in lines[0], lines[0]
    assert "--store" in lines[0]


def assert_bad_input(result, *fragments: str) -> None:  # type: ignore[no-untyped-def]
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert result.stdout == ""


@pytest.mark.parametrize("where", WHERE.values(), ids=WHERE.keys())
@pytest.mark.parametrize("command", [["tasks", "list"], ["runs", "list"]], ids=" ".join)
def test_a_list_on_a_missing_store_is_empty_says_so_and_creates_nothing(
    tmp_path: Path, where: Where, command: list[str]
) -> None:
    result, store = run_unchanged(tmp_path, where, *command)
    assert_no_store_note(result, store)
    assert result.stdout == ""


@pytest.mark.parametrize("where", WHERE.values(), ids=WHERE.keys())
@pytest.mark.parametrize("command", [["tasks", "list"], ["runs", "list"]], ids=" ".join)
def test_a_json_list_on_a_missing_store_is_an_empty_list(
    tmp_path: Path, where: Where, command: list[str]
) -> None:
    result, store = run_unchanged(tmp_path, where, *command, "--json")
    # The same document as an empty store gives; the note goes to stderr, as text does.
    assert json.loads(result.stdout) == []
    assert_no_store_note(result, store)


def test_filters_are_still_checked_on_a_missing_store(tmp_path: Path) -> None:
    result, _ = run_unchanged(tmp_path, absent_home, "tasks", "list", "--state", "bogus")
    assert_bad_input(result, "--state 'bogus'")
    result, _ = run_unchanged(tmp_path, absent_home, "runs", "list", "--limit", "-1")
    assert_bad_input(result, "--limit")


@pytest.mark.parametrize("where", WHERE.values(), ids=WHERE.keys())
def test_runs_clean_on_a_missing_store_removes_nothing_and_creates_nothing(
    tmp_path: Path, where: Where
) -> None:
    result, store = run_unchanged(tmp_path, where, "runs", "clean", "--older-than", "1d")
    assert_no_store_note(result, store)
    result, store = run_unchanged(tmp_path, where, "runs", "clean", "--older-than", "1d", "--json")
    document = json.loads(result.stdout)
    assert (document["removed"], document["runs"]) == (False, [])
    assert_no_store_note(result, store)
    result, _ = run_unchanged(tmp_path, where, "runs", "clean", "--older-than", "7x")
    assert_bad_input(result, "--older-than '7x'")


KEYED = {
    "show": ["tasks", "show", "demo/load"],
    "show --json": ["tasks", "show", "demo/load", "--json"],
    "logs": ["tasks", "logs", "demo/load"],
    "logs --follow": ["tasks", "logs", "demo/load", "--follow"],
    "kill": ["tasks", "kill", "demo/load", "demo/other"],
    "retry": ["tasks", "retry", "demo/load"],
    "mark": ["tasks", "mark", "demo/load", "--state", "success"],
    "priority": ["tasks", "priority", "demo/load", "3"],
}


@pytest.mark.parametrize("where", WHERE.values(), ids=WHERE.keys())
@pytest.mark.parametrize("command", KEYED.values(), ids=KEYED.keys())
def test_a_task_key_on_a_missing_store_is_unknown_and_nothing_is_created(
    tmp_path: Path, where: Where, command: list[str]
) -> None:
    result, store = run_unchanged(tmp_path, where, *command)
    assert_bad_input(result, "no task instance matches demo/load", f"no store at {store}")


@pytest.mark.parametrize(
    ("command", "fragments"),
    [
        (["tasks", "show", "just-one-part"], ["task key"]),
        (["tasks", "kill", "demo/load#0"], ["try number"]),
        (["tasks", "mark", "demo/load", "--state", "done"], ["success or failed"]),
        (["tasks", "priority", "demo/load", str(2**40)], ["priority must be"]),
        (["tasks", "logs", "demo/load", "--bytes", "-1"], ["--bytes"]),
    ],
    ids=["malformed key", "bad try number", "bad mark state", "priority out of range", "bytes"],
)
def test_other_bad_input_is_reported_as_such_on_a_missing_store(
    tmp_path: Path, command: list[str], fragments: list[str]
) -> None:
    result, _ = run_unchanged(tmp_path, absent_home, *command)
    assert_bad_input(result, *fragments)


@pytest.mark.parametrize("command", [["executors", "list"], ["executors", "show", "local"]])
def test_describing_executors_creates_nothing(tmp_path: Path, command: list[str]) -> None:
    result, _ = run_unchanged(tmp_path, absent_home, *command)
    assert result.returncode == 0, result.stderr
    result, _ = run_unchanged(tmp_path, absent_home, *command, "--json")
    assert result.returncode == 0, result.stderr
    json.loads(result.stdout)


def test_a_celery_read_command_creates_nothing(tmp_path: Path) -> None:
    # Nothing listens on port 1: the command fails on the broker, not on the store.
    home = tmp_path / "no-such-home"
    env = cli_env(
        home,
        EXECCONSOLE__CORE__EXECUTOR="local,celery",
        EXECCONSOLE__CELERY__BROKER_URL="redis://127.0.0.1:1/0",
    )
    result = run_cli(home, "celery", "inspect", "--json", env=env)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert tree(tmp_path) == set()


def test_a_read_only_console_on_a_missing_store_refuses_and_creates_nothing(
    tmp_path: Path,
) -> None:
    # Checked before the console asks for a terminal, which a test has not got.
    result, store = run_unchanged(tmp_path, absent_home, "console", "--read-only")
    assert_bad_input(result, f"no store at {store}", "--read-only")


@pytest.mark.parametrize("where", WHERE.values(), ids=WHERE.keys())
def test_submit_creates_the_missing_store_and_reads_then_see_it(
    tmp_path: Path, where: Where
) -> None:
    home, options, store = where(tmp_path)
    submitted = run_cli(home, *options, "submit", "--dag", "d", "--task", "t", "--", "true")
    assert submitted.returncode == 0, submitted.stderr
    assert store.is_file()
    listed = run_cli(home, *options, "tasks", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(task["dag_id"], task["task_id"]) for task in json.loads(listed.stdout)] == [("d", "t")]
    assert listed.stderr == ""
    shown = run_cli(home, *options, "tasks", "show", "d/t", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["state"] == "scheduled"


def test_pause_still_creates_the_store_for_the_next_engine(tmp_path: Path) -> None:
    # A pause given before anything runs is kept for the first engine on the store.
    home, options, store = absent_home(tmp_path)
    result = run_cli(home, *options, "pause")
    assert result.returncode == 0, result.stderr
    assert store.is_file()
