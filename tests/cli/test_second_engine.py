"""A second engine on a store another one owns: one line naming the owner, exit 2."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.helpers import run_cli, start_cli, wait_until


def _leased(home: Path) -> bool:
    try:
        conn = sqlite3.connect(home / "execconsole.db")
        try:
            return conn.execute("SELECT count(*) FROM lease").fetchone() == (1,)
        finally:
            conn.close()
    except sqlite3.OperationalError:  # still being created
        return False


def test_a_second_scheduler_says_one_line_naming_the_owner(home: Path) -> None:
    first = start_cli(home, "scheduler")
    try:
        wait_until(lambda: _leased(home), message="the first scheduler owns the store")
        second = run_cli(home, "scheduler", timeout=60)
        assert second.returncode == 2, second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1, second.stderr
        assert f"pid {first.pid}" in lines[0]
    finally:
        first.terminate()
        first.communicate(timeout=60)
