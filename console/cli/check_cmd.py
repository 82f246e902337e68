"""``execconsole check FILE...``: validate workflow files without running them or touching the store."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from console.cli.main import GlobalOptions
from console.cli.output import emit_json, say, tasks


def register(app: typer.Typer) -> None:
    app.command("check")(check)


def check(
    ctx: typer.Context,
    files: Annotated[
        list[str],
        typer.Argument(help="Workflow files (TOML).", show_default=False),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
) -> None:
    """Check workflow files as `run` would, and list every problem found; nothing is run or stored.

    Exit code 0 when every file is valid, 2 when any is not. Executor names are
    checked against the executors configured here.
    """
    from console.workflow import WorkflowError, load_workflow

    options: GlobalOptions = ctx.obj
    known = options.runtime().executor_names
    reports: list[dict[str, Any]] = []
    for path in files:
        try:
            spec = load_workflow(Path(path), known_executors=known)
        except WorkflowError as error:
            reports.append({"file": path, "valid": False, "problems": error.errors})
        else:
            reports.append({"file": path, "valid": True, **shape_of(spec, known[0])})
    if as_json:
        emit_json(reports)
    else:
        for report in reports:
            say_report(report)
    if not all(report["valid"] for report in reports):
        raise typer.Exit(2)


def shape_of(spec: Any, default_executor: str) -> dict[str, Any]:
    """What a valid workflow holds: its id, task counts, the longest chain, executors and queues."""
    depth: dict[str, int] = {}
    from console.workflow import topological_order

    for task in topological_order(spec):  # upstreams first
        depth[task.id] = 1 + max((depth[up] for up in task.upstream), default=0)
    executors = Counter(task.executor or default_executor for task in spec.tasks)
    queues = Counter(task.queue for task in spec.tasks)
    return {
        "dag_id": spec.dag_id,
        "tasks": len(spec.tasks),
        "roots": sum(1 for task in spec.tasks if not task.upstream),
        "longest_chain": max(depth.values(), default=0),
        "executors": dict(sorted(executors.items())),
        "queues": dict(sorted(queues.items())),
    }


def say_report(report: dict[str, Any]) -> None:
    if not report["valid"]:
        problems = report["problems"]
        say(f"{report['file']}: invalid, {len(problems)} problem{'s' * (len(problems) != 1)}:")
        prefix = f"{report['file']}: "
        for problem in problems:
            say(f"  {problem.removeprefix(prefix)}")
        return
    used = ", ".join(f"{name} ({count})" for name, count in report["executors"].items())
    say(
        f"{report['file']}: workflow {report['dag_id']} is valid: {tasks(report['tasks'])}, "
        f"{report['roots']} with no upstream, longest chain {report['longest_chain']}; "
        f"executors {used}"
    )
