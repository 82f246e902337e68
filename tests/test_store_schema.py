"""The store's schema migrations: applied once, to new and existing stores alike."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from store import Store, TaskSubmission
from store.schema import MIGRATION_SET, MIGRATIONS
from store.store import SUBMIT_DEFAULTS

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


def test_what_a_submission_leaves_out_is_exactly_the_schema_default(tmp_path: Path) -> None:
    # Store.submit omits a column whose value equals SUBMIT_DEFAULTS; that is
    # only right while those are the defaults the schema itself fills in.
    with Store(tmp_path / "execconsole.db") as store:
        declared = {
            row[1]: row[4] for row in store.conn.execute("PRAGMA table_info(task_instances)")
        }
        for column, default in SUBMIT_DEFAULTS.items():
            schema_fills = store.conn.execute(f"SELECT {declared[column] or 'NULL'}").fetchone()[0]
            assert schema_fills == default, column


def test_tasks_that_set_different_columns_keep_their_values_and_their_order(
    tmp_path: Path,
) -> None:
    def task(task_id: str, **settings: object) -> TaskSubmission:
        return TaskSubmission(task_id, ["true"], "local", **settings)  # type: ignore[arg-type]

    tasks = [
        task("a"),
        task("b", shell=True, env={"X": "1"}, cwd="/tmp"),
        task("c"),
        task(
            "d",
            priority=7,
            queue="q",
            retries=2,
            retry_delay=1.5,
            timeout=9.0,
            upstream=["a", "a", "c"],
        ),
    ]
    with Store(tmp_path / "execconsole.db") as store:
        store.submit("dag", "run", tasks)
        records = store.list_tasks()
    assert [record.task_id for record in records] == ["a", "b", "c", "d"]
    assert [record.id for record in records] == sorted(record.id for record in records)
    a, b, c, d = records
    assert (a.shell, a.env, a.cwd, a.priority, a.queue) == (False, {}, None, 1, "default")
    assert (b.shell, b.env, b.cwd) == (True, {"X": "1"}, "/tmp")
    assert (c.retries, c.retry_delay, c.timeout, c.pending_upstreams) == (0, 0.0, None, 0)
    assert (d.priority, d.queue, d.retries, d.retry_delay, d.timeout) == (7, "q", 2, 1.5, 9.0)
    assert d.pending_upstreams == 2  # distinct upstreams
    assert all(record.command == ["true"] and record.executor == "local" for record in records)
