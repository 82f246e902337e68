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
    help="The settings in effect and where each came from (default, config.toml, environment, store).",
    no_args_is_help=True,
)


def _origin(config: Any, dotted: str) -> str:
    from console.config import ENV_PREFIX

    origin = config.origins.get(dotted)
    if origin is None:
        return DEFAULT
    return f"${origin}" if origin.startswith(ENV_PREFIX) else origin


def settings_in_effect(
    config: Any, executor_names: list[str] | None = None, store: Any = None
) -> dict[str, dict[str, dict[str, Any]]]:
    """``{section: {key: {"value": ..., "source": ...}}}``; executor sections as ``executor.<name>``.

    Besides what the config sets: the built-in executors' options at their
    defaults, each configured executor's parallelism (``core.parallelism``
    unless its own section sets one), and with ``store`` (an existing store,
    read only) the live settings kept there, as the layer "store": pause
    and each executor's parallelism, as set by ``execconsole pause`` and
    ``execconsole parallelism N`` (a request no engine has carried out yet
    included: the next engine applies it).
    """
    from executors.loader import builtin_option_defaults

    found: dict[str, dict[str, dict[str, Any]]] = {}
    for section, values in config.as_dict().items():
        if section == "executor":
            continue
        found[section] = {
            key: {"value": value, "source": _origin(config, f"{section}.{key}")}
            for key, value in values.items()
        }
    names = list(executor_names or [])
    # The built-in local and celery executors' sections are shown even when not
    # configured (as [celery]'s typed keys are), so that their values can be read.
    for name in sorted({"local", "celery", *names, *config.executor_options}):
        section = _section_of(name)
        entries = found.setdefault(section, {})
        for key, value in builtin_option_defaults(name).items():
            entries[key] = {"value": value, "source": DEFAULT}
        if name in ("local", "celery") or name in names:
            entries["parallelism"] = {"value": config.core.parallelism, "source": INHERITED}
        for key, value in config.executor_options.get(name, {}).items():
            # [celery]'s own options may be set in [executor.celery] too.
            dotted = f"{section}.{key}"
            if dotted not in config.origins and f"executor.{name}.{key}" in config.origins:
                dotted = f"executor.{name}.{key}"
            entries[key] = {"value": value, "source": _origin(config, dotted)}
    found[LIVE_SECTION] = {"paused": {"value": False, "source": DEFAULT}}
    if store is not None:
        _apply_store_layer(found, store, names)
    return found


DEFAULT = "default"
INHERITED = "core.parallelism"
STORE = "store"
LIVE_SECTION = "store"


def _section_of(executor_name: str) -> str:
    """Where an executor's options are shown: [celery] keeps Celery's, others [executor.<name>]."""
    return "celery" if executor_name == "celery" else f"executor.{executor_name}"


def _apply_store_layer(
    found: dict[str, dict[str, dict[str, Any]]], store: Any, names: list[str]
) -> None:
    """The live settings kept in the store, over every other layer (the engine starts with them)."""
    from console.engine import SETTING_PAUSED, parallelism_setting

    prefix = parallelism_setting("")
    for key, value in sorted(store.settings().items()):
        if key == SETTING_PAUSED:
            found[LIVE_SECTION]["paused"] = {"value": bool(value), "source": STORE}
        elif key.startswith(prefix):
            name = key[len(prefix) :]
            found.setdefault(_section_of(name), {})["parallelism"] = {
                "value": int(value),
                "source": STORE,
            }
    # Requests no engine has carried out yet, oldest first: the next engine applies them.
    for request in store.pending_requests(limit=1000):
        source = f"{STORE} (request {request.id}, pending)"
        if request.kind in ("pause", "resume"):
            found[LIVE_SECTION]["paused"] = {"value": request.kind == "pause", "source": source}
        elif request.kind == "parallelism" and (request.payload.get("executor") or names):
            name = request.payload.get("executor") or names[0]
            found.setdefault(_section_of(name), {})["parallelism"] = {
                "value": int(request.payload["value"]),
                "source": source,
            }


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
    """Every setting in effect, with where it came from: default, config.toml, a variable, the store."""
    options: GlobalOptions = ctx.obj
    runtime = options.runtime()
    config = runtime.config
    paths = _paths(config, options)
    settings = _settings_of(runtime)
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
        # A table, so stderr, as every command's human output (scripts read --json or `config get`).
        say(f"{name:<{name_width}}  {str(value):<{value_width}}  {source}".rstrip())


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
    section, dot, key = name.rpartition(".")
    settings = _settings_of(options.runtime())
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


def _settings_of(runtime: Any) -> dict[str, dict[str, dict[str, Any]]]:
    """``settings_in_effect`` with the store's layer when the store exists (it is never created)."""
    from store.errors import StoreError

    try:
        store = runtime.existing_store()
    except StoreError as error:
        say(f"note: the store's live settings are left out: {error}")
        store = None
    return settings_in_effect(runtime.config, runtime.executor_names, store)


def _shown(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
