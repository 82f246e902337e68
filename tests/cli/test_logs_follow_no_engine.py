"""`tasks logs --follow` on a try no engine runs yet says so once, as `tasks wait` does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO, cli_env, run_cli, wait_until

NO_ENGINE = (
    "note: no engine owns this store: waiting for `execconsole scheduler` "
    "or `execconsole console` to run it"
)


def test_following_a_waiting_tasks_log_with_no_engine_says_so_once_then_follows_it(
    home: Path, tmp_path: Path
) -> None:
    submitted = run_cli(home, "submit", "--dag", "f", "--task", "t", "--", "echo", "hello")
    assert submitted.returncode == 0, submitted.stderr
    errors = tmp_path / "follow.err"
    with errors.open("w") as err:
        follow = subprocess.Popen(
            [sys.executable, "-m", "console", "tasks", "logs", "f/t", "--follow"],
            cwd=REPO,
            env=cli_env(home),
            stdout=subprocess.PIPE,
            stderr=err,
            stdin=subprocess.DEVNULL,
            text=True,
        )
    try:
        wait_until(lambda: NO_ENGINE in errors.read_text(), message="the no-engine note")
        engine = run_cli(home, "scheduler", "--until-idle")
        assert engine.returncode == 0, engine.stderr
        out, _ = follow.communicate(timeout=60)
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.communicate()
    assert follow.returncode == 0
    assert out == "hello\n"
    notes = errors.read_text().splitlines()
    assert notes.count(NO_ENGINE) == 1, notes
