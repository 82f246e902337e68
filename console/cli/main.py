"""``execconsole``: the entry point and its global options.

Executors vend their own command groups (``execconsole celery ...``); they
are mounted here lazily: listed from the configured executors' classes, and
their modules imported only when one of their commands runs (or for --help).
"""

from __future__ import annotations

import atexit
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from console.cli.errors import EXIT_BAD_INPUT, operator_errors

# The most tries an executor may run at once, as `execconsole parallelism N`
# (console/actions.py) and [core] parallelism (console/config.py) allow.
PARALLELISM_MAX = 2**31 - 1


@dataclass
class GlobalOptions:
    home: Path | None = None
    store: Path | None = None

    def runtime(self, *, executor: str | None = None, parallelism: int | None = None) -> Any:
        """The config and the command line's choices, checked before any command writes.

        The executor list is parsed here too (an unknown name, or a module
        path that does not import, is refused), so that a command that
        creates the store or the home's folders refuses a bad config first.
        """
        from console.runtime import Runtime

        if parallelism is not None and parallelism > PARALLELISM_MAX:
            from console.cli.errors import BadInput

            # As `execconsole parallelism N` and [core] parallelism are bounded.
            raise BadInput(
                f"--parallelism must be at most {PARALLELISM_MAX}, not {parallelism}; "
                "0 means no limit"
            )
        try:
            runtime = Runtime.load(
                home=self.home, store=self.store, executor=executor, parallelism=parallelism
            )
        except ValueError as error:
            # Runtime.load's own checks (e.g. negative --parallelism) are operator errors.
            if type(error) is ValueError:
                from console.cli.errors import BadInput

                raise BadInput(str(error)) from None
            raise
        _check_executor_list(runtime)
        _check_builtin_executor_options(runtime)
        return runtime


def _check_builtin_executor_options(runtime: Any) -> None:
    """Refuse a built-in executor's option the engine would refuse (``[executor.local]``).

    Checked for every command, not only when an engine builds its
    executors, so that ``submit`` or ``config show`` never accept a config
    the engine would not run with; the executor's module is not imported
    (``executors.loader.BUILTIN_OPTIONS``). Skipped when the name belongs to
    another class here (an alias such as ``local:mypkg:Executor``): the
    engine checks that one's options against its own class.
    """
    config = runtime.config
    from executors.loader import BUILTIN_EXECUTORS, BUILTIN_OPTIONS, check_builtin_options

    for name in BUILTIN_OPTIONS:
        if name not in config.executor_options:
            continue
        paths = {spec.name: spec.import_path for spec in runtime.executor_specs()}
        if paths.get(name, BUILTIN_EXECUTORS[name]) != BUILTIN_EXECUTORS[name]:
            continue
        check_builtin_options(name, config.options_for(name))


def _check_executor_list(runtime: Any) -> None:
    """Parse the executors the command would use; a config's bad entry names where it was set."""
    from executors.loader import ExecutorConfigError

    try:
        runtime.executor_specs()
    except ExecutorConfigError as error:
        if runtime.executor_override is not None:
            raise  # --executor: the message names the entry as typed
        from console.config import ConfigError

        config = runtime.config
        where = config.origin_text("core.executor") or str(config.config_file)
        fix = "; fix or unset the variable" if where.startswith("environment") else ""
        raise ConfigError(f"{where}: [core] executor: {error}{fix}") from None


# Built-in commands, in the order ``--help`` lists them: name -> (module, Typer).
# A module naming a Typer is a command group; any other module's ``register(app)``
# adds plain commands. Each is imported and built only when it is used, so
# ``execconsole tasks list`` never pays for building ``run``, ``submit`` ...
BUILTIN_COMMANDS: dict[str, tuple[str, str | None]] = {
    "run": ("console.cli.run_cmd", None),
    "check": ("console.cli.check_cmd", None),
    "scheduler": ("console.cli.run_cmd", None),
    "submit": ("console.cli.submit_cmd", None),
    "pause": ("console.cli.control", None),
    "resume": ("console.cli.control", None),
    "parallelism": ("console.cli.control", None),
    "console": ("console.cli.console_cmd", None),
    "tasks": ("console.cli.tasks_cmd", "tasks_app"),
    "runs": ("console.cli.runs_cmd", "runs_app"),
    "executors": ("console.cli.executors_cmd", "executors_app"),
    "config": ("console.cli.config_cmd", "config_app"),
}


def _holder() -> typer.Typer:
    """A Typer that builds commands with the top-level app's settings."""
    return typer.Typer(rich_markup_mode=None, add_completion=False, pretty_exceptions_enable=False)


def build_builtin(name: str) -> Any:
    """The Click command for built-in command ``name`` (imported on demand)."""
    import importlib

    module_name, attribute = BUILTIN_COMMANDS[name]
    module = importlib.import_module(module_name)
    holder = _holder()
    if attribute is not None:
        holder.add_typer(getattr(module, attribute), name=name)
    else:
        module.register(holder)
    built = typer.main.get_command(holder)
    command = built.commands[name] if isinstance(built, TyperGroup) else built
    command.name = name
    return command


class ExecutorCommandGroup(TyperGroup):
    """The top-level group: built-in commands plus groups vended by configured executors."""

    def _vended(self, *, fresh: bool = False) -> dict[str, Any]:
        """Groups vended by the configured executors, by name.

        Remembered between runs (see ``vended_cache``) unless ``fresh``: finding
        them imports every configured executor class.
        """
        cached = getattr(self, "_vended_groups", None)
        if cached is not None and not (fresh and getattr(self, "_vended_from_cache", False)):
            return cached
        from console.cli import vended_cache

        remembered = None if fresh else vended_cache.load()
        if remembered is not None:
            self._vended_groups, self._vended_from_cache = remembered, True
            return remembered
        groups: dict[str, Any] = {}
        before = set(sys.modules)
        try:
            from console.runtime import Runtime

            runtime = Runtime.load()
            from executors.loader import load_executor_class

            classes = [load_executor_class(spec) for spec in runtime.executor_specs()]
            for cls in classes:
                for group in cls.cli_groups():
                    groups.setdefault(group.name, group)
        except operator_errors():
            # A broken config must not break `execconsole --help`; commands that
            # need the config report the problem themselves.
            pass
        else:
            imported = [sys.modules[name] for name in set(sys.modules) - before]
            for name in ("console.config", "console.runtime", "executors.loader"):
                imported.append(sys.modules[name])
            vended_cache.save(groups, imported + vended_cache.modules_behind(classes))
        self._vended_groups, self._vended_from_cache = groups, False
        return groups

    def main(self, *args: Any, **kwargs: Any) -> Any:
        # Before Click parses anything: plain parameters skip Typer's pydantic coercion.
        from console.cli.coercion import install

        install()
        return super().main(*args, **kwargs)

    def list_commands(self, ctx: Any) -> list[str]:
        known = [
            *BUILTIN_COMMANDS,
            *(n for n in super().list_commands(ctx) if n not in BUILTIN_COMMANDS),
        ]
        return [*known, *sorted(set(self._vended()) - set(known))]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        if cmd_name in BUILTIN_COMMANDS:
            command = self.commands[cmd_name] = build_builtin(cmd_name)
            return command
        group = self._vended().get(cmd_name)
        if group is None:
            # Not among the remembered groups: look again before saying no.
            group = self._vended(fresh=True).get(cmd_name)
        if group is None:
            _refuse_unconfigured_executor_group(cmd_name)
            return None
        vended = group.load()
        command = typer.main.get_command(vended)
        command.name = cmd_name
        if not command.help:
            command.help = group.help
        self.commands[cmd_name] = command
        return command


def _refuse_unconfigured_executor_group(name: str) -> None:
    """Say why an executor's own commands are missing: that executor is not configured here.

    Executors vend their command groups only when configured, so ``execconsole
    celery inspect`` on a home that runs only ``local`` would otherwise read as
    a typo ("No such command").
    """
    from executors.loader import available_executors

    if name not in available_executors():
        return
    try:
        from console.runtime import Runtime

        configured = Runtime.load().executor_names
    except operator_errors():
        return  # a broken config: the commands that need it say what is wrong
    if name in configured:
        return  # configured, and it vends no such group
    from typer import _click

    wanted = ",".join([*configured, name])
    raise _click.exceptions.UsageError(
        f"'{name}' commands come with the {name} executor, which is not configured here: "
        f'set executor = "{wanted}" in [core] of config.toml, or EXECCONSOLE__CORE__EXECUTOR={wanted}'
    )


app = typer.Typer(
    cls=ExecutorCommandGroup,
    rich_markup_mode=None,
    help="Run commands as tasks through pluggable executors, and watch and steer them live.",
    no_args_is_help=False,
    invoke_without_command=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def main_options(
    ctx: typer.Context,
    store: Annotated[
        Path | None,
        typer.Option("--store", help="The store file (default: $EXECCONSOLE_HOME/execconsole.db)."),
    ] = None,
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            help="Where store, logs and config live (default: $EXECCONSOLE_HOME or ~/.execconsole).",
        ),
    ] = None,
) -> None:
    """Run commands as tasks through pluggable executors, and watch and steer them live."""
    ctx.obj = GlobalOptions(home=home, store=store)
    if ctx.invoked_subcommand is None:
        from console.cli.console_cmd import open_console

        open_console(ctx.obj)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: operator errors become one line and exit code 2."""
    try:
        # Without standalone mode, Click returns a typer.Exit's code instead of raising.
        outcome = app(args=argv, standalone_mode=False, prog_name="execconsole")
    except typer.Exit as done:
        return int(done.exit_code or 0)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        # The operator-facing error classes are imported only on this path, so
        # a command that succeeds never pays for importing all of them.
        if isinstance(error, operator_errors()):
            print(f"error: {error}", file=sys.stderr)
            return EXIT_BAD_INPUT
        usage = _usage_error(error)
        if usage is None:
            raise
        return usage
    return outcome if isinstance(outcome, int) else 0


def console_script() -> NoReturn:
    """The ``execconsole`` command: ``main()``, then an exit that skips tearing the interpreter down.

    Once a command is done, Python's own exit still frees every object and
    module one by one: 20 ms of a 150 ms ``tasks list`` and 80-100 ms after a
    10,000-task ``run`` (measured), time the operator waits for and nothing
    needs. So the process ends with ``os._exit`` instead, from an exit hook
    registered before any of ours: every hook registered later (the
    executors' shutdown of their helper processes, logging's flush) has run
    by then (stores close their connections from one: store/store.py),
    non-daemon threads were joined before any hook, and the standard streams
    are flushed here.
    """
    code = 1  # an exception escaping main() is a bug: Python prints it and exits 1

    def exit_without_teardown() -> None:
        status = code
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                # Python's own exit reports a failed flush with status 120.
                status = status or 120
        os._exit(status)

    atexit.register(exit_without_teardown)
    try:
        code = main()
    except SystemExit as stop:  # as Python maps it: None is 0, a message is 1
        code = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
        raise
    sys.exit(code)


def _usage_error(error: Exception) -> int | None:
    """Typer/Click usage errors (unknown option, missing argument): one line, exit 2."""
    from typer import _click

    if isinstance(error, _click.exceptions.ClickException):
        message = error.format_message()
        context = getattr(error, "ctx", None)
        hint = f" (see `{context.command_path} --help`)" if context is not None else ""
        print(f"error: {message}{hint}", file=sys.stderr)
        return error.exit_code if error.exit_code else EXIT_BAD_INPUT
    return None
