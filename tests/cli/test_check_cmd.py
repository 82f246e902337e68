"""``execconsole check``: workflow files validated as ``run`` would, nothing run or stored."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import REPO, cli_env, run_cli

DIAMOND = """
id = "diamond"
[[task]]
id = "extract"
command = ["true"]
[[task]]
id = "left"
upstream = ["extract"]
command = ["true"]
queue = "gpu"
[[task]]
id = "right"
upstream = ["extract"]
command = ["true"]
[[task]]
id = "join"
upstream = ["left", "right"]
command = ["true"]
executor = "sequential"
"""

BROKEN = """
id = "broken"
[[task]]
id = "a"
command = "echo hi"
[[task]]
id = "b"
command = ["true"]
priorty = 3
"""


def test_a_valid_file_is_described_and_nothing_is_stored(home: Path, tmp_path: Path) -> None:
    workflow = tmp_path / "diamond.toml"
    workflow.write_text(DIAMOND)
    env = cli_env(home, EXECCONSOLE__CORE__EXECUTOR="local,sequential")
    result = run_cli(home, "check", str(workflow), env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == (
        f"{workflow}: workflow diamond is valid: 4 tasks, 1 with no upstream, longest chain 3; "
        "executors local (3), sequential (1)"
    )
    assert not home.exists() or not (home / "execconsole.db").exists()


def test_every_problem_of_every_file_is_listed_and_the_exit_code_is_2(
    home: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text(BROKEN)
    missing = tmp_path / "missing.toml"
    demo = REPO / "examples" / "demo.toml"
    result = run_cli(home, "check", str(demo), str(broken), str(missing))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"{demo}: workflow demo is valid: 30 tasks")
    assert lines[1] == f"{broken}: invalid, 2 problems:"
    assert lines[2].startswith("  task 'a': 'command' is a string but shell is not true")
    assert lines[3] == "  task 'b': unknown key 'priorty' in a task (did you mean 'priority'?)"
    assert lines[4] == f"{missing}: invalid, 1 problem:"
    assert lines[5] == "  no such workflow file; check the path"
    assert len(lines) == 6


def test_json_is_one_document_with_a_report_per_file(home: Path, tmp_path: Path) -> None:
    workflow = tmp_path / "diamond.toml"
    workflow.write_text(DIAMOND.replace('executor = "sequential"\n', ""))
    broken = tmp_path / "broken.toml"
    broken.write_text(BROKEN)
    result = run_cli(home, "check", str(workflow), str(broken), "--json")
    assert result.returncode == 2
    assert result.stderr == ""
    valid, invalid = json.loads(result.stdout)
    assert valid == {
        "file": str(workflow),
        "valid": True,
        "dag_id": "diamond",
        "tasks": 4,
        "roots": 1,
        "longest_chain": 3,
        "executors": {"local": 4},
        "queues": {"default": 3, "gpu": 1},
    }
    assert invalid["valid"] is False and len(invalid["problems"]) == 2


def test_an_executor_not_configured_here_is_a_problem(home: Path, tmp_path: Path) -> None:
    workflow = tmp_path / "diamond.toml"
    workflow.write_text(DIAMOND)  # "join" asks for the sequential executor
    result = run_cli(home, "check", str(workflow))
    assert result.returncode == 2
    assert "task 'join': unknown executor 'sequential'" in result.stderr
