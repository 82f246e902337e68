"""`config show|get` list every setting in effect: the local executor's options, each
executor's parallelism, and the live settings kept in the store; a bad executor
option is refused when the config is loaded, by every command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_bad_input import assert_bad_input
from tests.helpers import cli_env, run_cli


def show(home: Path, env: dict[str, str] | None = None) -> dict:  # type: ignore[type-arg]
    done = run_cli(home, "config", "show", "--json", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["settings"]


def test_the_local_executors_options_are_listed_with_their_defaults(home: Path) -> None:
    local = show(home)["executor.local"]
    assert local == {
        "prefetch": {"value": True, "source": "default"},
        "terminate_grace": {"value": 5.0, "source": "default"},
        "quiet_start": {"value": 0.005, "source": "default"},
        "log_every_try": {"value": False, "source": "default"},
        "parallelism": {"value": 2, "source": "core.parallelism"},
    }
    got = run_cli(home, "config", "get", "executor.local.prefetch")
    assert (got.returncode, got.stdout) == (0, "true\n"), got.stderr
    assert list(home.iterdir()) == []  # nothing created


def test_each_executors_parallelism_is_readable_and_follows_core_unless_set(home: Path) -> None:
    (home / "config.toml").write_text("[core]\nparallelism = 3\n[celery]\nparallelism = 0\n")
    celery = run_cli(home, "config", "get", "celery.parallelism")
    assert (celery.returncode, celery.stdout) == (0, "0\n"), celery.stderr
    local = run_cli(home, "config", "get", "executor.local.parallelism")
    assert (local.stdout, local.stderr.strip()) == ("3\n", "(from core.parallelism)")
    (home / "config.toml").unlink()
    assert run_cli(home, "config", "get", "celery.parallelism").stdout == "2\n"
    env = cli_env(home, EXECCONSOLE__CORE__EXECUTOR="local,sequential")
    assert show(home, env)["executor.sequential"]["parallelism"]["value"] == 2


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ('[executor.local]\nprefetch = "maybe"\n', ['prefetch must be true or false, got "maybe"']),
        ("[executor.local]\nterminate_grace = -1\n", ["terminate_grace", "from 0 to 3600"]),
        ("[executor.local]\nquiet_start = 61\n", ["quiet_start", "from 0 to 60"]),
        ("[executor.local]\nbogus = 3\n", ["unknown option 'bogus' in [executor.local]"]),
        ("[executor.local]\nparallelism = -1\n", ["[executor.local] parallelism"]),
    ],
    ids=["flag", "negative grace", "quiet start", "unknown", "parallelism"],
)
def test_a_bad_local_executor_option_is_refused_by_every_command(
    home: Path, text: str, fragments: list[str]
) -> None:
    config = home / "config.toml"
    config.write_text(text)
    for args in (
        ["submit", "--", "true"],
        ["config", "show"],
        ["config", "get", "executor.local.prefetch"],
        ["pause"],
    ):
        assert_bad_input(run_cli(home, *args), str(config), *fragments)
    assert [path.name for path in home.iterdir()] == ["config.toml"]


def test_a_bad_local_executor_option_from_the_environment_names_the_variable(
    home: Path,
) -> None:
    env = cli_env(home, EXECCONSOLE__EXECUTOR__LOCAL__PREFETCH="maybe")
    assert_bad_input(
        run_cli(home, "config", "get", "executor.local.prefetch", env=env),
        "environment variable EXECCONSOLE__EXECUTOR__LOCAL__PREFETCH",
        "fix or unset the variable",
    )
    env = cli_env(home, EXECCONSOLE__EXECUTOR__LOCAL__PREFETCH="off")  # a word the engine reads
    assert run_cli(home, "config", "get", "executor.local.prefetch", env=env).stdout == "off\n"


def test_the_stores_live_settings_are_shown_as_the_store_layer(home: Path) -> None:
    assert show(home)["store"] == {"paused": {"value": False, "source": "default"}}
    assert list(home.iterdir()) == []  # config show never creates the store

    assert run_cli(home, "parallelism", "1").returncode == 0
    assert run_cli(home, "pause").returncode == 0
    settings = show(home)
    # No engine has carried the requests out yet: the next one will.
    assert settings["executor.local"]["parallelism"]["value"] == 1
    assert settings["executor.local"]["parallelism"]["source"].startswith("store (request ")
    assert settings["store"]["paused"]["value"] is True
    assert settings["core"]["parallelism"] == {"value": 2, "source": "default"}

    engine = run_cli(home, "scheduler", "--until-idle")
    assert engine.returncode == 0, engine.stderr
    settings = show(home)
    assert settings["executor.local"]["parallelism"] == {"value": 1, "source": "store"}
    assert settings["store"]["paused"] == {"value": True, "source": "store"}
    got = run_cli(home, "config", "get", "store.paused")
    assert (got.stdout, got.stderr.strip()) == ("true\n", "(from store)")


def test_a_celery_option_set_in_executor_celery_names_the_file(home: Path) -> None:
    config = home / "config.toml"
    config.write_text("[executor.celery]\nlease_seconds = 30\nparallelism = 0\n")
    celery = show(home)["celery"]
    assert celery["lease_seconds"] == {"value": 30, "source": str(config)}
    assert celery["parallelism"] == {"value": 0, "source": str(config)}
