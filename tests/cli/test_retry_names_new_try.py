"""`tasks retry` says which new try it made, not only the try it follows."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from pathlib import Path

from tests.helpers import run_cli, start_cli, wait_until


def state_of(home: Path, key: str) -> str:
    shown = run_cli(home, "tasks", "show", key, "--json")
    assert shown.returncode == 0, shown.stderr
    return str(json.loads(shown.stdout)["state"])


def test_a_retry_carried_out_by_an_engine_names_the_new_try(home: Path) -> None:
    assert run_cli(home, "submit", "--dag", "chain", "--task", "b", "--", "false").returncode == 0
    assert run_cli(home, "scheduler", "--until-idle").returncode == 0
    assert state_of(home, "chain/b#1") == "failed"
    engine = start_cli(home, "scheduler")
    try:

        def leased() -> bool:
            with sqlite3.connect(home / "execconsole.db") as conn:
                return conn.execute("SELECT count(*) FROM lease").fetchone() == (1,)

        wait_until(leased, message="the engine owns the store")
        asked = run_cli(home, "tasks", "retry", "chain/b")
        assert asked.returncode == 0, asked.stderr
        (line,) = asked.stderr.strip().splitlines()
        assert line.startswith("retrying chain/b/") and line.endswith("#2"), line

        wait_until(lambda: state_of(home, "chain/b#2") == "failed", message="try 2 failed")
        again = run_cli(home, "tasks", "retry", "chain/b", "--json")
        assert again.returncode == 0, again.stderr
        document = json.loads(again.stdout)
        (given,) = document["retried"]
        assert given.endswith("#2")
        new = document["new_tries"][given]
        assert new == given.removesuffix("#2") + "#3"
        assert document["result"] == f"retrying {given}"  # the engine's own account
    finally:
        os.killpg(engine.pid, signal.SIGTERM)
        engine.communicate(timeout=60)
