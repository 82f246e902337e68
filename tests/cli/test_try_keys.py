"""`dag/task#N`: try N of the task's latest run, through the real CLI and a real store.

The console shows keys as ``dag/task#try`` (the run apart), so operators type
them that way; every command that takes a key must accept it.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from tests.helpers import run_cli

# flaky fails its first try and succeeds on its second, saying which run and try it was.
WORKFLOW = """
id = "keys"
[[task]]
id = "flaky"
retries = 1
shell = true
command = 'echo "run $EXECCONSOLE_RUN_ID try $EXECCONSOLE_TRY_NUMBER"; [ "$EXECCONSOLE_TRY_NUMBER" -ge 2 ]'
"""


def run_twice(home: Path) -> None:
    path = home / "keys.toml"
    path.write_text(textwrap.dedent(WORKFLOW))
    for run_id in ("first", "second"):
        result = run_cli(home, "run", str(path), "--headless", "--run-id", run_id)
        assert result.returncode == 0, result.stderr  # flaky's second try succeeded


def show(home: Path, key: str) -> dict:
    result = run_cli(home, "tasks", "show", key, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_try_number_without_a_run_means_that_try_of_the_latest_run(home: Path) -> None:
    run_twice(home)

    first_try = show(home, "keys/flaky#1")
    assert (first_try["run_id"], first_try["try_number"], first_try["state"]) == (
        "second",
        1,
        "up_for_retry",
    )
    assert show(home, "keys/flaky#2")["run_id"] == "second"

    logs = run_cli(home, "tasks", "logs", "keys/flaky#1")
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout == "run second try 1\n"
    assert run_cli(home, "tasks", "logs", "keys/flaky#2").stdout == "run second try 2\n"


def test_the_other_key_forms_still_name_what_they_did(home: Path) -> None:
    run_twice(home)

    assert run_cli(home, "tasks", "logs", "keys/flaky/first#1").stdout == "run first try 1\n"
    latest_of_first = show(home, "keys/flaky/first")
    assert (latest_of_first["run_id"], latest_of_first["try_number"]) == ("first", 2)
    latest = show(home, "keys/flaky")
    assert (latest["run_id"], latest["try_number"]) == ("second", 2)


def test_steering_commands_act_on_that_try_of_the_latest_run(home: Path) -> None:
    run_twice(home)

    retried = run_cli(home, "tasks", "retry", "keys/flaky#2")
    assert retried.returncode == 0, retried.stderr
    engine = run_cli(home, "scheduler", "--until-idle")  # carries the stored request out
    assert engine.returncode == 0, engine.stderr
    third = show(home, "keys/flaky#3")
    assert (third["run_id"], third["state"]) == ("second", "success")
    assert [t["key"] for t in show(home, "keys/flaky/first")["tries"]] == [
        "keys/flaky/first#1",
        "keys/flaky/first#2",
    ]

    # Refused for what the named try is (finished, or superseded), never for the key's form.
    for args in (
        ("kill", "keys/flaky#3"),
        ("mark", "keys/flaky#1", "--state", "success"),
        ("priority", "keys/flaky#3", "5"),
    ):
        refused = run_cli(home, "tasks", *args)
        assert refused.returncode == 2
        assert f"error: keys/flaky/second#{args[1][-1]} " in refused.stderr, refused.stderr


def test_a_try_the_latest_run_does_not_have_is_unknown(home: Path) -> None:
    run_twice(home)

    result = run_cli(home, "tasks", "logs", "keys/flaky#3")
    assert result.returncode == 2
    assert "no task instance matches keys/flaky#3 in the task's latest run" in result.stderr
    assert result.stdout == ""
