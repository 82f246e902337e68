"""Open the SQLite file: validated, private (0600), WAL, busy timeout.

Connections are opened in autocommit mode (``isolation_level=None``) so that
every write transaction is one we began explicitly with ``BEGIN IMMEDIATE``:
a deferred ``BEGIN`` that reads before it writes cannot wait for the lock and
fails at once under contention (measured: 97% of writes lost with 8 writers).

Nothing here may ever open the store file itself (to peek at its header, say).
SQLite's locks are POSIX record locks, which belong to the process, not to the
descriptor: closing *any* descriptor of the file drops every lock the process
holds on it, including those of its other connections. A console holds several
connections; after one such peek, an engine that closed its own connection saw
no other user, folded the write-ahead log into the file and deleted it under the
console, whose later writes then corrupted the store. So a file that is not a
database is recognised by SQLite's own error on the first statement.
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from store.errors import StoreError

BUSY_TIMEOUT_MS = 30_000


def check_store_path(path: Path) -> None:
    """Raise StoreError (one line) if ``path`` cannot be an execconsole store."""
    if path.is_dir():
        raise StoreError(
            f"store {path} is a directory, not a store file: pass a file path with --store"
        )
    if path.exists():
        if not os.access(path, os.R_OK | os.W_OK):
            raise StoreError(
                f"store {path} is not readable and writable by this user: fix its permissions or use another --store"
            )
        return
    parent = path.parent
    if not parent.exists():
        try:
            parent.mkdir(parents=True, mode=0o700)
        except OSError as error:
            raise StoreError(
                f"cannot create the folder for store {path}: {error.strerror}"
            ) from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StoreError(f"cannot create store {path}: folder {parent} is not writable")


def open_connection(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open (creating with mode 0600 if needed) and configure the store file."""
    store_path = Path(path).expanduser()
    check_store_path(store_path)
    if not store_path.exists():
        # Create the file ourselves so it is private from its first byte.
        try:
            fd = os.open(store_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
        except FileExistsError:
            pass
        except OSError as error:
            raise StoreError(f"cannot create store {store_path}: {error.strerror}") from None
    try:
        conn = sqlite3.connect(
            str(store_path),
            isolation_level=None,
            check_same_thread=False,
            timeout=BUSY_TIMEOUT_MS / 1000,
        )
    except sqlite3.Error as error:
        raise StoreError(
            f"store {store_path} cannot be opened as SQLite ({error}): use another --store"
        ) from None
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        foreign = _other_programs_tables(conn)
        if foreign:
            conn.close()
            shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
            raise StoreError(
                f"store {store_path} is another program's SQLite database (tables {shown}), not an "
                "execconsole store: point --store at an execconsole store or a new file"
            )
        _switch_to_wal(conn)
        # NORMAL is durable across process crashes in WAL mode (only an OS crash
        # can lose the last commits) and 8x faster than FULL, measured here.
        conn.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.DatabaseError as error:
        conn.close()
        if error.sqlite_errorcode == sqlite3.SQLITE_NOTADB:
            raise StoreError(
                f"store {store_path} is not an SQLite database: point --store at an execconsole store or a new file"
            ) from None
        raise StoreError(
            f"store {store_path} cannot be opened as SQLite ({error}): use another --store"
        ) from None
    return conn


def _switch_to_wal(conn: sqlite3.Connection) -> None:
    """Put the store in WAL mode, waiting (bounded) while another process does the same.

    The switch needs the file to itself, and SQLite answers "database is
    locked" at once rather than through the busy handler when another
    connection holds it: twenty processes opening a fresh store together
    (the first submits of a new home) lost one.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            busy = error.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
            if not busy or time.monotonic() >= deadline:
                raise
            time.sleep(0.005 + random.random() * 0.02)


def _other_programs_tables(conn: sqlite3.Connection) -> list[str]:
    """The tables of a database that is not a store (none for a store or an empty file).

    Asked before anything is written (even the switch to WAL, which rewrites
    the file's header): a mistyped ``--store`` naming some application's
    database must leave it as it was, not get the store's tables added. A
    store's tables are created in one transaction, so a reader sees all of
    them or none.
    """
    tables = [
        name
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        )
    ]
    return [] if not tables or "task_instances" in tables else tables


@contextlib.contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction that takes the write lock up front (``BEGIN IMMEDIATE``)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")
