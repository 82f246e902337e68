"""``--help`` remembers the executors' vended command groups, and notices changes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO
from tests.plugin_support import install_threads_plugin

PROBE = (
    "import io, json, sys, contextlib\n"
    "from console.cli.main import main\n"
    "out = io.StringIO()\n"
    "with contextlib.redirect_stdout(out):\n"
    "    code = main(['--help'])\n"
    "print(json.dumps({'code': code, 'help': out.getvalue(),\n"
    "                  'discovered': 'executors.loader' in sys.modules}))\n"
)


def help_run(home: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECCONSOLE")}
    env["EXECCONSOLE_HOME"] = str(home)
    env.update(extra)
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_help_remembers_vended_groups_until_the_config_changes(tmp_path: Path) -> None:
    install_threads_plugin()
    home = tmp_path / "home"
    home.mkdir()
    first = help_run(home)
    assert first["code"] == 0 and first["discovered"]
    assert (home / "cache" / "cli-groups.json").exists()
    second = help_run(home)
    assert not second["discovered"], "the remembered groups were not used"
    assert second["help"] == first["help"]
    assert "threads" not in first["help"]

    # The configured executors change: the plug-in's group must appear at once.
    (home / "config.toml").write_text('[core]\nexecutor = "local,threads"\n')
    third = help_run(home)
    assert third["discovered"]
    assert "threads" in third["help"]
    assert not help_run(home)["discovered"]

    # An environment override is part of what the cache depends on too.
    by_env = help_run(home, EXECCONSOLE__CORE__EXECUTOR="local")
    assert by_env["discovered"] and "threads" not in by_env["help"]


def test_help_on_a_fresh_machine_creates_no_home(tmp_path: Path) -> None:
    home = tmp_path / "never-created"
    assert help_run(home)["code"] == 0
    assert not home.exists()


def test_a_stale_cache_never_hides_a_group(tmp_path: Path) -> None:
    install_threads_plugin()
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text('[core]\nexecutor = "local,threads"\n')
    help_run(home)
    cache = home / "cache" / "cli-groups.json"
    document = json.loads(cache.read_text())
    document["groups"] = []  # as if written before the plug-in vended anything
    cache.write_text(json.dumps(document))
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECCONSOLE")}
    env["EXECCONSOLE_HOME"] = str(home)
    result = subprocess.run(
        [sys.executable, "-m", "console", "threads", "--help"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
