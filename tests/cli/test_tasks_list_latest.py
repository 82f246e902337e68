"""`tasks list --latest`: each task instance's latest try only, through the real CLI.

Without it every try is listed, so a task that failed and then succeeded on
a retry shows up under ``--state failed``; scripts that retry what that lists
would hit superseded tries.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from store import Store
from tests.helpers import run_cli

# fragile fails its first try only (no retries: an operator retries it);
# broken fails every try; steady succeeds at once.
WORKFLOW = """
id = "latest"
[[task]]
id = "fragile"
shell = true
command = '[ "$EXECCONSOLE_TRY_NUMBER" -ge 2 ]'
[[task]]
id = "broken"
command = ["false"]
[[task]]
id = "steady"
command = ["true"]
"""


def run_and_retry(home: Path, run_id: str) -> None:
    """One run, then fragile and broken retried by hand: fragile succeeds, broken fails again."""
    path = home / "latest.toml"
    path.write_text(textwrap.dedent(WORKFLOW))
    result = run_cli(home, "run", str(path), "--headless", "--run-id", run_id)
    assert result.returncode == 1, result.stderr
    retried = run_cli(home, "tasks", "retry", f"latest/fragile/{run_id}", f"latest/broken/{run_id}")
    assert retried.returncode == 0, retried.stderr
    engine = run_cli(home, "scheduler", "--until-idle")
    assert engine.returncode == 0, engine.stderr


def listed(home: Path, *args: str) -> list[str]:
    result = run_cli(home, "tasks", "list", "--json", *args)
    assert result.returncode == 0, result.stderr
    return [record["key"] for record in json.loads(result.stdout)]  # exactly one document


def test_latest_lists_only_each_tasks_latest_try(home: Path) -> None:
    run_and_retry(home, "one")
    run_and_retry(home, "two")

    # The default is unchanged: every try, newest first, superseded failures included.
    assert listed(home, "--state", "failed", "--run", "two") == [
        "latest/broken/two#2",
        "latest/broken/two#1",
        "latest/fragile/two#1",
    ]
    # Tasks whose latest try failed, in every run (a later run does not hide an earlier one's).
    assert listed(home, "--state", "failed", "--latest") == [
        "latest/broken/two#2",
        "latest/broken/one#2",
    ]
    assert listed(home, "--latest", "--run", "one") == [
        "latest/broken/one#2",
        "latest/fragile/one#2",
        "latest/steady/one#1",
    ]
    assert listed(home, "--latest", "--limit", "2") == [
        "latest/broken/two#2",
        "latest/fragile/two#2",
    ]


def test_latest_in_the_human_table(home: Path) -> None:
    run_and_retry(home, "one")

    result = run_cli(home, "tasks", "list", "--latest", "--state", "failed")
    assert result.returncode == 0 and result.stdout == ""
    header, *lines = result.stderr.splitlines()
    assert header.split()[:2] == ["KEY", "STATE"]
    assert [line.split()[:2] for line in lines] == [["latest/broken/one#2", "failed"]]


def test_the_latest_filter_probes_an_index(home: Path) -> None:
    """The statement `tasks list --latest` runs looks each later try up in ti_instance, never scans for it."""
    statements: list[str] = []
    with Store(home / "execconsole.db") as store:
        store.conn.set_trace_callback(statements.append)
        store.list_tasks(states=["running"], limit=500, newest_first=True, latest_only=True)
        store.conn.set_trace_callback(None)
        (sql,) = [s for s in statements if "NOT EXISTS" in s]
        plan = [row[3] for row in store.conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
    later = [step for step in plan if step.startswith(("SEARCH later", "SCAN later"))]
    assert later and all("USING COVERING INDEX ti_instance" in step for step in later), plan
    assert any("USING INDEX ti_ready (state=?)" in step for step in plan), plan


def test_latest_with_no_store_is_an_empty_list(home: Path) -> None:
    result = run_cli(home, "tasks", "list", "--latest", "--json")
    assert result.returncode == 0
    assert json.loads(result.stdout) == []
    assert not (home / "execconsole.db").exists()


def test_a_list_cut_short_by_limit_says_so_on_stderr_with_json_too(home: Path) -> None:
    # A script reading --json must not take the newest N for every task.
    run_and_retry(home, "r1")
    result = run_cli(home, "tasks", "list", "--json", "--limit", "2")
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)) == 2  # still exactly one document on stdout
    assert "(showing the newest 2; use --limit 0 for all)" in result.stderr
    everything = run_cli(home, "tasks", "list", "--json", "--limit", "0")
    assert len(json.loads(everything.stdout)) == 5
    assert "showing the newest" not in everything.stderr
