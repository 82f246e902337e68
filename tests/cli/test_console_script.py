"""The console script ends without tearing the interpreter down: nothing it owes is lost."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from store import Store, TaskSubmission
from tests.helpers import REPO, cli_env, run_cli


def _buffered_env(home: Path) -> dict[str, str]:
    """The CLI's environment with Python's output buffered, as it is for most users.

    With PYTHONUNBUFFERED set (this machine sets it) every write goes out at
    once, and a missing flush before the process ends would go unseen.
    """
    env = cli_env(home)
    env.pop("PYTHONUNBUFFERED", None)
    return env


def _script(home: Path, body: str) -> subprocess.CompletedProcess[str]:
    """Run ``body`` in a fresh interpreter that then calls the console script."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(body)],
        cwd=REPO,
        env=_buffered_env(home),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_a_long_json_document_reaches_the_pipe_whole(home: Path) -> None:
    # Far more than a pipe buffer holds: what is still in Python's buffer when
    # the command returns must be written before the process ends.
    with Store(home / "execconsole.db") as store:
        store.submit(
            "big",
            "r1",
            [
                TaskSubmission(task_id=f"t{i:05d}", command=["/bin/true"], executor="local")
                for i in range(3000)
            ],
        )
    done = run_cli(home, "tasks", "list", "--json", "--limit", "0", env=_buffered_env(home))
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert len(rows) == 3000
    assert {row["task_id"] for row in rows} == {f"t{i:05d}" for i in range(3000)}


def test_exit_codes_pass_through(home: Path) -> None:
    assert run_cli(home, "--help").returncode == 0
    bad = run_cli(home, "tasks", "show", "no-such-key")
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0, bad.stderr


def test_the_store_is_closed_at_exit_leaving_one_file(home: Path) -> None:
    # The last connection to close folds the write-ahead log into the store
    # and removes it; a skipped teardown must not skip that.
    done = run_cli(home, "submit", "--dag", "one", "--", "/bin/true")
    assert done.returncode == 0, done.stderr
    assert sorted(path.name for path in home.iterdir()) == ["execconsole.db"]
    with Store(home / "execconsole.db") as store:
        assert [record.dag_id for record in store.list_tasks()] == ["one"]


def test_exit_hooks_registered_by_the_command_still_run(home: Path, tmp_path: Path) -> None:
    marker = tmp_path / "hook-ran"
    done = _script(
        home,
        f"""
        import atexit, sys
        import console.cli.main as cli

        def command():
            atexit.register(lambda: open({str(marker)!r}, "w").write("yes"))
            print("done")
            return 3

        cli.main = command
        cli.console_script()
        """,
    )
    assert done.returncode == 3
    assert done.stdout == "done\n"
    assert marker.read_text() == "yes"


def test_system_exit_and_uncaught_errors_keep_pythons_exit_codes(home: Path) -> None:
    for raised, code in (("SystemExit(4)", 4), ("SystemExit(None)", 0), ("SystemExit('why')", 1)):
        done = _script(
            home,
            f"""
            import console.cli.main as cli

            def command():
                raise {raised}

            cli.main = command
            cli.console_script()
            """,
        )
        assert done.returncode == code, (raised, done.stderr)
    crashed = _script(
        home,
        """
        import console.cli.main as cli

        def command():
            raise RuntimeError("a bug")

        cli.main = command
        cli.console_script()
        """,
    )
    assert crashed.returncode == 1
    assert "RuntimeError: a bug" in crashed.stderr
