"""The store's schema, as sqlite-utils migrations (applied in order, each once).

Tables:
    dag_runs        one row per submitted workflow run
    task_instances  one row per try of a task; the key is
                    (dag_id, task_id, run_id, map_index, try_number)
    dependencies    task-level edges within a run (upstream -> task)
    events          the audit log: every state change of every try
    requests        operator requests from other processes, carried out by the engine
    settings        engine settings that operators change live (pause, parallelism)
    lease           which engine owns the store
"""

from __future__ import annotations

import sqlite3
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlite_utils

MIGRATION_SET = "execconsole"


def create_tables(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE dag_runs (
            dag_id TEXT NOT NULL,
            run_id TEXT NOT NULL,
            source TEXT,
            submitted_at TEXT NOT NULL,
            PRIMARY KEY (dag_id, run_id)
        );
        CREATE TABLE task_instances (
            id INTEGER PRIMARY KEY,
            dag_id TEXT NOT NULL,
            task_id TEXT NOT NULL,
            run_id TEXT NOT NULL,
            map_index INTEGER NOT NULL DEFAULT -1,
            try_number INTEGER NOT NULL DEFAULT 1,
            state TEXT NOT NULL,
            command TEXT NOT NULL,
            shell INTEGER NOT NULL DEFAULT 0,
            env TEXT NOT NULL DEFAULT '{}',
            cwd TEXT,
            priority INTEGER NOT NULL DEFAULT 1,
            queue TEXT NOT NULL DEFAULT 'default',
            executor TEXT NOT NULL,
            retries INTEGER NOT NULL DEFAULT 0,
            retry_delay REAL NOT NULL DEFAULT 0,
            timeout REAL,
            pending_upstreams INTEGER NOT NULL DEFAULT 0,
            not_before TEXT,
            token TEXT,
            pid INTEGER,
            pid_create_time REAL,
            hostname TEXT,
            worker TEXT,
            submitted_at TEXT NOT NULL,
            queued_at TEXT,
            start_date TEXT,
            end_date TEXT,
            duration REAL,
            exit_code INTEGER,
            signal INTEGER,
            reason TEXT,
            log_path TEXT,
            requeues INTEGER NOT NULL DEFAULT 0,
            no_retry INTEGER NOT NULL DEFAULT 0,
            UNIQUE (dag_id, task_id, run_id, map_index, try_number)
        );
        CREATE INDEX ti_ready ON task_instances (state, executor, priority DESC, id);
        CREATE INDEX ti_instance ON task_instances (dag_id, run_id, task_id, map_index, try_number);
        CREATE INDEX ti_dag_state ON task_instances (dag_id, state);
        CREATE TABLE dependencies (
            dag_id TEXT NOT NULL,
            run_id TEXT NOT NULL,
            task_id TEXT NOT NULL,
            upstream_task_id TEXT NOT NULL,
            PRIMARY KEY (dag_id, run_id, task_id, upstream_task_id)
        );
        CREATE INDEX dependencies_downstream ON dependencies (dag_id, run_id, upstream_task_id);
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            ti_id INTEGER NOT NULL,
            at TEXT NOT NULL,
            from_state TEXT,
            to_state TEXT NOT NULL,
            actor TEXT NOT NULL,
            reason TEXT
        );
        CREATE INDEX events_ti ON events (ti_id, id);
        CREATE TABLE requests (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            kind TEXT NOT NULL,
            payload TEXT NOT NULL DEFAULT '{}',
            status TEXT NOT NULL DEFAULT 'pending',
            result TEXT,
            done_at TEXT,
            requested_by TEXT
        );
        CREATE INDEX requests_pending ON requests (status, id);
        CREATE TABLE settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        CREATE TABLE lease (
            name TEXT PRIMARY KEY,
            pid INTEGER NOT NULL,
            hostname TEXT NOT NULL,
            acquired_at TEXT NOT NULL,
            heartbeat REAL NOT NULL
        );
        """
    )


def index_start_date(db: sqlite_utils.Database) -> None:
    """The console's timeline asks for the latest tries to start, twice a second.

    Without an index SQLite scanned and sorted every row for it: 20 ms with
    4,000 task instances, growing with the store.
    """
    db.executescript(
        "CREATE INDEX ti_start_date ON task_instances (start_date) WHERE start_date IS NOT NULL;"
    )


def index_end_date(db: sqlite_utils.Database) -> None:
    """The console's throughput sparkline counts the tries that ended in the last minutes."""
    db.executescript(
        "CREATE INDEX ti_end_date ON task_instances (end_date) WHERE end_date IS NOT NULL;"
    )


def retry_base(db: sqlite_utils.Database) -> None:
    """Where a try's retry budget starts: an operator's retry gives a fresh one.

    ``retries`` stays what the workflow said; a try may be retried while
    ``try_number - retry_base <= retries``. The engine's own retries keep
    their try's base; a try an operator asks for (retry, clear) starts at the
    try before it, as Airflow's clear sets max_tries to the try number plus
    the task's retries. Existing rows get 0: the budget they had.
    """
    db.executescript("ALTER TABLE task_instances ADD COLUMN retry_base INTEGER NOT NULL DEFAULT 0;")


# In order; each runs once. Add new migrations at the end, never edit old ones.
MIGRATIONS = [create_tables, index_start_date, index_end_date, retry_base]


def _applied_names(conn: sqlite3.Connection) -> set[str]:
    try:
        rows = conn.execute(
            "SELECT name FROM _sqlite_migrations WHERE migration_set = ?", (MIGRATION_SET,)
        )
        return {row[0] for row in rows}
    except sqlite3.OperationalError:  # no migrations table yet: a new store
        return set()


def _import_sqlite_utils() -> ModuleType:
    """sqlite_utils, imported without numpy.

    When numpy is installed, sqlite-utils imports it only to map numpy values
    to column types, which the store never passes: 90 of the 230 ms that
    importing sqlite-utils takes here, paid by every command that creates a
    store. numpy is hidden for the length of that import only (a None entry in
    ``sys.modules`` makes ``import numpy`` fail); later imports see it as usual.
    """
    if "sqlite_utils" in sys.modules or "numpy" in sys.modules:
        import sqlite_utils

        return sqlite_utils
    sys.modules["numpy"] = None  # type: ignore[assignment]
    try:
        import sqlite_utils
    finally:
        if "numpy" in sys.modules and sys.modules["numpy"] is None:
            del sys.modules["numpy"]
    return sqlite_utils


def build_migrations() -> Any:
    """The sqlite-utils migration set (imported only when something is pending)."""
    _import_sqlite_utils()
    from sqlite_utils.migrations import Migrations

    migrations = Migrations(MIGRATION_SET)
    for function in MIGRATIONS:
        migrations()(function)
    return migrations


def apply_migrations(conn: sqlite3.Connection) -> None:
    """Bring the schema up to date; safe to call from several processes at once.

    The common case (nothing pending) is one cheap query, so commands that
    only read stay fast; sqlite-utils is imported only to migrate.
    """
    wanted = {function.__name__ for function in MIGRATIONS}
    if wanted <= _applied_names(conn):
        return
    sqlite_utils = _import_sqlite_utils()
    db = sqlite_utils.Database(conn, execute_plugins=False)
    migrations = build_migrations()
    # Serialise concurrent first opens: only one process creates the tables.
    # Inside our BEGIN IMMEDIATE, sqlite-utils runs each migration in a savepoint.
    conn.execute("BEGIN IMMEDIATE")
    try:
        migrations.apply(db)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
