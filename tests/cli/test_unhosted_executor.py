"""Tries for an executor the engine does not host: said, and `--until-idle` still ends."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import cli_env, run_cli


def test_until_idle_ends_naming_the_executor_no_engine_here_hosts(home: Path) -> None:
    two = cli_env(home, EXECCONSOLE__CORE__EXECUTOR="local,fast:local")
    assert run_cli(home, "submit", "--executor", "fast", "--", "true", env=two).returncode == 0
    assert run_cli(home, "submit", "--task", "here", "--", "true").returncode == 0

    result = run_cli(home, "scheduler", "--until-idle", timeout=60)  # hosts local only

    assert result.returncode == 1, result.stderr
    assert "1 try waits for executor 'fast', which this engine does not host" in result.stderr
    listed = run_cli(home, "tasks", "list", "--json")
    states = {task["task_id"]: task["state"] for task in json.loads(listed.stdout)}
    assert states == {"true": "scheduled", "here": "success"}

    # The engine that hosts it runs it, and then nothing is left.
    done = run_cli(home, "scheduler", "--until-idle", timeout=60, env=two)
    assert done.returncode == 0, done.stderr
