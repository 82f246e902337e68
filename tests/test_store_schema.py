"""The store's schema migrations: applied once, to new and existing stores alike."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from store import Store
from store.schema import MIGRATION_SET, MIGRATIONS

REPO = Path(__file__).resolve().parent.parent

TIMELINE_QUERY = (
    "SELECT * FROM task_instances WHERE start_date IS NOT NULL ORDER BY start_date DESC LIMIT 120"
)


def applied(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT name FROM _sqlite_migrations WHERE migration_set = ? ORDER BY id",
            (MIGRATION_SET,),
        ).fetchall()
    return [name for (name,) in rows]


def test_a_new_store_has_every_migration_and_the_timeline_query_uses_an_index(
    tmp_path: Path,
) -> None:
    path = tmp_path / "execconsole.db"
    with Store(path) as store:
        plan = " ".join(
            str(row) for row in store.conn.execute(f"EXPLAIN QUERY PLAN {TIMELINE_QUERY}")
        )
    assert applied(path) == [function.__name__ for function in MIGRATIONS]
    assert "ti_start_date" in plan and "TEMP B-TREE" not in plan
    with Store(path) as store:
        indexes = {row[1] for row in store.conn.execute("PRAGMA index_list(task_instances)")}
    assert {"ti_start_date", "ti_end_date"} <= indexes


def test_a_store_from_before_a_migration_gets_it_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "execconsole.db"
    Store(path).close()
    # Make it look like a store written before the start_date index existed.
    with sqlite3.connect(path) as conn:
        conn.execute("DROP INDEX ti_start_date")
        conn.execute(
            "DELETE FROM _sqlite_migrations WHERE migration_set = ? AND name = 'index_start_date'",
            (MIGRATION_SET,),
        )
    assert "index_start_date" not in applied(path)

    with Store(path) as store:
        indexes = {row[1] for row in store.conn.execute("PRAGMA index_list(task_instances)")}
    assert "ti_start_date" in indexes
    assert "index_start_date" in applied(path)


def test_creating_a_store_neither_imports_numpy_nor_keeps_it_from_later_imports() -> None:
    """sqlite-utils is imported with numpy hidden, and only for the length of that import."""
    script = (
        "import sqlite3, sys\n"
        "from store.schema import apply_migrations\n"
        "apply_migrations(sqlite3.connect(':memory:', isolation_level=None))\n"
        "assert 'sqlite_utils' in sys.modules\n"
        "assert 'numpy' not in sys.modules, 'numpy was imported, or left blocked'\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
