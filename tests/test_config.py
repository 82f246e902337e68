"""Config: home paths, config.toml, EXECCONSOLE__SECTION__KEY overrides and their errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from console.config import (
    CONFIG_FILENAME,
    Config,
    ConfigError,
    load_config,
    resolve_home,
)

REPO = Path(__file__).resolve().parent.parent


def write_config(home: Path, text: str) -> Path:
    """Write ``home/config.toml`` and return its path."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / CONFIG_FILENAME
    path.write_text(text)
    return path


def config_error(home: Path, environ: dict[str, str] | None = None) -> str:
    """The one-line message load_config raises for this home and environment."""
    with pytest.raises(ConfigError) as caught:
        load_config(home, environ=environ or {})
    message = str(caught.value)
    assert "\n" not in message
    return message


# ---- home and paths --------------------------------------------------------


def test_defaults_apply_when_there_is_no_config_file(tmp_path: Path) -> None:
    config = load_config(tmp_path, environ={})
    assert config.core.executor == "local"
    assert config.core.parallelism == 2
    assert config.core.tick_interval == 0.05
    assert config.core.queued_timeout == 600.0
    assert config.core.queued_retry_limit == 2
    assert config.core.store == ""
    assert config.celery.broker_url == "redis://127.0.0.1:6379/0"
    assert config.celery.result_backend == "redis://127.0.0.1:6379/0"
    assert config.console.refresh_interval == 0.5
    assert config.executor_options == {}
    assert config.origins == {}


def test_files_live_under_the_home_directory(tmp_path: Path) -> None:
    config = load_config(tmp_path, environ={})
    assert config.home == tmp_path
    assert config.store_path == tmp_path / "execconsole.db"
    assert config.logs_dir == tmp_path / "logs"
    assert config.claims_dir == tmp_path / "claims"
    assert config.config_file == tmp_path / "config.toml"


def test_home_comes_from_execconsole_home(tmp_path: Path) -> None:
    config = load_config(environ={"EXECCONSOLE_HOME": str(tmp_path / "h")})
    assert config.home == tmp_path / "h"


def test_home_defaults_to_dot_execconsole_in_the_users_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_home(environ={}) == tmp_path / ".execconsole"


def test_home_argument_wins_over_the_environment(tmp_path: Path) -> None:
    environ = {"EXECCONSOLE_HOME": str(tmp_path / "env")}
    assert resolve_home(tmp_path / "arg", environ) == tmp_path / "arg"


def test_relative_home_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_home("rel", {}) == tmp_path / "rel"


def test_store_option_wins_over_core_store(tmp_path: Path) -> None:
    write_config(tmp_path, '[core]\nstore = "/var/tmp/from-file.db"\n')
    config = load_config(tmp_path, store=tmp_path / "cli.db", environ={})
    assert config.store_path == tmp_path / "cli.db"


def test_core_store_moves_the_store(tmp_path: Path) -> None:
    write_config(tmp_path, '[core]\nstore = "/var/tmp/from-file.db"\n')
    assert load_config(tmp_path, environ={}).store_path == Path("/var/tmp/from-file.db")


def test_relative_core_store_in_the_file_is_relative_to_home(tmp_path: Path) -> None:
    write_config(tmp_path, '[core]\nstore = "db/x.db"\n')
    assert load_config(tmp_path, environ={}).store_path == tmp_path / "db" / "x.db"


def test_ensure_dirs_creates_home_logs_claims_and_the_stores_folder(tmp_path: Path) -> None:
    config = load_config(tmp_path / "home", store=tmp_path / "elsewhere" / "s.db", environ={})
    config.ensure_dirs()
    for directory in (config.home, config.logs_dir, config.claims_dir, tmp_path / "elsewhere"):
        assert directory.is_dir()


def test_a_config_built_by_hand_has_defaults_and_paths(tmp_path: Path) -> None:
    config = Config(home=tmp_path)
    assert config.core.parallelism == 2
    assert config.store_path == tmp_path / "execconsole.db"


# ---- config.toml -----------------------------------------------------------


def test_file_settings_are_read_with_their_types(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        """
[core]
executor = "local,celery"
parallelism = 4
tick_interval = 0.1
queued_timeout = 30
queued_retry_limit = 0

[console]
refresh_interval = 1

[celery]
broker_url = "redis://queue.internal:6379/1"
result_backend = "redis://results.internal:6379/2"
""",
    )
    config = load_config(tmp_path, environ={})
    assert config.core.executor_names == ["local", "celery"]
    assert config.core.parallelism == 4
    assert config.core.queued_timeout == 30.0
    assert isinstance(config.core.queued_timeout, float)
    assert config.core.queued_retry_limit == 0
    assert config.console.refresh_interval == 1.0
    assert config.celery.broker_url == "redis://queue.internal:6379/1"
    assert config.celery.result_backend == "redis://results.internal:6379/2"
    assert config.origins["core.parallelism"] == str(path)


def test_executor_list_names_are_trimmed(tmp_path: Path) -> None:
    write_config(tmp_path, '[core]\nexecutor = "local , celery"\n')
    assert load_config(tmp_path, environ={}).executor_names == ["local", "celery"]


def test_empty_name_in_the_executor_list_is_rejected(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[core]\nexecutor = "local,,celery"\n')
    message = config_error(tmp_path)
    assert message.startswith(f"{path}: [core] executor 'local,,celery' has an empty name")


def test_result_backend_follows_the_broker_when_not_set(tmp_path: Path) -> None:
    write_config(tmp_path, '[celery]\nbroker_url = "redis://queue.internal:6379/1"\n')
    config = load_config(tmp_path, environ={})
    assert config.celery.result_backend == "redis://queue.internal:6379/1"


def test_invalid_toml_names_the_file_line_and_column(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[core]\nparallelism = \n")
    assert config_error(tmp_path).startswith(f"{path}:2:")


def test_config_path_that_is_a_directory_is_rejected(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILENAME).mkdir()
    assert "is a directory" in config_error(tmp_path)


def test_unknown_section_suggests_the_closest_one(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[cor]\nparallelism = 2\n")
    assert config_error(tmp_path).startswith(
        f"{path}: unknown section [cor] (did you mean [core]?)"
    )


def test_unknown_core_key_suggests_the_closest_one(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[core]\nparalelism = 2\n")
    assert config_error(tmp_path) == (
        f"{path}: unknown key 'paralelism' in [core] (did you mean 'parallelism'?)"
    )


def test_unknown_console_key_lists_the_known_keys(tmp_path: Path) -> None:
    write_config(tmp_path, "[console]\ncolour = 'blue'\n")
    assert "known keys: refresh_interval" in config_error(tmp_path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[core]\nparallelism = "two"', '[core] parallelism must be an integer ≥ 0, got "two"'),
        ("[core]\nparallelism = -1", "[core] parallelism must be an integer ≥ 0, got -1"),
        ("[core]\nparallelism = 2.5", "[core] parallelism must be an integer ≥ 0, got 2.5"),
        ("[core]\nparallelism = true", "[core] parallelism must be an integer ≥ 0, got true"),
        (
            "[core]\ntick_interval = 0",
            "[core] tick_interval must be a number of seconds > 0, got 0",
        ),
        ("[core]\nqueued_timeout = nan", "[core] queued_timeout must be a number of seconds > 0"),
        ("[core]\nexecutor = 3", "[core] executor must be a string, got 3"),
        ("[console]\nrefresh_interval = -1", "[console] refresh_interval must be a number"),
        ("[celery]\nbroker_url = 1", "[celery] broker_url must be a string, got 1"),
        ('core = "local"', "'core' must be a section written as [core]"),
    ],
)
def test_wrong_value_in_the_file_names_file_section_and_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write_config(tmp_path, text + "\n")
    assert config_error(tmp_path).startswith(f"{path}: {expected}")


def test_executor_sections_pass_options_through_unchecked(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        '[executor.local]\nstart_method = "forkserver"\nrecycle_after = 100\n'
        "[executor.mine]\nnested = { a = 1 }\n",
    )
    config = load_config(tmp_path, environ={})
    assert config.options_for("local") == {"start_method": "forkserver", "recycle_after": 100}
    assert config.options_for("mine") == {"nested": {"a": 1}}
    assert config.options_for("absent") == {}


def test_executor_options_say_where_each_was_set(tmp_path: Path) -> None:
    path = write_config(
        tmp_path, "[executor.local]\nprefetch = false\n[celery]\nlease_seconds = 30\n"
    )
    config = load_config(tmp_path, environ={"EXECCONSOLE__EXECUTOR__LOCAL__TERMINATE_GRACE": "2"})
    local = config.options_for("local")
    assert local == {"prefetch": False, "terminate_grace": 2}
    assert local.origins == {
        "prefetch": str(path),
        "terminate_grace": "environment variable EXECCONSOLE__EXECUTOR__LOCAL__TERMINATE_GRACE",
    }
    assert local.sections == {"prefetch": "[executor.local]", "terminate_grace": "[executor.local]"}
    celery = config.options_for("celery")
    assert (celery.origins["lease_seconds"], celery.sections["lease_seconds"]) == (
        str(path),
        "[celery]",
    )


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (
            "[executor.local]\nterminate_grce = 5\n",
            [
                "unknown option 'terminate_grce' in [executor.local]",
                "(did you mean 'terminate_grace'?)",
            ],
        ),
        (
            "[executor.local]\nwhatever = 5\n",
            ["unknown option 'whatever'", "known options: log_every_try, parallelism, prefetch"],
        ),
        ("[executor.local]\nterminate_grace = -3\n", ["terminate_grace must be", "got -3"]),
        ('[executor.local]\nprefetch = "sometimes"\n', ["prefetch must be true or false"]),
        ("[executor.local]\nquiet_start = 61\n", ["quiet_start must be", "0 to 60"]),
        ("[executor.local]\nparallelism = 1.5\n", ["parallelism must be an integer"]),
        ("[celery]\nlease_secnds = 5\n", ["unknown option 'lease_secnds' in [celery]"]),
    ],
)
def test_executor_options_are_checked_against_what_the_executor_declares(
    tmp_path: Path, text: str, fragments: list[str]
) -> None:
    from executors.loader import ExecutorConfigError, check_options, load_executor_class

    path = write_config(tmp_path, text)
    config = load_config(tmp_path, environ={})
    name = "celery" if "[celery]" in text else "local"
    with pytest.raises(ExecutorConfigError) as caught:
        check_options(name, load_executor_class(name), config.options_for(name))
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_an_executor_that_declares_no_options_is_handed_any(tmp_path: Path) -> None:
    from executors.loader import build_executors, parse_executor_list

    write_config(tmp_path, '[executor.echo]\ncolour = "blue"\n')
    config = load_config(tmp_path, environ={})
    specs = parse_executor_list("tests.sample_executors:EchoExecutor")
    built = build_executors(specs, 1, tmp_path, {"echo": config.options_for("echo")})
    assert built["echo"].options == {"colour": "blue"}


def test_executor_section_must_hold_tables(tmp_path: Path) -> None:
    write_config(tmp_path, '[executor]\nlocal = "fast"\n')
    assert "[executor] holds one table per executor" in config_error(tmp_path)


def test_celery_extra_keys_are_celery_options_next_to_the_typed_ones(tmp_path: Path) -> None:
    write_config(tmp_path, '[celery]\nbroker_url = "redis://q:6379/0"\nlease_seconds = 30\n')
    options = load_config(tmp_path, environ={}).options_for("celery")
    assert options == {
        "broker_url": "redis://q:6379/0",
        "result_backend": "redis://q:6379/0",
        "lease_seconds": 30,
    }


# ---- environment overrides -------------------------------------------------


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    write_config(tmp_path, "[core]\nparallelism = 3\n")
    config = load_config(tmp_path, environ={"EXECCONSOLE__CORE__PARALLELISM": "4"})
    assert config.core.parallelism == 4
    assert config.origins["core.parallelism"] == "EXECCONSOLE__CORE__PARALLELISM"


def test_environment_values_are_converted_to_each_keys_type(tmp_path: Path) -> None:
    config = load_config(
        tmp_path,
        environ={
            "EXECCONSOLE__CORE__TICK_INTERVAL": "0.2",
            "EXECCONSOLE__CORE__QUEUED_RETRY_LIMIT": " 5 ",
            "EXECCONSOLE__CORE__EXECUTOR": "sequential",
            "EXECCONSOLE__CONSOLE__REFRESH_INTERVAL": "2",
            "EXECCONSOLE__CELERY__BROKER_URL": "redis://other:6379/0",
        },
    )
    assert config.core.tick_interval == 0.2
    assert config.core.queued_retry_limit == 5
    assert config.core.executor == "sequential"
    assert config.console.refresh_interval == 2.0
    assert config.celery.broker_url == "redis://other:6379/0"


def test_environment_store_is_relative_to_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(tmp_path / "home", environ={"EXECCONSOLE__CORE__STORE": "s.db"})
    assert config.store_path == tmp_path / "s.db"


def test_load_config_reads_os_environ_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXECCONSOLE_HOME", str(tmp_path))
    monkeypatch.setenv("EXECCONSOLE__CORE__PARALLELISM", "7")
    config = load_config()
    assert (config.home, config.core.parallelism) == (tmp_path, 7)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (
            "EXECCONSOLE__CORE__PARALLELISM",
            "two",
            '[core] parallelism must be an integer ≥ 0, got "two"',
        ),
        ("EXECCONSOLE__CORE__PARALLELISM", "-1", "[core] parallelism must be an integer ≥ 0"),
        ("EXECCONSOLE__CORE__PARALLELISM", "1.5", "[core] parallelism must be an integer ≥ 0"),
        (
            "EXECCONSOLE__CORE__TICK_INTERVAL",
            "fast",
            "[core] tick_interval must be a number of seconds > 0",
        ),
        (
            "EXECCONSOLE__CORE__TICK_INTERVAL",
            "inf",
            "[core] tick_interval must be a number of seconds > 0",
        ),
        ("EXECCONSOLE__CONSOLE__REFRESH_INTERVAL", "0", "[console] refresh_interval must be"),
    ],
)
def test_bad_environment_value_names_the_variable(
    tmp_path: Path, name: str, value: str, expected: str
) -> None:
    message = config_error(tmp_path, {name: value})
    assert message.startswith(f"environment variable {name}: {expected}")
    assert message.endswith("fix or unset the variable")


def test_unknown_key_in_the_environment_is_rejected_with_a_suggestion(tmp_path: Path) -> None:
    message = config_error(tmp_path, {"EXECCONSOLE__CORE__PARALELISM": "2"})
    assert message == (
        "environment variable EXECCONSOLE__CORE__PARALELISM: unknown key 'paralelism' in [core]"
        " (did you mean 'parallelism'?); rename or unset it"
    )


def test_unknown_section_in_the_environment_is_rejected(tmp_path: Path) -> None:
    message = config_error(tmp_path, {"EXECCONSOLE__COR__PARALLELISM": "2"})
    assert "unknown section 'cor' (did you mean 'core'?)" in message


def test_environment_name_without_a_key_is_rejected(tmp_path: Path) -> None:
    message = config_error(tmp_path, {"EXECCONSOLE__CORE": "2"})
    assert "EXECCONSOLE__<SECTION>__<KEY>" in message


def test_unrelated_environment_variables_are_ignored(tmp_path: Path) -> None:
    config = load_config(tmp_path, environ={"EXECCONSOLE_TRY_NUMBER": "3", "PATH": "/bin"})
    assert config.core.parallelism == 2


def test_executor_options_come_from_the_environment_as_toml_values(tmp_path: Path) -> None:
    write_config(tmp_path, "[executor.local]\nrecycle_after = 100\n")
    config = load_config(
        tmp_path,
        environ={
            "EXECCONSOLE__EXECUTOR__LOCAL__RECYCLE_AFTER": "5",
            "EXECCONSOLE__EXECUTOR__LOCAL__START_METHOD": "forkserver",
            "EXECCONSOLE__EXECUTOR__LOCAL__VERBOSE": "true",
        },
    )
    assert config.options_for("local") == {
        "recycle_after": 5,
        "start_method": "forkserver",
        "verbose": True,
    }


def test_malformed_executor_option_variable_is_rejected(tmp_path: Path) -> None:
    message = config_error(tmp_path, {"EXECCONSOLE__EXECUTOR__LOCAL": "x"})
    assert "EXECCONSOLE__EXECUTOR__<NAME>__<OPTION>" in message


def test_celery_extra_options_come_from_the_environment(tmp_path: Path) -> None:
    config = load_config(tmp_path, environ={"EXECCONSOLE__CELERY__LEASE_SECONDS": "20"})
    assert config.options_for("celery")["lease_seconds"] == 20


def test_empty_executor_name_from_the_environment_names_the_variable(tmp_path: Path) -> None:
    message = config_error(tmp_path, {"EXECCONSOLE__CORE__EXECUTOR": "local,"})
    assert message.startswith("environment variable EXECCONSOLE__CORE__EXECUTOR: [core] executor")


# ---- import cost -----------------------------------------------------------


def test_config_module_does_not_import_heavy_packages() -> None:
    code = (
        "import sys, console.config; "
        "print(','.join(m for m in ('textual', 'sqlite_utils', 'typer', 'pendulum', 'psutil')"
        " if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == ""


def test_a_broker_set_in_the_celery_executors_own_section_is_the_one_used(
    tmp_path: Path,
) -> None:
    (tmp_path / "config.toml").write_text(
        '[core]\nexecutor = "local,celery"\n'
        '[executor.celery]\nbroker_url = "redis://127.0.0.1:6461/5"\n'
    )
    config = load_config(tmp_path, environ={})
    options = config.options_for("celery")
    assert options["broker_url"] == "redis://127.0.0.1:6461/5"
    assert options["result_backend"] == "redis://127.0.0.1:6461/5"  # follows the broker
    assert config.celery.broker_url == "redis://127.0.0.1:6461/5"
    assert config.origins["celery.broker_url"] == str(tmp_path / "config.toml")


def test_celery_settings_in_both_sections_the_celery_one_wins_unless_only_the_other_is_a_variable(
    tmp_path: Path,
) -> None:
    (tmp_path / "config.toml").write_text(
        '[celery]\nbroker_url = "redis://127.0.0.1:6462/0"\n'
        '[executor.celery]\nbroker_url = "redis://127.0.0.1:6463/0"\n'
    )
    assert load_config(tmp_path, environ={}).celery.broker_url == "redis://127.0.0.1:6462/0"
    variable = {"EXECCONSOLE__EXECUTOR__CELERY__BROKER_URL": "redis://127.0.0.1:6464/0"}
    assert load_config(tmp_path, environ=variable).celery.broker_url == "redis://127.0.0.1:6464/0"
