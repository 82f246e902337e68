"""``execconsole executors ...``: what is configured and what each can do."""

from __future__ import annotations

from typing import Annotated

import typer

from console.cli.errors import fail
from console.cli.main import GlobalOptions
from console.cli.output import emit_json, say, table

executors_app = typer.Typer(
    help="Configured executors, their capabilities and what they add.", no_args_is_help=True
)


def _describe(spec, default: bool) -> dict:  # type: ignore[no-untyped-def]
    from executors.loader import load_executor_class

    cls = load_executor_class(spec)
    return {
        "name": spec.name,
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "default": default,
        "capabilities": cls.capabilities(),
        "cli_groups": [{"name": g.name, "help": g.help} for g in cls.cli_groups()],
        "console_panels": [{"id": p.id, "title": p.title} for p in cls.console_panels()],
        "key_bindings": [
            {
                "key": k.key,
                "description": k.description,
                "needs_task": k.needs_task,
                "capability": k.capability,
            }
            for k in cls.key_bindings()
        ],
    }


@executors_app.command("list")
def list_executors(
    ctx: typer.Context,
    json_output: Annotated[
        bool, typer.Option("--json", help="One JSON document on stdout.")
    ] = False,
) -> None:
    """Configured executors (default first) with their capabilities."""
    options: GlobalOptions = ctx.obj
    specs = options.runtime().executor_specs()
    described = [_describe(spec, index == 0) for index, spec in enumerate(specs)]
    if json_output:
        emit_json(described)
        return
    rows = []
    for item in described:
        flags = ", ".join(name for name, on in item["capabilities"].items() if on)
        rows.append(
            (item["name"] + (" (default)" if item["default"] else ""), item["class"], flags)
        )
    say(table(["name", "class", "capabilities"], rows))


@executors_app.command("show")
def show_executor(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A configured executor's name.", show_default=False)],
    json_output: Annotated[
        bool, typer.Option("--json", help="One JSON document on stdout.")
    ] = False,
) -> None:
    """One executor: every capability and what it vends (CLI groups, panels, keys)."""
    options: GlobalOptions = ctx.obj
    specs = options.runtime().executor_specs()
    for index, spec in enumerate(specs):
        if spec.name == name:
            item = _describe(spec, index == 0)
            break
    else:
        fail(
            f"executor {name!r} is not configured: configured are {', '.join(s.name for s in specs)}"
        )
    if json_output:
        emit_json(item)
        return
    say(f"{item['name']}: {item['class']}" + (" (default)" if item["default"] else ""))
    say("capabilities:")
    for flag, on in item["capabilities"].items():
        say(f"  {flag:<24} {'yes' if on else 'no'}")
    say(
        "cli groups:     "
        + (", ".join(f"execconsole {g['name']}" for g in item["cli_groups"]) or "none")
    )
    say("console panels: " + (", ".join(p["title"] for p in item["console_panels"]) or "none"))
    say(
        "key bindings:   "
        + (", ".join(f"{k['key']} ({k['description']})" for k in item["key_bindings"]) or "none")
    )
