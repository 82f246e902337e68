"""A --store that names another program's SQLite database is refused, and left as it was."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from tests.helpers import run_cli


def test_another_programs_database_is_refused_in_one_line_and_left_byte_for_byte(
    home: Path, tmp_path: Path
) -> None:
    other = tmp_path / "app" / "app.db"
    other.parent.mkdir()
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    conn.execute("INSERT INTO invoices (total) VALUES (9.5)")
    conn.commit()
    conn.close()
    before = hashlib.sha256(other.read_bytes()).hexdigest()

    for command in (["submit", "--", "true"], ["tasks", "list"], ["scheduler", "--until-idle"]):
        result = run_cli(home, "--store", str(other), *command)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "another program's SQLite database (tables invoices)" in lines[0]
        assert "Traceback" not in result.stderr

    assert hashlib.sha256(other.read_bytes()).hexdigest() == before
    assert [p.name for p in other.parent.iterdir()] == ["app.db"]  # no -wal, no -shm
    assert list(home.iterdir()) == []  # nor logs or claims folders


def test_an_empty_file_still_becomes_a_store(home: Path, tmp_path: Path) -> None:
    empty = tmp_path / "new.db"
    empty.touch()
    assert run_cli(home, "--store", str(empty), "submit", "--", "true").returncode == 0
    assert run_cli(home, "--store", str(empty), "tasks", "list").returncode == 0
