"""``execconsole runs ...``: what each submitted workflow run came to, and removing old ones."""

from __future__ import annotations

from typing import Annotated

import typer

from console.cli.errors import check_limit, check_utf8, fail
from console.cli.main import GlobalOptions
from console.cli.output import emit_json, say, seconds, table

runs_app = typer.Typer(
    help="Workflow runs: how each went, cancelling one, and removing finished ones.",
    no_args_is_help=True,
)

# A hundred years: older than that is older than any store, and far larger
# ages overflow the date arithmetic.
_AGE_MAX = 36_500 * 86_400.0


def parse_age(text: str) -> float:
    """``90s``, ``30m``, ``12h``, ``7d``, ``2w``, ``1d12h`` (console/durations.py) as seconds; BadInput otherwise."""
    import math

    from console.cli.errors import BadInput, duration_option

    age = duration_option("--older-than", text, "an age", "e.g. 90s, 30m, 12h, 7d or 2w")
    if math.isnan(age) or age < 0:
        raise BadInput(f"--older-than {text!r} is not an age: give one such as 7d")
    if age > _AGE_MAX:
        raise BadInput(f"--older-than {text!r} is too long ago: at most 36500d (a hundred years)")
    return age


def _duration(started: str | None, ended: str | None, now: str) -> str:
    if started is None:
        return ""
    from datetime import datetime

    # The store writes ISO-8601 UTC times, which fromisoformat reads (as the engine does).
    return seconds(
        (datetime.fromisoformat(ended or now) - datetime.fromisoformat(started)).total_seconds()
    )


@runs_app.command("list")
def list_runs(
    ctx: typer.Context,
    dag: Annotated[str | None, typer.Option("--dag", help="Only this workflow.")] = None,
    state: Annotated[
        list[str] | None,
        typer.Option(
            "--state",
            help="Only runs in this state: queued, running, failed, success (repeatable).",
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", help="At most this many, newest first (0: all).")
    ] = 20,
    json_output: Annotated[
        bool, typer.Option("--json", help="One JSON document on stdout.")
    ] = False,
) -> None:
    """Runs, newest first: state, tasks by the state of their latest try, duration."""
    from store.runs import RUN_STATES

    for value in state or []:
        if value not in RUN_STATES:
            fail(f"--state {value!r} is not a run state: choose from {', '.join(RUN_STATES)}")
    check_limit(limit)
    check_utf8("--dag", dag, "workflow id")
    options: GlobalOptions = ctx.obj
    runtime = options.runtime()
    store = runtime.existing_store()
    if store is None:
        from console.cli.store_access import answer_without_store

        answer_without_store(runtime.config.store_path, [] if json_output else None)
        return
    found = store.runs(dag_id=dag, states=state or None, limit=limit or None)
    if json_output:
        emit_json([run.to_json() for run in found])
        return
    if not found:
        say("no runs match")
        return
    now = store.now()
    rows = [
        (
            f"{run.dag_id}/{run.run_id}",
            run.state,
            run.tasks,
            run.counts.get("success", 0),
            run.counts.get("failed", 0) + run.counts.get("upstream_failed", 0),
            run.tasks - sum(run.counts.get(s, 0) for s in ("success", "failed", "upstream_failed")),
            run.tries - run.tasks,
            run.submitted_at[:19].replace("T", " "),
            _duration(run.started_at, run.ended_at, now),
        )
        for run in found
    ]
    say(
        table(
            ["run", "state", "tasks", "ok", "failed", "left", "retries", "submitted (UTC)", "took"],
            rows,
        )
    )
    if limit and len(found) == limit:
        say(f"(showing the newest {limit}; use --limit 0 for all)")


@runs_app.command("cancel")
def cancel(
    ctx: typer.Context,
    run: Annotated[
        str,
        typer.Argument(
            help="The run: dag/run, or a dag for its newest run (see `runs list`).",
            show_default=False,
        ),
    ],
) -> None:
    """Stop a whole run: kill its running tries and fail the rest; nothing is retried.

    Tries running or handed out are killed (their whole process tree), tries
    not started fail, and the tasks after them end as upstream_failed.
    `tasks retry` brings any of them back.
    """
    from console import actions
    from console.cli.control import report_request
    from console.cli.errors import is_utf8, shown

    if not is_utf8(run):
        fail(
            f"run {shown(run)} is not UTF-8 text, so no run can match it: "
            "check how it was typed or quoted (see `execconsole runs list`)"
        )
    options: GlobalOptions = ctx.obj
    runtime = options.runtime()
    store = runtime.existing_store()
    if store is None:
        from console.cli.store_access import no_store_text

        fail(f"no run {run!r}: {no_store_text(runtime.config.store_path)}")
    report_request(store, actions.cancel_run(store, run))


@runs_app.command("clean")
def clean(
    ctx: typer.Context,
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than",
            metavar="DURATION",
            help="Remove finished runs whose last try ended longer ago than this: 90s, 30m, 12h, 7d, 2w.",
            show_default=False,
        ),
    ],
    dag: Annotated[str | None, typer.Option("--dag", help="Only runs of this workflow.")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list what would be removed.")
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="One JSON document on stdout.")
    ] = False,
) -> None:
    """Remove finished runs: their task instances, audit events and log folders.

    A run with any try still waiting or running is never removed. Operator
    requests carried out before the same age are forgotten too. The engine
    that owns the store does the removal on its next tick; with none, this
    command does it.
    """
    import pendulum

    from store import StoreOwned

    age = parse_age(older_than)
    check_utf8("--dag", dag, "workflow id")
    options: GlobalOptions = ctx.obj
    runtime = options.runtime()
    before = pendulum.now("UTC").subtract(seconds=age).to_iso8601_string()
    store = runtime.existing_store()
    if store is None:
        # Nothing was ever stored there, so nothing is finished: creating an
        # empty store only to remove nothing from it would help no one.
        from console.cli.store_access import answer_without_store

        empty = {"removed": False, "before": before, "runs": []}
        answer_without_store(runtime.config.store_path, empty if json_output else None)
        return
    found = store.finished_runs_before(before, dag_id=dag)
    if dry_run or not found:
        if json_output:
            emit_json(
                {"removed": False, "before": before, "runs": [run.to_json() for run in found]}
            )
        elif not found:
            say(f"no finished run ended before {before}: nothing to remove")
        else:
            for run in found:
                say(
                    f"would remove {run.dag_id}/{run.run_id} ({run.state}, {run.tries} task instances)"
                )
            say(
                f"{len(found)} finished runs ended before {before}; run without --dry-run to remove them"
            )
        return
    try:
        store.acquire_lease()
    except StoreOwned:
        # An engine owns the store: it carries out the removal in its own tick.
        from console.cli.control import report_request

        request_id = store.add_request("forget", {"before": before, "dag": dag})
        if json_output:
            from console import actions

            outcome = actions.wait_for(store, request_id, 10.0)
            emit_json(
                {
                    "removed": outcome is not None and outcome.status == "done",
                    "before": before,
                    "request": request_id,
                    "result": outcome.result if outcome else "the engine has not picked it up yet",
                }
            )
            return
        from console.actions import Requested

        report_request(store, Requested(request_id, "forget", []), wait=10.0)
        return
    from console.operator_requests import forgotten_text
    from store import Batch
    from store.runs import forget_logs

    try:
        batch = Batch()
        batch.forget([(run.dag_id, run.run_id) for run in found], requests_before=before)
        store.commit(batch)
    finally:
        store.release_lease()
    forget_logs(runtime.config.logs_dir, batch.forgotten)
    deleted = set(batch.forgotten)
    removed = [run for run in found if (run.dag_id, run.run_id) in deleted]
    if json_output:
        emit_json({"removed": True, "before": before, "runs": [run.to_json() for run in removed]})
    else:
        say(forgotten_text(removed, before))
