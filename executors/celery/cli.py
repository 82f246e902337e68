"""``execconsole celery ...``: start, inspect and stop Celery workers for the celery executor.

Vended through ``CeleryExecutor.cli_groups()``; also runnable on its own as
``python -m executors.celery [--home PATH]``. Settings are resolved as the
engine resolves them: the home from ``--home``, else ``EXECCONSOLE_HOME``
(default ``~/.execconsole``); ``[celery]`` of its ``config.toml``; then
``EXECCONSOLE__CELERY__*`` environment variables, which win over the file.

Under ``execconsole`` the caller hands the commands what they need through
the root context's object (the console's global options, holding --home and
--store): its ``runtime()`` loads the config the product's own way, so a
worker, ``celery inspect`` and the engine on one machine never disagree.
Nothing here imports the console.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NoReturn

import redis
import typer

from executors.celery.settings import (
    CelerySettings,
    SettingsError,
    config_file_options,
    unreachable_message,
)


def _command_group() -> typer.Typer:
    """The celery command group, as ``execconsole celery`` and ``python -m executors.celery``."""
    return typer.Typer(
        name="celery",
        help="Start, inspect and stop Celery workers for the celery executor.",
        no_args_is_help=True,
        add_completion=False,
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )


app = _command_group()

_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.:\-]+$")


def _fail(message: str) -> NoReturn:
    typer.echo(f"execconsole celery: {message}", err=True)
    raise typer.Exit(2)


@dataclass(frozen=True)
class StandaloneOptions:
    """The root object of ``python -m executors.celery``: its --home, if given."""

    home: Path | None = None


def _settings(ctx: typer.Context) -> CelerySettings:
    """The celery executor's settings exactly as the engine builds them.

    Under ``execconsole`` the root context's object (the console's global
    options: --home, --store) loads the config the product's own way and
    hands over the celery executor's options, environment included. Run on
    its own, the home's ``config.toml`` is read here, the environment
    winning over it (executors never import the console).
    """
    root: Any = ctx.find_root().obj
    try:
        if hasattr(root, "runtime"):
            options = root.runtime().config.options_for("celery")
        else:
            options = config_file_options(home=getattr(root, "home", None))
        return CelerySettings.load(options)
    except (ValueError, SettingsError) as error:  # the console's ConfigError is a ValueError
        _fail(str(error))


def _check_redis(settings: CelerySettings) -> None:
    """Fail with one line unless both the broker's and the result backend's Redis answer."""
    for url in dict.fromkeys((settings.broker_url, settings.backend_url)):
        client = redis.Redis.from_url(url, socket_connect_timeout=settings.connect_timeout)
        try:
            client.ping()
        except redis.RedisError as error:
            _fail(unreachable_message(settings, url, error))
        finally:
            client.close()


def parse_queues(text: str) -> list[str]:
    """``"a,b"`` -> ``["a", "b"]``; exits 2 naming the first bad name."""
    names = [name.strip() for name in text.split(",")]
    for name in names:
        if not _QUEUE_NAME.match(name):
            _fail(
                f"bad queue name {name!r} in --queues {text!r}: use letters, digits and _ . : - "
                "separated by commas"
            )
    return list(dict.fromkeys(names))


def worker(
    ctx: typer.Context,
    queues: str = typer.Option(
        "", "--queues", "-Q", help="Comma-separated queues to consume (default: the default queue)."
    ),
    concurrency: int = typer.Option(2, "--concurrency", "-c", min=1, help="Pool processes."),
    hostname: str = typer.Option(
        "execconsole@%h", "--hostname", "-n", help="Node name; %h is this machine's name."
    ),
    loglevel: str = typer.Option("INFO", "--loglevel", "-l", help="DEBUG, INFO, WARNING or ERROR."),
) -> None:
    """Run a Celery worker (prefork pool) that executes tries sent by the celery executor."""
    settings = _settings(ctx)
    names = parse_queues(queues or settings.default_queue)
    if loglevel.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        _fail(f"bad --loglevel {loglevel!r}: use DEBUG, INFO, WARNING or ERROR")
    _check_redis(settings)

    from celery.utils.nodenames import default_nodename, host_format

    from executors.celery.app import make_app

    celery_app = make_app(settings, role="worker")
    celery_worker = celery_app.Worker(
        hostname=host_format(default_nodename(hostname)),
        pool_cls="prefork",
        concurrency=concurrency,
        loglevel=loglevel.upper(),
        queues=names,
        # Mingle and gossip share revokes and clocks between workers; the
        # claim in Redis already keeps revoked tries from starting.
        without_mingle=True,
        without_gossip=True,
    )
    celery_worker.start()
    raise typer.Exit(celery_worker.exitcode or 0)


def inspect(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """Show workers online (pool, active, processed, queues) and queue lengths.

    Queues with messages waiting that no worker consumes are listed too, marked,
    even if no execconsole setting names them: that is work nobody will take.
    """
    from executors.celery.cluster import NO_CONSUMER

    settings = _settings(ctx)
    _check_redis(settings)
    # One poll, so finding every queue in Redis (a SCAN) is affordable here.
    cluster, celery_app = _inspector(settings, discover_queues=True)
    try:
        snapshot = cluster.poll()
    finally:
        celery_app.close()
    if not snapshot.reachable:
        _fail(snapshot.message)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "broker": settings.broker_url,
                    "workers": [asdict(row) for row in snapshot.workers],
                    "queues": [
                        {
                            **asdict(row),
                            "unconsumed": row.unconsumed,
                            "warning": NO_CONSUMER if row.unconsumed else None,
                        }
                        for row in snapshot.queues
                    ],
                },
                indent=2,
            )
        )
        return
    typer.echo(f"broker {settings.broker_url}: reachable")
    if not snapshot.workers:
        typer.echo("no workers answered")
    else:
        typer.echo(f"{'WORKER':<32} {'POOL':>4} {'ACTIVE':>6} {'PROCESSED':>9}  QUEUES")
        for w in snapshot.workers:
            typer.echo(
                f"{w.hostname:<32} {_n(w.pool):>4} {_n(w.active):>6} {_n(w.processed):>9}  "
                f"{','.join(w.queues)}"
            )
    typer.echo(f"{'QUEUE':<32} {'WAITING':>7}  CONSUMERS")
    for q in snapshot.queues:
        consumers = ",".join(q.consumers) or "-"
        mark = f"  <- {NO_CONSUMER}" if q.unconsumed else ""
        typer.echo(f"{q.name:<32} {_n(q.waiting):>7}  {consumers}{mark}")
    stranded = [q.name for q in snapshot.queues if q.unconsumed]
    if stranded:
        typer.echo(
            f"warning: messages wait in {', '.join(stranded)} and no worker that answered "
            f"consumes {'it' if len(stranded) == 1 else 'them'}: start one with "
            f"--queues {','.join(stranded)}, or check that workers answer (inspect_timeout)"
        )


def stop(
    ctx: typer.Context,
    hostname: list[str] = typer.Option(
        [], "--hostname", "-n", help="Stop only this worker (repeatable); default: all."
    ),
) -> None:
    """Ask workers for a warm shutdown: they finish their running tries, then exit."""
    settings = _settings(ctx)
    _check_redis(settings)
    cluster, celery_app = _inspector(settings)
    from celery.utils.nodenames import default_nodename, host_format

    # Named as `worker --hostname` names them: "name@%h" is this machine's.
    wanted = list(dict.fromkeys(host_format(default_nodename(h)) for h in hostname))
    try:
        online = [w.hostname for w in cluster.poll().workers]
        missing = [h for h in wanted if h not in online]
        if missing:
            # Stop none: the operator meant another set of workers than what runs.
            _fail(
                f"no worker {', '.join(missing)} answered; nothing stopped; workers online: "
                f"{', '.join(online) or 'none'}"
            )
        targets = wanted or online
        if not targets:
            typer.echo("no Celery workers answered; nothing to stop")
            return
        cluster.shutdown(targets)
    finally:
        celery_app.close()
    typer.echo(f"asked {len(targets)} worker(s) to stop: {', '.join(targets)}")


def _inspector(settings: CelerySettings, *, discover_queues: bool = False):  # type: ignore[no-untyped-def]
    from executors.celery.app import make_app, redis_client
    from executors.celery.cluster import ClusterInspector

    celery_app = make_app(settings, role="client")
    broker = redis_client(settings, settings.broker_url, "execconsole-cli")
    cluster = ClusterInspector(
        celery_app,
        broker,
        interval=settings.inspect_interval,
        timeout=settings.inspect_timeout,
        known_queues=lambda: [settings.default_queue],
        discover_queues=discover_queues,
    )
    return cluster, celery_app


def _n(value: int | None) -> str:
    return "?" if value is None else str(value)


standalone = _command_group()
"""``python -m executors.celery``: the same commands, with the --home that ``execconsole`` has."""


@standalone.callback()
def _standalone_options(
    ctx: typer.Context,
    home: Path | None = typer.Option(
        None,
        "--home",
        help="Where config.toml lives (default: $EXECCONSOLE_HOME or ~/.execconsole).",
    ),
) -> None:
    ctx.obj = StandaloneOptions(home)


for _command in (worker, inspect, stop):
    app.command()(_command)
    standalone.command()(_command)
