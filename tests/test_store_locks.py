"""Several connections in one process keep their SQLite locks.

A console holds several connections to the store. SQLite's locks are POSIX
record locks, owned by the process: if anything in it opened and closed the
store file by hand, every lock of every connection would go. The next process
to close its connection would then think itself the last user, fold the
write-ahead log into the file and delete it, and this process's later writes
would land in a deleted log (lost) or corrupt the store.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from store import Store
from store.store import TaskSubmission

REPO = Path(__file__).resolve().parents[1]


def _in_another_process(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


def _submit(store: Store, dag_id: str) -> None:
    store.submit(dag_id, "r1", [TaskSubmission("t", ["true"], "local")])


def test_another_process_closing_leaves_this_process_log_and_writes_intact(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.db"
    first = Store(path)
    second = Store(path)  # opening a second connection must not drop the first's locks
    try:
        # Another process writes and closes: it must see this one still using
        # the store and leave the write-ahead log alone.
        _in_another_process(
            "from store import Store\n"
            "from store.store import TaskSubmission\n"
            f"with Store({str(path)!r}) as s:\n"
            "    s.submit('from_child', 'r1', [TaskSubmission('t', ['true'], 'local')])\n"
        )
        assert Path(f"{path}-wal").exists(), (
            "the write-ahead log was deleted under open connections"
        )
        assert {record.dag_id for record in first.list_tasks()} == {"from_child"}

        _submit(second, "from_parent")
        seen = _in_another_process(
            "from store import Store\n"
            f"with Store({str(path)!r}) as s:\n"
            "    print(s.conn.execute('PRAGMA integrity_check').fetchone()[0])\n"
            "    print(sorted({r.dag_id for r in s.list_tasks()}))\n"
        )
        assert seen.splitlines() == ["ok", "['from_child', 'from_parent']"]
    finally:
        second.close()
        first.close()
