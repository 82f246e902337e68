"""CelerySettings: where the broker is and how tries are guarded, from options or the environment.

The console passes the executor's options from its config file; a worker
started with ``execconsole celery worker`` on another machine has only its
environment. Both read the same names, so one ``EXECCONSOLE__CELERY__BROKER_URL``
points a console and its workers at the same Redis. Explicit options win
over the environment, which wins over the defaults.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from executors.options import ExecutorOption

ENV_PREFIX = "EXECCONSOLE__CELERY__"


class SettingsError(ValueError):
    """An option that cannot be used; the message names it and says what to do."""


@dataclass(frozen=True, slots=True)
class CelerySettings:
    """Everything the Celery app, its workers and the executor agree on."""

    broker_url: str = "redis://127.0.0.1:6379/0"
    result_backend: str = ""  # empty: the broker's Redis
    key_prefix: str = "execconsole"
    default_queue: str = "default"
    lease_seconds: float = 15.0
    """A running try's lease lives this long unless its worker renews it."""
    visibility_timeout: float = 3600.0
    """Seconds before Redis hands an unacknowledged message to another worker."""
    claim_ttl_seconds: int = 7 * 24 * 3600
    result_expires_seconds: int = 24 * 3600
    running_report_delay: float = 0.05
    """Worker side: a try announces RUNNING only once it has run this long."""
    log_tail_bytes: int = 64 * 1024
    log_push_seconds: float = 2.0
    """How often a worker copies the end of a running try's log to Redis."""
    log_dir: str = ""
    """Worker side: write task logs here instead of the path the console chose."""
    prefetch_multiplier: int = 1
    """Worker side: messages a worker reserves per pool process (Celery's worker_prefetch_multiplier)."""
    poll_interval: float = 0.1
    """At most this often ``sync`` reads every in-flight state (the engine may beat far faster)."""
    inspect_interval: float = 5.0
    inspect_timeout: float = 1.0
    connect_timeout: float = 3.0

    @property
    def backend_url(self) -> str:
        return self.result_backend or self.broker_url

    @classmethod
    def load(
        cls,
        options: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
        *,
        executor: str = "celery",
    ) -> CelerySettings:
        """Build settings from ``options``, then ``EXECCONSOLE__CELERY__*`` variables, then defaults.

        ``executor`` is the name the executor is configured under: a refused
        value is named by its section (``[celery]``, or ``[executor.<name>]``
        for another name) or by the variable it came from.

        Raises:
            SettingsError: a value has the wrong type or is out of range.
        """
        options = options or {}
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        from_environment: dict[str, str] = {}
        for field in dataclasses.fields(cls):
            variable = ENV_PREFIX + field.name.upper()
            if field.name in options and options[field.name] is not None:
                raw = options[field.name]
            elif variable in environ:
                raw = environ[variable]
                from_environment[field.name] = variable
            else:
                continue
            values[field.name] = _convert(raw, field.type, field.name, from_environment, executor)
        settings = cls(**values)
        settings._check(lambda name, problem: _refusal(name, problem, from_environment, executor))
        return settings

    def _check(self, refuse: Callable[[str, str], str]) -> None:
        # Unknown option names are tolerated: the console's config section may
        # hold keys meant for the engine (parallelism, for one).
        for name in (
            "lease_seconds",
            "visibility_timeout",
            "poll_interval",
            "inspect_interval",
            "inspect_timeout",
        ):
            if getattr(self, name) <= 0:
                raise SettingsError(
                    refuse(name, f"must be more than 0, not {getattr(self, name)!r}")
                )
        if self.prefetch_multiplier < 1:
            raise SettingsError(
                refuse("prefetch_multiplier", f"must be at least 1, not {self.prefetch_multiplier}")
            )
        if self.log_tail_bytes < 1024:
            raise SettingsError(
                refuse("log_tail_bytes", f"must be at least 1024, not {self.log_tail_bytes}")
            )
        if not self.broker_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError(
                refuse(
                    "broker_url",
                    f"must be a redis://, rediss:// or unix:// URL, not {self.broker_url!r}",
                )
            )


def _refusal(name: str, problem: str, from_environment: Mapping[str, str], executor: str) -> str:
    """One line naming a refused setting where the operator set it: a variable, or a section.

    Options reach the executor without their origin (the console's loader
    puts the environment's values among them), so an option is named by its
    section, with the file and the variable that could have set it.
    """
    variable = from_environment.get(name)
    if variable is not None:
        return f"environment variable {variable} {problem}"
    if executor == "celery":
        section, variable = "[celery]", f"{ENV_PREFIX}{name.upper()}"
    else:
        section = f"[executor.{executor}]"
        variable = f"EXECCONSOLE__EXECUTOR__{executor.upper()}__{name.upper()}"
    return f"{section} {name} {problem} (set in config.toml or {variable})"


def unreachable_message(
    settings: CelerySettings, url: str, error: BaseException, section: str = "[celery]"
) -> str:
    """One line for the operator: which Redis did not answer, why, and what to do about it."""
    setting = "broker_url" if url == settings.broker_url else "result_backend"
    return (
        f"cannot reach Redis at {url} ({error}); start redis-server there, or set {setting} "
        f"in {section} of config.toml or {ENV_PREFIX}{setting.upper()}"
    )


def _convert(
    raw: Any, annotation: Any, name: str, from_environment: Mapping[str, str], executor: str
) -> Any:
    kind = {"str": str, "float": float, "int": int}[str(annotation)]
    try:
        return kind(raw)
    except (TypeError, ValueError):
        problem = f"must be a {kind.__name__}, not {raw!r}"
        raise SettingsError(_refusal(name, problem, from_environment, executor)) from None


def config_file_options(
    environ: Mapping[str, str] | None = None, home: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """``[celery]`` of ``<home>/config.toml``, for workers run on their own.

    ``home`` defaults to ``$EXECCONSOLE_HOME``, then ``~/.execconsole``. The
    console reads the same file through its own config loader; a worker
    started as ``python -m executors.celery`` reads just this section. Keys
    an ``EXECCONSOLE__CELERY__*`` variable sets are left out, so that, as in
    the console's own loader, the environment wins over the file.

    Raises:
        SettingsError: the file is not valid TOML, or [celery] is not a table.
    """
    import tomllib
    from pathlib import Path

    environ = os.environ if environ is None else environ
    chosen = home if home is not None else environ.get("EXECCONSOLE_HOME")
    path = Path(chosen or Path.home() / ".execconsole").expanduser() / "config.toml"
    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise SettingsError(f"{path}: cannot read it: {error}") from None
    section = document.get("celery", {})
    if not isinstance(section, dict):
        raise SettingsError(f"{path}: [celery] must be a table")
    return {key: value for key, value in section.items() if ENV_PREFIX + key.upper() not in environ}


def declared_options() -> dict[str, ExecutorOption]:
    """The celery executor's options for the loader's check: one per settings field."""
    kinds = {"str": "text", "int": "integer", "float": "number"}
    return {
        field.name: ExecutorOption(kinds.get(str(field.type), "text"))
        for field in dataclasses.fields(CelerySettings)
    }
