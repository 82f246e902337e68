"""`execconsole config show|get`: each setting in effect and the layer that set it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import cli_env, run_cli

CONFIG = """
[core]
parallelism = 4
[executor.local]
prefetch = false
[celery]
worker_prefetch_multiplier = 1
"""


def test_show_names_the_layer_each_setting_came_from(home: Path) -> None:
    (home / "config.toml").write_text(CONFIG)
    env = cli_env(home, EXECCONSOLE__CORE__TICK_INTERVAL="0.1")
    done = run_cli(home, "config", "show", "--json", env=env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    core = report["settings"]["core"]
    assert core["parallelism"] == {"value": 4, "source": str(home / "config.toml")}
    assert core["tick_interval"] == {"value": 0.1, "source": "$EXECCONSOLE__CORE__TICK_INTERVAL"}
    assert core["queued_timeout"]["source"] == "default"
    assert report["settings"]["executor.local"]["prefetch"] == {
        "value": False,
        "source": str(home / "config.toml"),
    }
    # Celery's own options, kept beside the typed [celery] keys.
    assert report["settings"]["celery"]["worker_prefetch_multiplier"]["value"] == 1
    assert report["paths"]["home"] == {"value": str(home), "source": "$EXECCONSOLE_HOME"}
    assert report["paths"]["config_file"]["source"] == "found"
    assert sorted(p.name for p in home.iterdir()) == ["config.toml"]  # nothing created

    human = run_cli(home, "config", "show", env=env)
    assert human.returncode == 0, human.stderr
    assert human.stdout == ""  # a table is human output: stderr, as for every command
    lines = human.stderr.splitlines()
    assert any(line.split() == ["parallelism", "4", str(home / "config.toml")] for line in lines)
    assert any(
        line.split() == ["tick_interval", "0.1", "$EXECCONSOLE__CORE__TICK_INTERVAL"]
        for line in lines
    )


def test_a_store_given_on_the_command_line_says_so(home: Path, tmp_path: Path) -> None:
    store = tmp_path / "elsewhere.db"
    done = run_cli(home, "--store", str(store), "config", "show", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["paths"]["store"] == {"value": str(store), "source": "--store"}
    assert not store.exists()


def test_get_prints_one_value_for_scripts(home: Path) -> None:
    (home / "config.toml").write_text(CONFIG)
    done = run_cli(home, "config", "get", "core.parallelism")
    assert (done.returncode, done.stdout) == (0, "4\n")
    assert f"(from {home / 'config.toml'})" in done.stderr
    broker = run_cli(home, "config", "get", "celery.broker_url")
    assert broker.stdout == "redis://127.0.0.1:6379/0\n"  # a string as it is, not quoted
    flag = run_cli(home, "config", "get", "executor.local.prefetch")
    assert flag.stdout == "false\n"


def test_unknown_names_and_a_broken_file_exit_2_with_one_line(home: Path) -> None:
    for name, message in (
        ("core.nope", "[core] has no setting 'nope' in effect"),
        ("nope", "'nope' is not SECTION.KEY of a known section"),
        ("cor.parallelism", "'cor.parallelism' is not SECTION.KEY"),
    ):
        done = run_cli(home, "config", "get", name)
        assert done.returncode == 2
        (line,) = done.stderr.strip().splitlines()
        assert message in line and done.stdout == ""
    (home / "config.toml").write_text("[core]\nparallelism = -1\n")
    broken = run_cli(home, "config", "show")
    assert broken.returncode == 2
    (line,) = broken.stderr.strip().splitlines()
    assert "parallelism" in line and "Traceback" not in broken.stderr
