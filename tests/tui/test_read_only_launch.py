"""`execconsole console --read-only`, the real binary in a real terminal (tmux), writes nothing.

It only watches: on a store whose home has no logs/ or claims/ folder yet
(tasks submitted, no engine ever ran), it must not create them, nor
console.log, nor anything else, and the store file stays as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from pathlib import Path

from store import Store, TaskSubmission
from tests.tui.test_end_to_end import Terminal, console_command, terminal  # noqa: F401


def tree(home: Path) -> dict[str, str]:
    """Every path under ``home`` with its kind, and each file's digest.

    The store is digested by its content (every table's rows and the schema),
    not its bytes: the test is about what the console writes, and SQLite may
    rewrite a page's bookkeeping when its last connection closes (seen once in
    a full suite run under load, with every row the same).
    """
    found = {}
    for path in sorted(home.rglob("*")):
        name = str(path.relative_to(home))
        if path.is_dir():
            found[name] = "folder"
        elif path.name == "execconsole.db":
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
                dump = "\n".join(conn.iterdump())
            found[name] = hashlib.sha256(dump.encode()).hexdigest()
        else:
            found[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def test_a_read_only_console_creates_no_folder_and_writes_no_file(
    terminal: Terminal,  # noqa: F811
    home: Path,
) -> None:
    with Store(home / "execconsole.db") as store:
        store.submit(
            "watched",
            "manual__1",
            [
                TaskSubmission(task_id="first", command=["true"], executor="local"),
                TaskSubmission(
                    task_id="second", command=["true"], executor="local", upstream=["first"]
                ),
            ],
        )
    before = tree(home)
    assert sorted(before) == ["execconsole.db"]  # no logs/, no claims/

    terminal.start(console_command(home, "console --read-only"))
    terminal.wait_for_text("READ-ONLY")
    terminal.wait_for_text("watched/first")
    terminal.keys("2")  # the Queued panel, its first row selected
    terminal.keys("Enter")  # that task's detail: its fields, history and (missing) log
    terminal.wait_for_text("State history")
    terminal.keys("Escape")
    terminal.wait(lambda: "State history" not in terminal.screen(), "back on the dashboard")
    terminal.keys("q")
    terminal.wait(lambda: not terminal.alive, "the console exited")

    assert tree(home) == before
