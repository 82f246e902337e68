"""A UTF-8 byte-order mark, as Windows editors write it, is read past in workflow and config files."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import run_cli

BOM = b"\xef\xbb\xbf"


def test_a_workflow_file_starting_with_a_byte_order_mark_runs(home: Path, tmp_path: Path) -> None:
    flow = tmp_path / "bom.toml"
    flow.write_bytes(BOM + b'id = "bom"\n[[task]]\nid = "a"\ncommand = ["true"]\n')
    checked = run_cli(home, "check", str(flow))
    assert checked.returncode == 0, checked.stderr
    ran = run_cli(home, "run", str(flow), "--headless")
    assert ran.returncode == 0, ran.stderr


def test_a_config_file_starting_with_a_byte_order_mark_is_read(home: Path) -> None:
    (home / "config.toml").write_bytes(BOM + b"[core]\nparallelism = 3\n")
    shown = run_cli(home, "config", "show", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["settings"]["core"]["parallelism"]["value"] == 3


def test_a_bad_byte_after_the_mark_is_still_refused(home: Path, tmp_path: Path) -> None:
    flow = tmp_path / "bad.toml"
    flow.write_bytes(BOM + b'id = "x\xff"\n')
    checked = run_cli(home, "check", str(flow))
    assert checked.returncode == 2
    assert "not UTF-8 text" in checked.stderr
