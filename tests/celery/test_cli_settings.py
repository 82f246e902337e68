"""``execconsole celery ...`` resolves its settings as the engine and ``config show`` do.

The home comes from ``--home``, else ``EXECCONSOLE_HOME``; its ``config.toml``
comes next, and ``EXECCONSOLE__CELERY__*`` variables win over the file. A
worker that read them differently would listen on another Redis than its
engine sends to, and tries would sit in queued with nothing saying why.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.celery.conftest import Cluster, free_port
from tests.helpers import REPO, run_cli

pytestmark = pytest.mark.celery


def _env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("EXECCONSOLE")}
    return {**base, **extra}


def _home(path: Path, broker: str) -> Path:
    path.mkdir()
    (path / "config.toml").write_text(
        f'[core]\nexecutor = "local,celery"\n\n[celery]\nbroker_url = "{broker}"\n'
    )
    return path


def _standalone(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "executors.celery", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def _broker_shown(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return str(json.loads(result.stdout)["broker"])


def test_the_environment_wins_over_config_toml(cluster: Cluster, tmp_path: Path) -> None:
    nobody = f"redis://127.0.0.1:{free_port()}/0"
    home = _home(tmp_path / "home", nobody)
    env = _env(EXECCONSOLE_HOME=str(home), EXECCONSOLE__CELERY__BROKER_URL=cluster.redis.url)

    # What the engine would use, as `config show` reports it.
    shown = run_cli(home, "config", "get", "celery.broker_url", env=env)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == cluster.redis.url

    assert _broker_shown(run_cli(home, "celery", "inspect", "--json", env=env)) == cluster.redis.url
    assert _broker_shown(_standalone("inspect", "--json", env=env)) == cluster.redis.url


def test_the_environment_wins_for_options_beyond_the_broker(
    cluster: Cluster, tmp_path: Path
) -> None:
    """An untyped [celery] option (key_prefix) is overridden by its variable too."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(
        f'[core]\nexecutor = "local,celery"\n\n[celery]\nbroker_url = "{cluster.redis.url}"\n'
        'default_queue = "from-file"\n'
    )
    env = _env(EXECCONSOLE_HOME=str(home), EXECCONSOLE__CELERY__DEFAULT_QUEUE="from-env")
    for result in (
        run_cli(home, "celery", "inspect", "--json", env=env),
        _standalone("inspect", "--json", env=env),
    ):
        assert result.returncode == 0, result.stderr
        queues = {q["name"] for q in json.loads(result.stdout)["queues"]}
        assert "from-env" in queues and "from-file" not in queues, queues


def test_home_on_the_command_line_wins_over_execconsole_home(
    cluster: Cluster, tmp_path: Path
) -> None:
    nobody = f"redis://127.0.0.1:{free_port()}/0"
    elsewhere = _home(tmp_path / "elsewhere", nobody)
    chosen = _home(tmp_path / "chosen", cluster.redis.url)
    env = _env(EXECCONSOLE_HOME=str(elsewhere))

    vended = run_cli(elsewhere, "--home", str(chosen), "celery", "inspect", "--json", env=env)
    assert _broker_shown(vended) == cluster.redis.url
    standalone = _standalone("--home", str(chosen), "inspect", "--json", env=env)
    assert _broker_shown(standalone) == cluster.redis.url
