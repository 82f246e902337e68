"""``execconsole tasks ...``: list, inspect and steer task instances."""

from __future__ import annotations

import sys
import time
from typing import Annotated

import typer

from console.cli.control import report_request
from console.cli.errors import check_limit, check_utf8, fail
from console.cli.main import GlobalOptions
from console.cli.output import emit_json, say, seconds, table
from console.cli.store_access import answer_without_store, store_for_keys

tasks_app = typer.Typer(
    help="List, inspect, kill, retry and mark task instances.", no_args_is_help=True
)

KEY_HELP = (
    "Task key: dag/task[/run][#try]; a part left off means the latest "
    "(dag/task#1: try 1 of the latest run)."
)


def _keyed_store(ctx: typer.Context):  # type: ignore[no-untyped-def]
    """The store for a command naming tasks by key; a missing one is not created (every key is unknown)."""
    options: GlobalOptions = ctx.obj
    return store_for_keys(options.runtime())


@tasks_app.command("list")
def list_tasks(
    ctx: typer.Context,
    state: Annotated[
        list[str] | None, typer.Option("--state", help="Only this state (repeatable).")
    ] = None,
    dag: Annotated[str | None, typer.Option("--dag", help="Only this workflow.")] = None,
    run: Annotated[str | None, typer.Option("--run", help="Only this run.")] = None,
    limit: Annotated[
        int, typer.Option("--limit", help="At most this many, newest first (0: all).")
    ] = 500,
    latest: Annotated[
        bool,
        typer.Option(
            "--latest",
            help="Only each task's latest try (with --state: tasks whose latest try is in it).",
        ),
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="One JSON document on stdout.")
    ] = False,
) -> None:
    """Task instances (every try, or with --latest each task's latest), newest first."""
    from executors.state import TaskState

    check_limit(limit)
    states = None
    if state:
        known = {str(s) for s in TaskState}
        for value in state:
            if value not in known:
                fail(f"--state {value!r} is not a state: choose from {', '.join(sorted(known))}")
        states = state
    check_utf8("--dag", dag, "workflow id")
    check_utf8("--run", run, "run id")
    options: GlobalOptions = ctx.obj
    runtime = options.runtime()
    store = runtime.existing_store()
    if store is None:
        answer_without_store(runtime.config.store_path, [] if json_output else None)
        return
    records = store.list_tasks(
        states=states,
        dag_id=dag,
        run_id=run,
        limit=limit or None,
        newest_first=True,
        latest_only=latest,
    )
    # Said on stderr with --json too: a script must not take the newest 500 for all.
    cut_short = f"(showing the newest {limit}; use --limit 0 for all)"
    if json_output:
        emit_json([record.to_json() for record in records])
        if limit and len(records) == limit:
            say(cut_short)
        return
    if not records:
        say("no task instances match")
        return
    rows = [
        (
            str(r.key),
            r.state,
            r.executor,
            r.priority,
            r.pid or "",
            seconds(r.duration),
            r.exit_code if r.exit_code is not None else "",
            r.reason or "",
        )
        for r in records
    ]
    say(table(["key", "state", "executor", "prio", "pid", "duration", "exit", "reason"], rows))
    if limit and len(records) == limit:
        say(cut_short)


@tasks_app.command("show")
def show(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help=KEY_HELP, show_default=False)],
    json_output: Annotated[
        bool, typer.Option("--json", help="One JSON document on stdout.")
    ] = False,
) -> None:
    """Every field of one try, its other tries and its state history."""
    store = _keyed_store(ctx)
    record = store.resolve(key)
    events = list(reversed(store.events(ti_id=record.id, limit=1000)))
    tries = store.tries(record)
    if json_output:
        emit_json(
            {
                **record.to_json(),
                "tries": [
                    {"key": str(t.key), "state": str(t.state), "reason": t.reason} for t in tries
                ],
                "history": [event.to_json() for event in events],
            }
        )
        return
    data = record.to_json()
    width = max(len(name) for name in data)
    for name, value in data.items():
        say(f"{name.rjust(width)}  {value}")
    say("")
    say("tries: " + ", ".join(f"#{t.try_number} {t.state}" for t in tries))
    say("history:")
    for event in events:
        say(
            f"  {event.at}  {event.from_state or '-':>15} -> {event.to_state:<15} {event.actor:<22} {event.reason or ''}"
        )


@tasks_app.command("logs")
def logs(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help=KEY_HELP, show_default=False)],
    follow: Annotated[
        bool,
        typer.Option("--follow", "-f", help="Keep printing as the log grows, until the try ends."),
    ] = False,
    max_bytes: Annotated[
        int, typer.Option("--bytes", help="How much of the end of the log to show (0: all).")
    ] = 1_000_000,
) -> None:
    """A try's output (stdout and stderr), on stdout."""
    if max_bytes < 0:
        fail(f"--bytes must be 0 (the whole log) or more, not {max_bytes}")
    options: GlobalOptions = ctx.obj
    runtime = options.runtime()
    store = store_for_keys(runtime)
    record = store.resolve(key)
    executor_class = _executor_class(runtime, record.executor)
    if executor_class is not None and not executor_class.serve_logs:
        # Logs live elsewhere (e.g. remote workers): ask the executor for them.
        executor = runtime.build_executors().get(record.executor)
        if executor is None:
            fail(f"executor {record.executor!r} of {record.key} is not configured here")
        wanted = min(max_bytes or _EXECUTOR_LOG_MAX, _EXECUTOR_LOG_MAX)
        found = executor.get_task_log(record.key, record.log_path, wanted)
        sys.stdout.write(found.text)
        if found.truncated:
            say(f"(last {_bytes(len(found.text))} of {found.size}, from {found.source})")
        elif not found.text:
            say(f"no output ({found.source})")  # e.g. Redis unreachable, or nothing kept
        return
    _print_local_log(store, record, follow, max_bytes)


# The most asked of an executor that fetches logs itself (--bytes 0 included):
# it may read that much into memory at once.
_EXECUTOR_LOG_MAX = 1 << 30


def _bytes(count: int) -> str:
    return f"{count} byte" if count == 1 else f"{count} bytes"


def _executor_class(runtime, name: str):  # type: ignore[no-untyped-def]
    from executors.loader import load_executor_class

    for spec in runtime.executor_specs():
        if spec.name == name:
            return load_executor_class(spec)
    return None


def _print_local_log(store, record, follow: bool, max_bytes: int) -> None:  # type: ignore[no-untyped-def]
    """Print the log file; with ``follow``, keep going until the try ends and the file stops growing."""
    import os

    from console.task_wait import EngineWatch

    engine_watch = EngineWatch(store, lambda message: say(f"note: {message}"))
    position = 0
    while True:
        path = record.log_path
        size = os.path.getsize(path) if path and os.path.exists(path) else 0
        if position == 0 and max_bytes and size > max_bytes:
            position = size - max_bytes
            say(f"(showing the last {_bytes(max_bytes)} of {size})")
        if size > position:
            with open(path, "rb") as handle:
                handle.seek(position)
                chunk = handle.read(size - position)
            position = size
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
        if not follow:
            if size == 0:
                say(f"{record.key}: no output" + ("" if record.state.is_finished else " yet"))
            return
        if record.state.is_finished and size == position:
            return
        if not record.state.is_finished:
            engine_watch.check()  # as tasks wait: say why nothing may come
        time.sleep(0.2)
        record = store.get_by_id(record.id) or record


@tasks_app.command("wait")
def wait(
    ctx: typer.Context,
    keys: Annotated[list[str], typer.Argument(help=KEY_HELP, show_default=False)],
    timeout: Annotated[
        str | None,
        typer.Option(
            "--timeout",
            metavar="DURATION",
            help="Stop waiting after this long: seconds, or e.g. 90s, 10m (exit 124; the tasks go on).",
            show_default=False,
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Each task's last try as JSON on stdout.")
    ] = False,
) -> None:
    """Wait until tasks have ended, retries included: exit 0 if all succeeded, 1 if any did not.

    A key names a task of a run; its latest try is followed through any retries
    (a try that failed into its retry policy has not ended the task). 124 means
    --timeout passed first, 130 Ctrl-C; in both the tasks go on.
    """
    from console import actions
    from console.cli.waiting import wait_and_report, wait_timeout_seconds

    seconds = wait_timeout_seconds(timeout, "--timeout")
    store = _keyed_store(ctx)
    # One wait a task instance: two keys naming tries of one task wait for it once.
    each = {record.key.instance: record for record in actions.resolve_all(store, keys)}
    wait_and_report(store, list(each.values()), seconds, json_output)


@tasks_app.command("kill")
def kill(
    ctx: typer.Context,
    keys: Annotated[list[str], typer.Argument(help=KEY_HELP, show_default=False)],
) -> None:
    """Kill running tries (their whole process tree) or cancel waiting ones; no retry follows."""
    from console import actions

    store = _keyed_store(ctx)
    report_request(store, actions.kill(store, keys))


@tasks_app.command("retry")
def retry(
    ctx: typer.Context,
    keys: Annotated[list[str], typer.Argument(help=KEY_HELP, show_default=False)],
    downstream: Annotated[
        bool,
        typer.Option(
            "--downstream",
            help=(
                "Also clear every task downstream of each one, in its run (Airflow's clear with "
                "downstream): finished ones get a new try, running ones are killed and run again "
                "once ended, ones not started wait again; all run after their upstreams."
            ),
        ),
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="One JSON document on stdout.")
    ] = False,
) -> None:
    """Run finished tasks again as a new try (tasks that failed because of them too).

    With --downstream (Airflow's clear with downstream), every task below a
    given one in its run runs again after it, in dependency order, each once,
    tasks that succeeded included: a finished task gets a new try; a running
    one is killed, as Airflow's clear does, and its new try follows once it
    has ended; one handed to an executor but not started is taken back, and
    one not started waits for its upstreams again.
    """
    from console import actions

    store = _keyed_store(ctx)
    requested = actions.retry(store, keys, downstream=downstream)
    if json_output:
        _report_retry_json(store, requested, downstream)
        return
    report_request(store, requested, describe=lambda outcome: _naming_new_tries(store, outcome))


def _new_tries(store, outcome) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The tries a retry carried out made: by the key of the try given, the new try's key.

    A try waiting out its retry delay is started, not followed by a new one:
    it is left out, as is a task below that only waits for its upstreams again.
    """
    details = outcome.payload.get("outcome") or {}
    given = list(details.get("retried") or [])
    given += [
        entry["key"] for entry in details.get("cleared") or [] if entry.get("action") == "new_try"
    ]
    found: dict[str, str] = {}
    for key in given:
        record = store.resolve(key)
        latest = store.tries(record)[-1]
        if latest.try_number > record.try_number:
            found[key] = str(latest.key)
    return found


def _naming_new_tries(store, outcome) -> str:  # type: ignore[no-untyped-def]
    """The engine's account of a retry, naming each new try instead of the try it follows."""
    import re

    text = outcome.result or "done"
    for old, new in _new_tries(store, outcome).items():
        text = re.sub(re.escape(old) + r"(?![0-9])", new, text)
    return text


def _report_retry_json(store, requested, downstream: bool, wait: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    """The retry's outcome as one JSON document: what was retried and what was cleared.

    ``status`` is ``done``, or ``stored`` (no engine: the next one carries it
    out) or ``pending`` (the engine has not picked it up yet); then
    ``retried`` names the tries asked for and ``cleared`` is null. Once
    done, ``new_tries`` maps the key of each try given (or cleared with a
    new try) to the new try's key. A rejected request is an error, as
    without --json.
    """
    from console import actions

    document = {
        "request": requested.request_id,
        "downstream": downstream,
        "status": "stored",
        "result": None,
        "retried": requested.keys,
        "cleared": None,
    }
    if store.lease_owner() is not None:
        outcome = actions.wait_for(store, requested.request_id, wait)
        if outcome is None:
            document["status"] = "pending"
        elif outcome.status == "rejected":
            fail(outcome.result or "rejected by the engine")
        else:
            details = outcome.payload.get("outcome") or {}
            document.update(
                status="done",
                result=outcome.result,
                retried=details.get("retried", requested.keys),
                cleared=details.get("cleared", []),
                new_tries=_new_tries(store, outcome),
            )
    emit_json(document)


@tasks_app.command("mark")
def mark(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help=KEY_HELP, show_default=False)],
    state: Annotated[str, typer.Option("--state", help="success or failed.")],
) -> None:
    """Set a task that is not running to success or failed."""
    from console import actions

    store = _keyed_store(ctx)
    if state in ("success", "failed"):  # any other state is refused by actions.mark, first
        record = store.resolve(key)
        same = actions.already_marked(record.key, record.state, state)
        if same:
            say(same)  # as the engine would find it: no request, exit 0
            return
    report_request(store, actions.mark(store, [key], state))


# A negative number is a value here, not an unknown option.
@tasks_app.command("priority", context_settings={"ignore_unknown_options": True})
def priority(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help=KEY_HELP, show_default=False)],
    value: Annotated[
        int, typer.Argument(help="New priority; higher runs first.", show_default=False)
    ],
) -> None:
    """Change the priority of a waiting task."""
    from console import actions

    store = _keyed_store(ctx)
    report_request(store, actions.set_priority(store, [key], value))
