"""Where execconsole keeps its files, and the settings it runs with.

Everything lives under one home directory, ``$EXECCONSOLE_HOME`` (default
``~/.execconsole``)::

    execconsole.db    the store (``--store PATH`` or core.store may put it elsewhere)
    logs/             one log file per try
    claims/           claim files, so a try never starts twice
    config.toml       optional settings, below

Settings come from three places; later ones win:

1. the defaults in this module;
2. ``config.toml``, in sections ``[core]``, ``[console]``, ``[celery]`` and
   ``[executor.<name>]``;
3. environment variables ``EXECCONSOLE__<SECTION>__<KEY>``, for example
   ``EXECCONSOLE__CORE__PARALLELISM=4`` or
   ``EXECCONSOLE__EXECUTOR__LOCAL__SOME_OPTION=x``.

``[core]`` and ``[console]`` are strict: an unknown key or a value of the wrong
type is a ConfigError naming the file or variable. An executor's own options
(``[executor.<name>]``, and ``[celery]`` beyond its two typed keys) are passed
through here, because only the executor knows what they mean: they are checked
against the options its class declares when the executors are built
(``executors.loader.check_options``), and ``options_for`` hands them over with
where each was set, so that the error names the file or variable as here.
The CLI checks the built-in LocalExecutor's options as it loads the config
(``console.cli.main``), so every command refuses a value the engine would.

This module is imported by every command, so it imports nothing heavy.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

ENV_HOME = "EXECCONSOLE_HOME"
ENV_PREFIX = "EXECCONSOLE__"
DEFAULT_HOME = "~/.execconsole"
STORE_FILENAME = "execconsole.db"
LOGS_DIRNAME = "logs"
CLAIMS_DIRNAME = "claims"
CONFIG_FILENAME = "config.toml"

# Sections whose keys are typed settings; "executor" holds one free-form table
# per executor name and is handled on its own.
_EXECUTOR_SECTION = "executor"
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


class ConfigError(ValueError):
    """A setting that cannot be used; the message is one line naming where it came from."""


class ExecutorOptions(dict[str, Any]):
    """One executor's options, and where each was set.

    Attributes:
        origins: by option, the config file's path or "environment variable NAME".
        sections: by option, the config section it was read from, e.g. "[executor.local]".
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.origins: dict[str, str] = {}
        self.sections: dict[str, str] = {}


def _setting(default: Any, *, check: str | None = None, maximum: float | None = None) -> Any:
    """A dataclass field with a range check ("ge0": ≥ 0, "gt0": > 0) and an upper bound."""
    return field(default=default, metadata={"check": check, "maximum": maximum})


# Upper bounds, so that no value the engine cannot use gets past loading: a
# tick of 1e9 s overflows the engine's waits, and dates a year or more ahead
# are typos. Parallelism is bounded as `execconsole parallelism N` is, and a
# retry limit as a task's retries are (console/workflow.py).
PARALLELISM_MAX = 2**31 - 1
RETRY_LIMIT_MAX = 1000
INTERVAL_MAX = 60.0
SECONDS_MAX = 365 * 24 * 3600.0


@dataclass(frozen=True)
class CoreSettings:
    """``[core]``: what runs tasks and how fast the engine ticks."""

    executor: str = "local"
    """Executor name, or a comma list such as "local,celery"; the first is the default."""
    parallelism: int = _setting(2, check="ge0", maximum=PARALLELISM_MAX)
    """Tries an executor may run at once; 0 means no limit."""
    tick_interval: float = _setting(0.05, check="gt0", maximum=INTERVAL_MAX)
    """Seconds between engine ticks."""
    queued_timeout: float = _setting(600.0, check="gt0", maximum=SECONDS_MAX)
    """Seconds a try may sit queued in an executor before it is handed over again."""
    queued_retry_limit: int = _setting(2, check="ge0", maximum=RETRY_LIMIT_MAX)
    """How many times a timed-out queued try is handed over again before it fails."""
    store: str = ""
    """Store file path; empty means <home>/execconsole.db."""

    @property
    def executor_names(self) -> list[str]:
        """The configured executors, default first."""
        return [name.strip() for name in self.executor.split(",")]


@dataclass(frozen=True)
class CelerySettings:
    """``[celery]``: where the Celery executor finds its broker and results."""

    broker_url: str = "redis://127.0.0.1:6379/0"
    result_backend: str = ""
    """Empty means the same as broker_url (filled in by load_config)."""


@dataclass(frozen=True)
class ConsoleSettings:
    """``[console]``: the terminal UI."""

    refresh_interval: float = _setting(0.5, check="gt0", maximum=INTERVAL_MAX)
    """Seconds between panel refreshes."""


_SECTIONS: dict[str, type] = {
    "core": CoreSettings,
    "celery": CelerySettings,
    "console": ConsoleSettings,
}
# [celery] is an executor's section too: keys beyond the typed ones pass
# through to the executor's options instead of being rejected.
_PERMISSIVE_SECTIONS = frozenset({"celery"})


@dataclass(frozen=True)
class Config:
    """All settings, with the home directory they belong to.

    Attributes:
        home: the EXECCONSOLE_HOME directory (absolute).
        executor_options: each executor's own options by executor name, from
            ``[executor.<name>]`` (and ``[celery]``'s extra keys for "celery").
        store_override: a store path given on the command line (``--store``);
            it wins over ``core.store``.
        origins: where each setting that is not a default came from, by
            "section.key": a file path or an environment variable name.
    """

    home: Path
    core: CoreSettings = field(default_factory=CoreSettings)
    celery: CelerySettings = field(default_factory=CelerySettings)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    executor_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    store_override: Path | None = None
    origins: dict[str, str] = field(default_factory=dict)

    @property
    def config_file(self) -> Path:
        """``<home>/config.toml``; it need not exist."""
        return self.home / CONFIG_FILENAME

    @property
    def store_path(self) -> Path:
        """The store file: ``--store``, else core.store, else ``<home>/execconsole.db``."""
        if self.store_override is not None:
            return self.store_override
        if self.core.store:
            return Path(self.core.store)
        return self.home / STORE_FILENAME

    @property
    def logs_dir(self) -> Path:
        """``<home>/logs``: one file per try."""
        return self.home / LOGS_DIRNAME

    @property
    def claims_dir(self) -> Path:
        """``<home>/claims``: the ClaimBook's directory."""
        return self.home / CLAIMS_DIRNAME

    @property
    def executor_names(self) -> list[str]:
        """The configured executors, default first."""
        return self.core.executor_names

    def origin_text(self, dotted: str) -> str | None:
        """Where setting ``dotted`` ("core.executor") was set, as messages name it; None: a default."""
        origin = self.origins.get(dotted)
        return None if origin is None else _origin_text(origin)

    def options_for(self, executor_name: str) -> ExecutorOptions:
        """A copy of one executor's own options (empty when it has none), with where each was set."""
        options = ExecutorOptions(self.executor_options.get(executor_name, {}))
        for key in options:
            # [celery]'s extra keys are kept with the executor's options too.
            for section, label in (
                (f"{_EXECUTOR_SECTION}.{executor_name}", f"[executor.{executor_name}]"),
                (executor_name, f"[{executor_name}]"),
            ):
                origin = self.origins.get(f"{section}.{key}")
                if origin is not None:
                    options.origins[key] = _origin_text(origin)
                    options.sections[key] = label
                    break
        if executor_name == "celery":
            # The typed [celery] keys are Celery options too (and [executor.celery]'s
            # were folded into them by load_config).
            options.update(asdict(self.celery))
        return options

    def ensure_dirs(self) -> None:
        """Create the home, logs and claims directories and the store's folder."""
        for directory in (self.home, self.logs_dir, self.claims_dir, self.store_path.parent):
            directory.mkdir(parents=True, exist_ok=True)

    def as_dict(self) -> dict[str, Any]:
        """Every setting by section, for display (``config show``)."""
        return {
            "core": asdict(self.core),
            "celery": asdict(self.celery),
            "console": asdict(self.console),
            _EXECUTOR_SECTION: {name: dict(opts) for name, opts in self.executor_options.items()},
        }


# ---- loading ---------------------------------------------------------------


def resolve_home(home: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """The home directory: ``home`` if given, else $EXECCONSOLE_HOME, else ~/.execconsole."""
    environ = os.environ if environ is None else environ
    chosen = home if home is not None else (environ.get(ENV_HOME) or DEFAULT_HOME)
    return Path(chosen).expanduser().absolute()


def load_config(
    home: str | Path | None = None,
    *,
    store: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Defaults, then ``<home>/config.toml`` if it exists, then EXECCONSOLE__* variables.

    Args:
        home: the home directory; None reads $EXECCONSOLE_HOME (default ~/.execconsole).
        store: the store path from ``--store``; it wins over core.store.
        environ: the environment to read; None means ``os.environ``.

    Raises:
        ConfigError: the file or a variable holds something unusable.
    """
    environ = os.environ if environ is None else environ
    home_path = resolve_home(home, environ)
    _check_home(home_path, "--home" if home is not None else _home_source(environ))
    values: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}
    options: dict[str, dict[str, Any]] = {}
    origins: dict[str, str] = {}

    config_file = home_path / CONFIG_FILENAME
    document = _read_config_file(config_file)
    _apply_file(document, str(config_file), home_path, values, options, origins)
    _apply_environment(environ, values, options, origins)
    _fold_executor_celery(values, options, origins)

    # An unset result backend follows the broker, so pointing broker_url at
    # another Redis never leaves results going to the old one.
    if not values["celery"].get("result_backend"):
        values["celery"]["result_backend"] = values["celery"].get(
            "broker_url", CelerySettings.broker_url
        )
    sections = {name: cls(**values[name]) for name, cls in _SECTIONS.items()}
    core: CoreSettings = sections["core"]
    executor_origin = origins.get("core.executor", "the default")
    if executor_origin.startswith(ENV_PREFIX):
        executor_origin = f"environment variable {executor_origin}"
    _check_executor_list(core.executor, executor_origin)
    if core.store:
        core = replace(core, store=str(Path(core.store).expanduser().absolute()))
    return Config(
        home=home_path,
        core=core,
        celery=sections["celery"],
        console=sections["console"],
        executor_options=options,
        store_override=Path(store).expanduser().absolute() if store is not None else None,
        origins=origins,
    )


def _home_source(environ: Mapping[str, str]) -> str:
    return ENV_HOME if environ.get(ENV_HOME) else f"the default home {DEFAULT_HOME}"


def _check_home(home: Path, source: str) -> None:
    """Refuse a home that is a file, or lies under one: it must be a folder (or not exist yet)."""
    import stat

    try:
        mode = home.stat().st_mode
    except FileNotFoundError:
        return  # created by the first command that writes
    except NotADirectoryError:
        raise ConfigError(
            f"{source} {home}: part of that path is a file, not a folder; point it at a "
            "folder for the store, logs and config.toml (or one to be created)"
        ) from None
    except OSError:
        return  # e.g. a folder we may not search: reading config.toml says so
    if not stat.S_ISDIR(mode):
        raise ConfigError(
            f"{source} {home}: is a file, not a folder; point it at a folder for the store, "
            "logs and config.toml (or one to be created)"
        )


def _read_config_file(path: Path) -> dict[str, Any]:
    """The parsed file, or {} when there is none."""
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory; config.toml must be a file (or absent)")
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return {}  # no config file: no need to import the TOML parser at all
    except OSError as error:
        raise ConfigError(f"{path}: cannot read it: {error.strerror or error}") from None
    import tomllib  # here, not at the top: quick commands with no config file skip it

    try:
        with handle:
            data = handle.read()
        # A byte-order mark, as Windows editors write it, is not part of the TOML.
        return tomllib.loads(data.removeprefix(b"\xef\xbb\xbf").decode("utf-8"))
    except tomllib.TOMLDecodeError as error:
        # tomllib ends its message with "(at line L, column C)": lead with it
        # as file:line:col, which editors and terminals can jump to.
        message = str(error)
        match = _TOML_POSITION.search(message)
        if match:
            raise ConfigError(
                f"{path}:{match[1]}:{match[2]}: invalid TOML: {message[: match.start()]}"
            ) from None
        raise ConfigError(f"{path}: invalid TOML: {message}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save it as UTF-8") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read it: {error.strerror or error}") from None


def _apply_file(
    document: dict[str, Any],
    where: str,
    home: Path,
    values: dict[str, dict[str, Any]],
    options: dict[str, dict[str, Any]],
    origins: dict[str, str],
) -> None:
    """Check and take the file's settings; relative core.store is relative to home."""
    known_sections = [*_SECTIONS, _EXECUTOR_SECTION]
    for section, table in document.items():
        if section not in known_sections:
            raise ConfigError(
                f"{where}: unknown section [{section}]{_did_you_mean(section, known_sections, '[]')}"
                f"; known sections: {', '.join(f'[{s}]' for s in _SECTIONS)}, [executor.<name>]"
            )
        if not isinstance(table, dict):
            raise ConfigError(
                f"{where}: '{section}' must be a section written as [{section}], got {_show(table)}"
            )
        if section == _EXECUTOR_SECTION:
            for name, executor_table in table.items():
                if not isinstance(executor_table, dict):
                    raise ConfigError(
                        f"{where}: [executor] holds one table per executor, such as "
                        f"[executor.local]; got {name} = {_show(executor_table)}"
                    )
                options.setdefault(name, {}).update(executor_table)
                origins.update({f"executor.{name}.{key}": where for key in executor_table})
            continue
        for key, raw in table.items():
            setting = _find_setting(section, key)
            if setting is None:
                if section in _PERMISSIVE_SECTIONS:
                    options.setdefault(section, {})[key] = raw
                    origins[f"{section}.{key}"] = where
                    continue
                raise ConfigError(f"{where}: {_unknown_key(section, key)}")
            try:
                value = _from_toml(setting, raw)
            except ValueError as problem:
                raise ConfigError(f"{where}: [{section}] {key} {problem}") from None
            if section == "core" and key == "store" and value:
                # A relative store path in the file means "beside config.toml",
                # not "wherever the command happens to be started".
                value = str(home / Path(value).expanduser())
            values[section][key] = value
            origins[f"{section}.{key}"] = where


def _fold_executor_celery(
    values: dict[str, dict[str, Any]],
    options: dict[str, dict[str, Any]],
    origins: dict[str, str],
) -> None:
    """``[executor.celery]`` is the celery executor's section: its typed keys are [celery]'s.

    Its broker_url used to be overwritten by [celery]'s default, so tasks went
    to 127.0.0.1:6379 while ``config show`` printed the value as if in effect.
    A key set both ways: [celery]'s wins, unless only this one is a variable.
    """
    own = options.get("celery")
    if not own:
        return
    for key in [key for key in own if _find_setting("celery", key) is not None]:
        raw = own.pop(key)
        where = origins.pop(f"executor.celery.{key}", f"[{_EXECUTOR_SECTION}.celery]")
        already = origins.get(f"celery.{key}")
        if key in values["celery"] and not (
            where.startswith(ENV_PREFIX) and not (already or "").startswith(ENV_PREFIX)
        ):
            continue
        setting = _find_setting("celery", key)
        assert setting is not None
        try:
            value = _from_toml(setting, raw)
        except ValueError as problem:
            raise ConfigError(f"{where}: [executor.celery] {key} {problem}") from None
        values["celery"][key] = value
        origins[f"celery.{key}"] = where


def _apply_environment(
    environ: Mapping[str, str],
    values: dict[str, dict[str, Any]],
    options: dict[str, dict[str, Any]],
    origins: dict[str, str],
) -> None:
    """Take EXECCONSOLE__SECTION__KEY variables, in name order so results never vary."""
    for variable in sorted(name for name in environ if name.startswith(ENV_PREFIX)):
        text = environ[variable]
        parts = [part.lower() for part in variable[len(ENV_PREFIX) :].split("__")]
        where = f"environment variable {variable}"
        if parts[0] == _EXECUTOR_SECTION:
            if len(parts) != 3 or not all(parts):
                raise ConfigError(
                    f"{where}: executor options are named EXECCONSOLE__EXECUTOR__<NAME>__<OPTION>; "
                    "rename or unset it"
                )
            options.setdefault(parts[1], {})[parts[2]] = _option_from_text(text)
            origins[f"executor.{parts[1]}.{parts[2]}"] = variable
            continue
        if len(parts) != 2 or not all(parts):
            raise ConfigError(
                f"{where}: settings are named EXECCONSOLE__<SECTION>__<KEY>, "
                "such as EXECCONSOLE__CORE__PARALLELISM; rename or unset it"
            )
        section, key = parts
        if section not in _SECTIONS:
            known = list(_SECTIONS)
            raise ConfigError(
                f"{where}: unknown section '{section}'{_did_you_mean(section, known, chr(39) * 2)}"
                f"; known sections: {', '.join(known)}, executor; rename or unset it"
            )
        setting = _find_setting(section, key)
        if setting is None:
            if section in _PERMISSIVE_SECTIONS:
                options.setdefault(section, {})[key] = _option_from_text(text)
                origins[f"{section}.{key}"] = variable
                continue
            raise ConfigError(f"{where}: {_unknown_key(section, key)}; rename or unset it")
        try:
            values[section][key] = _from_text(setting, text)
        except ValueError as problem:
            raise ConfigError(
                f"{where}: [{section}] {key} {problem}; fix or unset the variable"
            ) from None
        origins[f"{section}.{key}"] = variable


# ---- typed values ----------------------------------------------------------


@dataclass(frozen=True)
class _Setting:
    """What a key accepts: its Python type, range check and upper bound."""

    kind: type
    check: str | None
    maximum: float | None = None


def _find_setting(section: str, key: str) -> _Setting | None:
    for item in fields(_SECTIONS[section]):
        if item.name == key:
            # Annotations are strings under `from __future__ import annotations`.
            kind = {"int": int, "float": float, "str": str}[str(item.type)]
            return _Setting(kind, item.metadata.get("check"), item.metadata.get("maximum"))
    return None


def _from_toml(setting: _Setting, raw: object) -> Any:
    """A TOML value of the right type, or ValueError saying what is wanted."""
    if setting.kind is str:
        if not isinstance(raw, str):
            raise ValueError(f"must be a string, got {_show(raw)}")
        return raw
    # TOML booleans are Python ints; a number setting never means true/false.
    is_number = isinstance(raw, int | float) and not isinstance(raw, bool)
    if setting.kind is int and not (is_number and isinstance(raw, int)):
        raise ValueError(f"must be {_wanted(setting)}, got {_show(raw)}")
    if setting.kind is float and not is_number:
        raise ValueError(f"must be {_wanted(setting)}, got {_show(raw)}")
    assert isinstance(raw, int | float)
    return _in_range(setting, setting.kind(raw), raw)


def _from_text(setting: _Setting, text: str) -> Any:
    """An environment variable's text converted to the key's type."""
    if setting.kind is str:
        return text
    try:
        number = setting.kind(text.strip())
    except ValueError:
        raise ValueError(f"must be {_wanted(setting)}, got {_show(text)}") from None
    return _in_range(setting, number, text)


def _in_range(setting: _Setting, number: float, shown: object) -> float:
    shown_text = _show(shown)
    if setting.kind is float and not math.isfinite(number):
        raise ValueError(f"must be {_wanted(setting)}, got {shown_text}")
    if setting.check == "ge0" and number < 0:
        raise ValueError(f"must be {_wanted(setting)}, got {shown_text}")
    if setting.check == "gt0" and number <= 0:
        raise ValueError(f"must be {_wanted(setting)}, got {shown_text}")
    if setting.maximum is not None and number > setting.maximum:
        unit = " seconds" if setting.kind is float else ""
        year = " (a year)" if setting.maximum == SECONDS_MAX else ""
        raise ValueError(f"must be at most {setting.maximum:.0f}{unit}{year}, got {shown_text}")
    return number


def _wanted(setting: _Setting) -> str:
    noun = "an integer" if setting.kind is int else "a number of seconds"
    bound = {"ge0": " ≥ 0", "gt0": " > 0"}.get(setting.check or "", "")
    return noun + bound


def _option_from_text(text: str) -> Any:
    """An executor option from the environment: a TOML value if it reads as one, else the text."""
    import tomllib

    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def _origin_text(origin: str) -> str:
    """An entry of ``Config.origins`` as messages name it: a file path, or "environment variable NAME"."""
    return f"environment variable {origin}" if origin.startswith(ENV_PREFIX) else origin


def _check_executor_list(executor: str, where: str) -> None:
    names = executor.split(",")
    if any(not name.strip() for name in names):
        raise ConfigError(
            f"{where}: [core] executor {executor!r} has an empty name; "
            'write one name or a comma list such as "local,celery"'
        )


# ---- messages --------------------------------------------------------------


def _unknown_key(section: str, key: str) -> str:
    known = [item.name for item in fields(_SECTIONS[section])]
    suggestion = _did_you_mean(key, known, "''")
    listing = "" if suggestion else f"; known keys: {', '.join(known)}"
    return f"unknown key '{key}' in [{section}]{suggestion}{listing}"


def _did_you_mean(word: str, candidates: list[str], brackets: str) -> str:
    import difflib  # only on an error path

    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f" (did you mean {brackets[0]}{close[0]}{brackets[1]}?)" if close else ""


def _show(value: object) -> str:
    """A value as TOML would show it, on one short line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        text = text.replace("\n", "\\n")
    elif isinstance(value, dict):
        return "a table"
    elif isinstance(value, list):
        return "an array"
    else:
        text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."
