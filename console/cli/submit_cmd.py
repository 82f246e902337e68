"""``execconsole submit -- CMD [ARG...]``: one ad-hoc task."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from console.cli.errors import fail
from console.cli.main import GlobalOptions
from console.cli.output import emit_json, say


class SubmitCommand(TyperCommand):
    """``submit``, whose unknown-option error says where the task's command goes.

    ``execconsole submit ls -la`` reads ``-la`` as an option of ``submit``;
    Click's "No such option: -l" alone does not tell the operator that the
    command belongs after ``--``.
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        from typer._click.exceptions import NoSuchOption, UsageError

        given = list(args)  # the parser consumes ``args``
        try:
            return super().parse_args(ctx, args)
        except NoSuchOption as error:
            example = self._command_after_separator(ctx, given, error)
            if example is None:
                raise
            raise UsageError(
                f"{error.format_message()}; to run a command, put it after --: `{example}`", ctx
            ) from None

    def _command_after_separator(self, ctx: Any, args: list[str], error: Any) -> str | None:
        """``execconsole submit [OPTIONS] -- CMD ARG...`` as the operator meant it, or None.

        None when the unknown option looks like a misspelt option of
        ``submit`` itself (``--prioritty 5 -- true``): Click's own message,
        with its suggestion, fits that better.
        """
        import shlex

        takes_value: dict[str, bool] = {}
        for param in self.get_params(ctx):
            if param.param_type_name == "option":
                flag = getattr(param, "is_flag", False) or getattr(param, "count", False)
                for name in [*param.opts, *param.secondary_opts]:
                    takes_value[name] = not flag
        options: list[str] = []
        position = 0
        while position < len(args):
            token = args[position]
            if token == "--" or not token.startswith("-") or token == "-":
                break
            name = token.partition("=")[0]
            if name not in takes_value:
                break
            options.append(token)
            if takes_value[name] and "=" not in token and position + 1 < len(args):
                position += 1
                options.append(args[position])
            position += 1
        rest = args[position:]
        if not rest or rest[0] == "--":
            return None
        if rest[0].startswith("-") and ("--" in rest or error.possibilities):
            return None
        return " ".join([ctx.command_path, *map(shlex.quote, options), "--", shlex.join(rest)])


def register(app: typer.Typer) -> None:
    app.command(
        "submit",
        cls=SubmitCommand,
        context_settings={"allow_extra_args": True, "ignore_unknown_options": False},
    )(submit)


def submit(
    ctx: typer.Context,
    command: Annotated[
        list[str] | None,
        typer.Argument(help="The command and its arguments, after --.", show_default=False),
    ] = None,
    dag: Annotated[
        str, typer.Option("--dag", help="Workflow id to file the task under.")
    ] = "adhoc",
    task: Annotated[
        str | None, typer.Option("--task", help="Task id (default: the program's name).")
    ] = None,
    priority: Annotated[
        int,
        typer.Option("--priority", help="Higher runs first; from -2147483648 to 2147483647."),
    ] = 1,
    queue: Annotated[
        str, typer.Option("--queue", help="Queue (executors that route by queue use it).")
    ] = "default",
    executor: Annotated[
        str | None, typer.Option("--executor", help="A configured executor (default: the first).")
    ] = None,
    retries: Annotated[
        int, typer.Option("--retries", help="Further tries after a failure, 0 to 1000.")
    ] = 0,
    retry_delay: Annotated[
        str,
        typer.Option(
            "--retry-delay",
            metavar="DURATION",
            help="Wait this long before each retry: seconds, or e.g. 30s, 5m (at most a year).",
        ),
    ] = "0",
    timeout: Annotated[
        str | None,
        typer.Option(
            "--timeout",
            metavar="DURATION",
            help="Kill the try after this long: seconds, or e.g. 90s, 30m, 1h30m (at most a year).",
            show_default=False,
        ),
    ] = None,
    cwd: Annotated[
        str | None,
        typer.Option(
            "--cwd",
            help="Directory to run the command in (default: the one submit is run from).",
            show_default=False,
        ),
    ] = None,
    shell: Annotated[
        bool, typer.Option("--shell", help="Run the words as one shell command line.")
    ] = False,
    env: Annotated[
        list[str] | None,
        typer.Option(
            "--env",
            help="NAME=VALUE added to the task's environment (repeatable).",
            show_default=False,
        ),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="Wait until the task has ended, retries included; exit 0 if it succeeded, 1 if not.",
        ),
    ] = False,
    wait_timeout: Annotated[
        str | None,
        typer.Option(
            "--wait-timeout",
            metavar="DURATION",
            help="With --wait: stop waiting after this long, e.g. 90s or 10m (exit 124; the task goes on).",
            show_default=False,
        ),
    ] = None,
    json_output: Annotated[
        bool,
        typer.Option(
            "--json", help="Print the stored task (with --wait: its last try) as JSON on stdout."
        ),
    ] = False,
) -> None:
    """Submit one command as a task; the engine owning the store runs it.

    Put the command after --, e.g. `execconsole submit --priority 5 -- ./backup.sh /srv`.
    It runs in the directory submit was run from (as with at and batch), so
    relative paths such as ./backup.sh mean the same to the engine, wherever
    that was started; --cwd DIR names another directory.

    With --wait it waits for the task to end, as a script would: exit 0 if it
    succeeded, 1 if it failed, 124 if --wait-timeout passed first.
    """
    from console import actions
    from console.cli.errors import duration_option
    from console.cli.waiting import wait_and_report, wait_timeout_seconds

    options: GlobalOptions = ctx.obj
    workdir = _workdir(cwd)
    variables = _environment(env or [])
    timeout_seconds = None if timeout is None else duration_option("--timeout", timeout)
    delay_seconds = duration_option("--retry-delay", retry_delay)
    if wait_timeout is not None and not wait:
        fail("--wait-timeout only applies with --wait: add --wait, or leave it out")
    wait_seconds = wait_timeout_seconds(wait_timeout, "--wait-timeout")
    from console.cli.store_access import store_on_first_use

    runtime = options.runtime()
    # Opened once every argument is found good: a refused submit creates nothing.
    store = store_on_first_use(runtime)
    key = actions.submit_command(
        store,
        list(command or []),
        executor=runtime.default_executor if executor is None else executor,
        configured_executors=runtime.executor_names,
        dag_id=dag,
        task_id=task,
        priority=priority,
        queue=queue,
        retries=retries,
        retry_delay=delay_seconds,
        timeout=timeout_seconds,
        shell=shell,
        env=variables,
        cwd=workdir,
    )
    record = store.get(key)
    assert record is not None
    if wait:
        say(f"submitted {key}; waiting for it to end (Ctrl-C stops waiting, not the task)")
        wait_and_report(store, [record], wait_seconds, json_output)
        return
    if json_output:
        emit_json(record.to_json())
    else:
        say(f"submitted {key}")
        if store.lease_owner() is None:
            say(
                "no engine owns this store yet: `execconsole scheduler` or `execconsole console` runs it"
            )


def _environment(settings: list[str]) -> dict[str, str]:
    """``--env NAME=VALUE`` options as a mapping (the last of a name wins, as in a shell)."""
    variables: dict[str, str] = {}
    for setting in settings:
        name, separator, value = setting.partition("=")
        if not separator or not name:
            fail(f"--env {setting!r} must be NAME=VALUE, e.g. --env REGION=eu")
        if "\0" in setting:
            fail(f"--env {name} contains a NUL character")
        variables[name] = value
    return variables


def _workdir(cwd: str | None) -> str:
    """``--cwd`` as an absolute path (relative to where submit runs), or that directory itself."""
    import os

    from console.cli.errors import is_utf8, shown

    if cwd is not None:
        if not cwd.strip():
            fail("--cwd is empty: give the directory to run the command in")
        workdir = os.path.abspath(os.path.expanduser(cwd))
        if not is_utf8(workdir):
            fail(
                f"--cwd {shown(workdir)} is not UTF-8, and the store keeps only UTF-8 text: "
                "give a directory whose path is UTF-8"
            )
        return workdir
    try:
        workdir = os.getcwd()
    except FileNotFoundError:
        fail("the current directory no longer exists: cd to an existing one or give --cwd DIR")
    if not is_utf8(workdir):
        fail(
            f"the current directory {shown(workdir)} is not UTF-8, and the store keeps only "
            "UTF-8 text: give --cwd DIR with a UTF-8 path"
        )
    return workdir
