"""``execconsole config ...``: the settings in effect, and where each came from.

Settings are layered (defaults, then ``<home>/config.toml``, then
``EXECCONSOLE__SECTION__KEY`` variables, as Airflow layers airflow.cfg and
AIRFLOW__ variables); when a value is not what an operator expects, the
question is which layer set it. ``config show`` answers for every setting,
``config get`` prints one value for scripts.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from console.cli.errors import fail
from console.cli.main import GlobalOptions
from console.cli.output import emit_json, say

config_app = typer.Typer(
    help="The settings in effect and where each came from (default, config.toml, environment).",
    no_args_is_help=True,
)

DEFAULT = "default"


def _origin(config: Any, dotted: str) -> str:
    from console.config import ENV_PREFIX

    origin = config.origins.get(dotted)
    if origin is None:
        return DEFAULT
    return f"${origin}" if origin.startswith(ENV_PREFIX) else origin


def settings_in_effect(config: Any) -> dict[str, dict[str, dict[str, Any]]]:
    """``{section: {key: {"value": ..., "source": ...}}}``; executor sections as ``executor.<name>``."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for section, values in config.as_dict().items():
        if section == "executor":
            continue
        found[section] = {
            key: {"value": value, "source": _origin(config, f"{section}.{key}")}
            for key, value in values.items()
        }
    for name, options in sorted(config.executor_options.items()):
        if name == "celery":
            # [celery]'s keys beyond the typed ones are Celery's own options.
            for key, value in options.items():
                found["celery"][key] = {"value": value, "source": _origin(config, f"celery.{key}")}
            continue
        found[f"executor.{name}"] = {
            key: {"value": value, "source": _origin(config, f"executor.{name}.{key}")}
            for key, value in options.items()
        }
    return found


def _paths(config: Any, options: GlobalOptions) -> dict[str, Any]:
    import os

    from console.config import ENV_HOME

    if options.home is not None:
        home_source = "--home"
    elif os.environ.get(ENV_HOME):
        home_source = f"${ENV_HOME}"
    else:
        home_source = DEFAULT
    if options.store is not None:
        store_source = "--store"
    elif config.core.store:
        store_source = "core.store"
    else:
        store_source = "the home"
    return {
        "home": {"value": str(config.home), "source": home_source},
        "store": {"value": str(config.store_path), "source": store_source},
        "config_file": {
            "value": str(config.config_file),
            "source": "found" if config.config_file.is_file() else "not found (defaults apply)",
        },
        "logs": {"value": str(config.logs_dir), "source": "the home"},
    }


@config_app.command("show")
def show(
    ctx: typer.Context,
    json_output: Annotated[
        bool, typer.Option("--json", help="One JSON document on stdout.")
    ] = False,
) -> None:
    """Every setting in effect, with where it came from: default, config.toml, or a variable."""
    options: GlobalOptions = ctx.obj
    config = options.runtime().config
    paths = _paths(config, options)
    settings = settings_in_effect(config)
    if json_output:
        emit_json({"paths": paths, "settings": settings})
        return
    rows = [(name, entry["value"], entry["source"]) for name, entry in paths.items()]
    for section, values in settings.items():
        rows.append((f"[{section}]", "", ""))
        rows.extend(
            (f"  {key}", _shown(entry["value"]), entry["source"]) for key, entry in values.items()
        )
    name_width = max(len(row[0]) for row in rows)
    value_width = min(max(len(str(row[1])) for row in rows), 48)
    for name, value, source in rows:
        text = f"{name:<{name_width}}  {str(value):<{value_width}}  {source}".rstrip()
        typer.echo(text)


@config_app.command("get")
def get(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(help="SECTION.KEY, e.g. core.parallelism or executor.local.prefetch."),
    ],
) -> None:
    """One setting's value on stdout (as JSON for anything but a string), for scripts."""
    import json

    options: GlobalOptions = ctx.obj
    config = options.runtime().config
    section, dot, key = name.rpartition(".")
    settings = settings_in_effect(config)
    if not dot or section not in settings:
        known = ", ".join(sorted(settings))
        fail(
            f"{name!r} is not SECTION.KEY of a known section ({known}): see `execconsole config show`"
        )
    if key not in settings[section]:
        fail(
            f"[{section}] has no setting {key!r} in effect: see `execconsole config show` for "
            f"{', '.join(settings[section]) or 'its settings (none set)'}"
        )
    entry = settings[section][key]
    value = entry["value"]
    typer.echo(value if isinstance(value, str) else json.dumps(value))
    if entry["source"] != DEFAULT:
        say(f"(from {entry['source']})")


def _shown(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
