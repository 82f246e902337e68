"""Ids are file names under logs/: too long ones are refused up front, the longest allowed work."""

from __future__ import annotations

from pathlib import Path

from executors.task_key import MAX_ID_LENGTH
from tests.helpers import run_cli


def _one_line_refusal(result, *words: str) -> None:  # type: ignore[no-untyped-def]
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0]


def test_an_id_longer_than_the_limit_is_refused_before_anything_is_stored(home: Path) -> None:
    too_long = "y" * (MAX_ID_LENGTH + 1)
    workflow = home.parent / "long.toml"
    workflow.write_text(f'id = "long"\n[[task]]\nid = "{too_long}"\ncommand = ["true"]\n')
    _one_line_refusal(run_cli(home, "run", str(workflow), "--headless"), "at most")
    assert not (home / "execconsole.db").exists()
    for option in ("--task", "--dag"):
        _one_line_refusal(
            run_cli(home, "submit", option, too_long, "--", "true"),
            f"at most {MAX_ID_LENGTH} characters",
        )
    assert run_cli(home, "tasks", "list", "--json").stdout.strip() == "[]"


def test_the_longest_ids_allowed_run_and_keep_their_output(home: Path) -> None:
    longest = "z" * MAX_ID_LENGTH
    submitted = run_cli(
        home, "submit", "--dag", longest, "--task", longest, "--", "sh", "-c", "echo kept"
    )
    assert submitted.returncode == 0, submitted.stderr
    ran = run_cli(home, "scheduler", "--until-idle")
    assert ran.returncode == 0, ran.stderr
    logs = run_cli(home, "tasks", "logs", f"{longest}/{longest}")
    assert logs.returncode == 0, logs.stderr
    assert "kept" in logs.stdout


def test_a_try_number_too_large_for_the_store_is_bad_input_not_a_traceback(home: Path) -> None:
    assert run_cli(home, "submit", "--task", "t1", "--", "true").returncode == 0
    for command in (["tasks", "show"], ["tasks", "logs"], ["tasks", "kill"]):
        result = run_cli(home, *command, "adhoc/t1#99999999999999999999999")
        _one_line_refusal(result, "try number")
        assert "Traceback" not in result.stderr
