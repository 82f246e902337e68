"""Bad input: one clear line on stderr, exit code 2, and the store unchanged."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.helpers import cli_env, run_cli


def store_digest(home: Path) -> str:
    """What the store holds, so a test can show a failed command wrote nothing."""
    path = home / "execconsole.db"
    if not path.exists():
        return "absent"
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        rows = []
        for table in ("task_instances", "events", "requests", "dag_runs", "settings"):
            try:
                rows.append(conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall())
            except sqlite3.OperationalError:
                rows.append(None)
        return hashlib.sha256(repr(rows).encode()).hexdigest()
    finally:
        conn.close()


def assert_bad_input(result, *fragments: str) -> None:  # type: ignore[no-untyped-def]
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert result.stdout == ""


@pytest.fixture
def seeded(home: Path) -> Path:
    """A store holding one finished and one running-looking task."""
    result = run_cli(home, "submit", "--task", "first", "--", "true")
    assert result.returncode == 0, result.stderr
    return home


WORKFLOWS = {
    "invalid toml": ('id = "x"\n[[task]\n', ["wf.toml:2", "invalid TOML"]),
    "unknown key": (
        'id = "x"\n[[task]]\nid = "a"\ncommand = ["true"]\nretires = 1\n',
        ["retires", "retries"],
    ),
    "wrong type": (
        'id = "x"\n[[task]]\nid = "a"\ncommand = ["true"]\nretries = "three"\n',
        ["'a'", "retries"],
    ),
    "cycle": (
        'id = "x"\n[[task]]\nid = "a"\ncommand = ["true"]\nupstream = ["b"]\n[[task]]\nid = "b"\ncommand = ["true"]\nupstream = ["a"]\n',
        ["cycle"],
    ),
    "unknown upstream": (
        'id = "x"\n[[task]]\nid = "a"\ncommand = ["true"]\nupstream = ["ghost"]\n',
        ["ghost"],
    ),
    "unknown executor": (
        'id = "x"\n[[task]]\nid = "a"\ncommand = ["true"]\nexecutor = "warp"\n',
        ["warp"],
    ),
    "empty command": ('id = "x"\n[[task]]\nid = "a"\ncommand = []\n', ["'a'", "command"]),
}


@pytest.mark.parametrize("case", sorted(WORKFLOWS))
def test_an_invalid_workflow_is_rejected_in_one_line_and_nothing_is_stored(
    home: Path, case: str
) -> None:
    text, fragments = WORKFLOWS[case]
    workflow = home / "wf.toml"
    workflow.write_text(text)
    before = store_digest(home)
    result = run_cli(home, "run", str(workflow), "--headless")
    assert_bad_input(result, *fragments)
    assert store_digest(home) == before


def test_negative_parallelism_is_rejected(home: Path) -> None:
    workflow = home / "wf.toml"
    workflow.write_text('id = "x"\n[[task]]\nid = "a"\ncommand = ["true"]\n')
    assert_bad_input(
        run_cli(home, "run", str(workflow), "--headless", "--parallelism", "-3"), "parallelism"
    )
    assert store_digest(home) == "absent"


def test_a_negative_number_reaches_the_command_not_the_option_parser(home: Path) -> None:
    # Typed without "--", "-3" used to be refused as an unknown option.
    assert_bad_input(run_cli(home, "parallelism", "-3"), "parallelism must be 0", "not -3")
    assert run_cli(home, "submit", "--dag", "d", "--task", "t", "--", "true").returncode == 0
    lowered = run_cli(home, "tasks", "priority", "d/t", "-5")  # a negative priority is valid
    assert lowered.returncode == 0, lowered.stderr
    import sqlite3

    with sqlite3.connect(home / "execconsole.db") as conn:
        payloads = [row[0] for row in conn.execute("SELECT payload FROM requests")]
    # No engine owns this store: the request waits for the next one.
    assert [json.loads(payload)["priority"] for payload in payloads] == [-5]


def test_unknown_executor_on_the_command_line_lists_the_known_ones(home: Path) -> None:
    workflow = home / "wf.toml"
    workflow.write_text('id = "x"\n[[task]]\nid = "a"\ncommand = ["true"]\n')
    assert_bad_input(
        run_cli(home, "run", str(workflow), "--headless", "--executor", "warp"), "warp", "local"
    )


def test_submit_with_an_empty_command_is_rejected(seeded: Path) -> None:
    before = store_digest(seeded)
    assert_bad_input(run_cli(seeded, "submit"), "command is empty")
    assert store_digest(seeded) == before


def test_submit_naming_an_executor_that_is_not_configured_is_rejected(seeded: Path) -> None:
    before = store_digest(seeded)
    assert_bad_input(
        run_cli(seeded, "submit", "--executor", "celery", "--", "true"), "celery", "not configured"
    )
    assert store_digest(seeded) == before


def test_a_store_that_is_a_directory_is_rejected(home: Path, tmp_path: Path) -> None:
    assert_bad_input(run_cli(home, "--store", str(tmp_path), "tasks", "list"), "is a directory")


def test_a_store_that_is_not_sqlite_is_rejected_and_left_alone(home: Path, tmp_path: Path) -> None:
    bogus = tmp_path / "notes.txt"
    bogus.write_text("shopping list\n" * 100)
    assert_bad_input(
        run_cli(home, "--store", str(bogus), "tasks", "list"), "not an SQLite database"
    )
    assert bogus.read_text() == "shopping list\n" * 100


def test_an_unknown_task_key_is_rejected(seeded: Path) -> None:
    before = store_digest(seeded)
    for command in (
        ["tasks", "show", "adhoc/ghost"],
        ["tasks", "kill", "adhoc/ghost"],
        ["tasks", "retry", "nope/x"],
    ):
        assert_bad_input(run_cli(seeded, *command), "no task instance matches")
    assert store_digest(seeded) == before


def test_a_malformed_task_key_is_rejected(seeded: Path) -> None:
    assert_bad_input(run_cli(seeded, "tasks", "show", "just-one-part"), "task key")


def test_marking_a_task_that_has_not_finished_asks_to_kill_it_first(seeded: Path) -> None:
    # The seeded task is still scheduled (no engine ran); put it in running as an engine would.
    import sqlite3

    conn = sqlite3.connect(seeded / "execconsole.db")
    conn.execute("UPDATE task_instances SET state = 'running', pid = 999999")
    conn.commit()
    conn.close()
    before = store_digest(seeded)
    assert_bad_input(
        run_cli(seeded, "tasks", "mark", "adhoc/first", "--state", "success"), "running", "kill it"
    )
    assert store_digest(seeded) == before


def test_marking_with_an_unknown_state_is_rejected(seeded: Path) -> None:
    assert_bad_input(
        run_cli(seeded, "tasks", "mark", "adhoc/first", "--state", "done"), "success or failed"
    )


def test_an_unknown_command_or_option_is_one_line(home: Path) -> None:
    assert_bad_input(run_cli(home, "frobnicate"), "frobnicate")
    assert_bad_input(run_cli(home, "tasks", "list", "--colour"), "--colour")


def test_an_executors_commands_when_it_is_not_configured_say_how_to_configure_it(
    home: Path,
) -> None:
    # Executors vend their commands only when configured: say so, not "no such command".
    result = run_cli(home, "celery", "inspect")
    assert_bad_input(result, "'celery' commands come with the celery executor", "local,celery")
    result = run_cli(
        home, "celery", "inspect", env=cli_env(home, EXECCONSOLE__CORE__EXECUTOR="sequential")
    )
    assert_bad_input(result, 'executor = "sequential,celery"')
    # A configured executor that vends no such group, and a typo, stay plain unknown commands.
    assert_bad_input(run_cli(home, "local"), "No such command 'local'")
    assert_bad_input(run_cli(home, "celeri"), "No such command 'celeri'")
    assert not (home / "execconsole.db").exists()


def test_a_bad_config_value_names_its_source(home: Path) -> None:
    (home / "config.toml").write_text("[core]\nparallelism = -1\n")
    assert_bad_input(run_cli(home, "tasks", "list"), "config.toml", "parallelism")


def test_a_bad_executor_option_is_rejected_before_the_workflow_is_stored(seeded: Path) -> None:
    (seeded / "config.toml").write_text('[executor.local]\nprefetch = "sometimes"\n')
    workflow = seeded / "wf.toml"
    workflow.write_text('id = "x"\n[[task]]\nid = "a"\ncommand = ["true"]\n')
    before = store_digest(seeded)
    assert_bad_input(run_cli(seeded, "run", str(workflow), "--headless"), "prefetch", "sometimes")
    assert store_digest(seeded) == before


@pytest.fixture
def read_only_folder(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A real read-only filesystem (even root cannot write there), holding an existing store file."""
    import subprocess

    folder = tmp_path / "ro"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], check=True)
    try:
        (folder / "store.db").write_bytes(b"")
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_an_unwritable_store_is_rejected(home: Path, read_only_folder: Path) -> None:
    assert_bad_input(
        run_cli(home, "--store", str(read_only_folder / "store.db"), "tasks", "list"),
        "not readable and writable",
    )
    # A command that creates a missing store (a read-only one just finds none there).
    assert_bad_input(
        run_cli(home, "--store", str(read_only_folder / "new.db"), "pause"), "not writable"
    )


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["runs", "clean", "--older-than", "7x"], ["--older-than '7x'", "7d"]),
        (["runs", "clean", "--older-than", "-1d"], ["--older-than '-1d'"]),
        (["runs", "clean"], ["--older-than"]),
        (["runs", "list", "--state", "bogus"], ["'bogus'", "queued, running, failed, success"]),
        (["runs", "list", "--limit", "-1"], ["--limit", "-1"]),
    ],
    ids=["unknown unit", "negative age", "no age", "unknown run state", "negative limit"],
)
def test_bad_runs_arguments_are_rejected_and_nothing_is_removed(
    seeded: Path, args: list[str], fragments: list[str]
) -> None:
    before = store_digest(seeded)
    assert_bad_input(run_cli(seeded, *args), *fragments)
    assert store_digest(seeded) == before


def test_marking_a_task_with_the_state_it_has_already_changes_nothing(seeded: Path) -> None:
    # Idempotent for scripts: exit 0, one line, no request for the engine.
    import sqlite3

    conn = sqlite3.connect(seeded / "execconsole.db")
    conn.execute("UPDATE task_instances SET state = 'success'")
    conn.commit()
    conn.close()
    before = store_digest(seeded)
    result = run_cli(seeded, "tasks", "mark", "adhoc/first", "--state", "success")
    assert result.returncode == 0, result.stderr
    assert "is already success: nothing to change" in result.stderr
    assert store_digest(seeded) == before
    assert_bad_input(
        run_cli(seeded, "tasks", "mark", "adhoc/first", "--state", "scheduled"), "success or failed"
    )
    result = run_cli(seeded, "tasks", "mark", "adhoc/first", "--state", "failed")
    assert result.returncode == 0, result.stderr
    assert "request" in result.stderr and store_digest(seeded) != before
