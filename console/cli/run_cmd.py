"""``execconsole run`` and ``execconsole scheduler``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple

import typer

from console.cli.main import GlobalOptions
from console.cli.output import say, tasks

if TYPE_CHECKING:
    from console.run_tally import RunTally


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("scheduler")(scheduler)


def run(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The workflow file (TOML).", show_default=False)],
    headless: Annotated[
        bool, typer.Option("--headless", help="No console: a progress bar on stderr.")
    ] = False,
    executor: Annotated[
        str | None,
        typer.Option("--executor", help="Executor(s) to use, e.g. local or local,celery."),
    ] = None,
    parallelism: Annotated[
        int | None, typer.Option("--parallelism", help="Tries per executor at once (0: no limit).")
    ] = None,
    run_id: Annotated[
        str | None, typer.Option("--run-id", help="Run id (default: manual__<time>_<random>).")
    ] = None,
) -> None:
    """Submit a workflow and run it: in the console, or headless with a progress bar.

    Headless, the exit code is 0 when every task succeeded and 1 when any failed.
    """
    options: GlobalOptions = ctx.obj
    runtime = options.runtime(executor=executor, parallelism=parallelism)
    from console.cli.console_cmd import console_available, open_console

    in_console = not headless and console_available()
    if in_console and not terminal_attached():
        say("not a terminal: running headless (add --headless to say so)")
        in_console = False
    if not in_console:
        runtime.warm_up_executors()  # this process hosts the engine: prepare while we parse
    from console.collection_pause import collection_paused
    from console.workflow import load_workflow

    with collection_paused():  # a burst of long-lived objects: see console/collection_pause.py
        spec = load_workflow(file, known_executors=runtime.executor_names)
        if not in_console:
            submitted = submit_headless(runtime, spec, run_id)
    if in_console:
        open_console(
            options, executor=executor, parallelism=parallelism, workflow=spec, run_id=run_id
        )
        return
    raise typer.Exit(drive_headless(runtime, submitted))


def terminal_attached() -> bool:
    """Whether the console could draw here: standard input and output are a terminal."""
    import sys

    return sys.stdin.isatty() and sys.stdout.isatty()


class SubmittedRun(NamedTuple):
    """A run stored by ``submit_headless``, and the engine that will drive it (None: another does)."""

    store: Any
    dag_id: str
    run_id: str
    task_count: int
    engine: Any
    owner: dict[str, Any] | None


def submit_headless(runtime, spec, run_id: str | None) -> SubmittedRun:  # type: ignore[no-untyped-def]
    """Store ``spec`` as a new run; build the engine first if no other engine owns the store."""
    from console import actions

    store = runtime.store()
    if run_id is not None:
        from executors.task_key import ID_RULE, is_valid_id

        if not is_valid_id(run_id):
            from console.cli.errors import BadInput

            raise BadInput(f"--run-id {run_id!r} is not a valid id; use {ID_RULE}")
    owner = store.lease_owner()
    engine = None
    if owner is None:
        # Build and start the engine before anything is written: a bad executor
        # option, or an executor that cannot start (a Redis nobody answers at),
        # must leave the store as it was.
        engine = take_over_engine(runtime)
        if engine is None:  # another run's engine started first: follow it
            owner = store.lease_owner()
    try:
        run_id, keys = actions.submit_workflow(
            store, spec, default_executor=runtime.default_executor, run_id=run_id
        )
    except BaseException:
        if engine is not None:
            # Leave whatever it adopted from an earlier engine running, for the next one.
            engine.shutdown("detach")
        raise
    say(f"submitted {spec.dag_id}/{run_id}: {tasks(len(keys))}")
    return SubmittedRun(store, spec.dag_id, run_id, len(keys), engine, owner)


def drive_headless(runtime, run: SubmittedRun) -> int:  # type: ignore[no-untyped-def]
    """Host the engine (or follow the one that owns the store) until ``run`` ends.

    Returns 0 if every task succeeded, else 1 (130 if the operator stopped following).
    """
    from console.progress import ProgressBar

    store = run.store
    bar = ProgressBar(run.task_count, label=f"{run.dag_id} ")
    watch = RunWatch(store, run.dag_id, run.run_id, bar)

    engine = run.engine
    if engine is not None:
        watch.track(submitted=run.task_count)  # just stored, and the engine has not ticked since
    elif run.owner is not None:
        try:
            engine = follow_until_finished_or_orphaned(runtime, watch, bar, run.owner)
        except KeyboardInterrupt:
            say("stopped following; the engine goes on running the workflow")
            return 130
    if engine is not None:
        from console.headless import host_engine

        if run.engine is None:
            watch.track()  # taken over from an engine that stopped: count once, then follow
        host_engine(
            runtime,
            until=watch.finished_with_others,
            on_tick=watch.on_tick,
            engine=engine,
            announce=lambda message: say(f"note: {message}"),
        )
    watch.untrack()
    final = watch.counts()
    bar.close(final)
    code = report_outcome(store, run.dag_id, run.run_id, final, run.task_count)
    if engine is not None:
        _say_what_is_left_unhosted(store, (run.dag_id, run.run_id))
    return code


def _say_what_is_left_unhosted(store, own: tuple[str, str]) -> None:  # type: ignore[no-untyped-def]
    """Name the runs this engine leaves unfinished with no engine to carry them on.

    An engine started by ``run`` stops once its own run is over; another run
    on the store (one whose own ``run`` process was killed) would then wait,
    unseen, for the next engine.
    """
    if store.lease_owner() is not None or not store.unfinished_count():
        return  # another engine has the store, or nothing waits
    left = [
        summary
        for summary in store.runs(states=["running", "queued"])
        if not summary.finished and (summary.dag_id, summary.run_id) != own
    ]
    if not left:
        return
    named = ", ".join(f"{summary.dag_id}/{summary.run_id}" for summary in left[:3])
    more = f" and {len(left) - 3} more" if len(left) > 3 else ""
    say(
        f"note: {named}{more} not over and no engine runs this store now: "
        "`execconsole scheduler` carries on"
    )


def take_over_engine(runtime):  # type: ignore[no-untyped-def]
    """Build and start an engine on the store, or None if another engine holds it first."""
    from console.headless import start_engine
    from store import StoreOwned

    engine = runtime.build_engine()
    try:
        start_engine(engine)
    except StoreOwned:
        return None
    return engine


def follow_until_finished_or_orphaned(runtime, watch, bar, owner):  # type: ignore[no-untyped-def]
    """Follow the engine that owns the store until the run ends; None then.

    The owner may stop before this run has ended: a ``run --headless`` that
    started first stops once its own run is over, whatever others submitted
    meanwhile. Then this process takes the store over and returns its engine,
    to host until the run ends (another follower may win the lease first:
    then that one is followed).
    """
    store = watch.store
    say(f"engine pid {owner['pid']} on {owner['hostname']} owns this store; following its progress")
    while not watch.finished():
        bar.update(watch.counts())
        time.sleep(0.2)
        current = store.lease_owner()
        if current is None:
            if watch.finished():
                break
            engine = take_over_engine(runtime)
            if engine is not None:
                say(
                    f"the engine (pid {owner['pid']}) stopped before this run ended: "
                    "this process runs the engine now"
                )
                return engine
            current = store.lease_owner()
        if current is not None and current["pid"] != owner["pid"]:
            owner = current
            say(
                f"engine pid {owner['pid']} on {owner['hostname']} owns this store now; following it"
            )
    return None


class RunWatch:
    """What ``run --headless`` asks while the engine runs: is the run over, how far is it.

    Both questions are SQL counts over the run's rows, so their cost grows with
    the run. They are asked often (every engine check, ~10 times a second), so:

    - ``finished`` first looks at the engine's own in-flight tries: while any
      try of the run is handed out, the run cannot be over, and no query runs;
    - while this process hosts the engine (``track``), the progress comes from
      a ``RunTally`` fed by the engine's commits, and the run's rows are
      counted again only when the tally cannot follow a change (a failure's
      cascade, an operator's request) or as a check every ``CHECK_EVERY``
      seconds;
    - every count is paced: at the bar's pace at most (10 Hz on a terminal,
      every 2.5 s otherwise), and never more often than ``BUDGET`` times the
      time the last count took, so counting stays under ~5% of the engine's
      thread however large the run.
    """

    BUDGET = 20.0  # run a count at most once per this many times its own cost
    CHECK_EVERY = 30.0  # seconds between counts that only check a tally nothing made stale

    def __init__(self, store, dag_id: str, run_id: str, bar) -> None:  # type: ignore[no-untyped-def]
        self.store = store
        self.dag_id = dag_id
        self.run_id = run_id
        self.bar = bar
        # Off a terminal the bar prints a line every 5 s: count twice as often as that.
        self.interval = 0.1 if bar.interactive else 2.5
        self._next_update = 0.0
        self._next_count = 0.0
        self._next_check = 0.0
        self._tally: RunTally | None = None
        self._tally_checked = 0.0

    def counts(self) -> dict[str, int]:
        # By each task's latest try: a retried task is counted once, not once a try.
        return self.store.run_progress(self.dag_id, self.run_id)

    def track(self, submitted: int | None = None) -> None:
        """Follow the run through this process's engine's commits, from now on.

        ``submitted``: the run was stored just now with that many tasks, all
        scheduled, and the engine has not ticked since: the tally starts from
        that without a count.
        """
        from console.run_tally import RunTally

        counts = {"scheduled": submitted} if submitted is not None else self.counts()
        self._tally = RunTally(self.dag_id, self.run_id, counts)
        self._tally_checked = time.monotonic()
        self.store.commit_listeners.append(self._tally.follow)

    def untrack(self) -> None:
        if self._tally is not None:
            self.store.commit_listeners.remove(self._tally.follow)
            self._tally = None

    def finished(self, engine: object = None) -> bool:
        in_flight = getattr(engine, "in_flight", None)
        if in_flight and any(
            key.run_id == self.run_id and key.dag_id == self.dag_id for key in in_flight
        ):
            return False
        now = time.monotonic()
        if engine is not None and now < self._next_check:
            return False
        unfinished = self.store.unfinished_count(dag_id=self.dag_id, run_id=self.run_id)
        self._next_check = now + self.BUDGET * (time.monotonic() - now)
        return unfinished == 0

    def finished_with_others(self, engine: Any) -> bool:
        """``finished``, and the hosting engine has no try of another run left running.

        Other processes may submit to the store this engine owns (``submit``
        tells them its engine runs their task). Stopping the engine the moment
        this run ends would kill their tries after the shutdown grace; instead
        nothing new starts, and what runs is let finish and recorded.
        """
        if not self.finished(engine):
            return False
        if not engine.in_flight:
            return True
        if not engine.draining:
            engine.drain()  # tries handed out but not started stay scheduled for the next engine
            count = len(engine.in_flight)
            say(
                f"{self.dag_id}/{self.run_id} has ended; waiting for {'the' if count == 1 else count} "
                f"running {'try' if count == 1 else 'tries'} of other runs this engine started "
                "(Ctrl-C stops waiting)"
            )
        return False

    def on_tick(self, engine: object = None) -> None:
        # An operator may pause dispatch from elsewhere: say so where they look.
        self.bar.paused = bool(getattr(engine, "paused", False))
        now = time.monotonic()
        if now < self._next_update:
            return
        self._next_update = now + self.interval
        tally = self._tally
        if tally is not None:
            due = tally.stale or now - self._tally_checked >= self.CHECK_EVERY
            if not due or now < self._next_count:
                self.bar.update(dict(tally.counts))
                return
        elif now < self._next_count:
            return
        counts = self.counts()
        self._next_count = now + self.BUDGET * (time.monotonic() - now)
        if tally is not None:
            tally.reset(counts)
            self._tally_checked = now
        self.bar.update(counts)


def report_outcome(store, dag_id: str, run_id: str, final: dict[str, int], total: int) -> int:  # type: ignore[no-untyped-def]
    from executors.state import TaskState

    # A task retried to success (by its policy or an operator) did not fail.
    failed = store.latest_tries(dag_id, run_id, [TaskState.FAILED, TaskState.UPSTREAM_FAILED])
    unfinished = total - final.get("success", 0) - len(failed)
    for record in failed:
        say(f"  {record.state:<15} {record.key}  {record.reason or ''}")
    if unfinished > 0:
        say(
            f"{dag_id}/{run_id}: stopped with {tasks(unfinished)} unfinished; `execconsole scheduler` carries on"
        )
        return 1
    if failed:
        say(f"{dag_id}/{run_id}: {final.get('success', 0)} succeeded, {len(failed)} failed")
        return 1
    say(f"{dag_id}/{run_id}: {'the task' if total == 1 else f'all {total} tasks'} succeeded")
    return 0


def scheduler(
    ctx: typer.Context,
    parallelism: Annotated[
        int | None, typer.Option("--parallelism", help="Tries per executor at once (0: no limit).")
    ] = None,
    executor: Annotated[
        str | None,
        typer.Option("--executor", help="Executor(s) to host, e.g. local or local,celery."),
    ] = None,
    until_idle: Annotated[
        bool,
        typer.Option(
            "--until-idle",
            help="Exit once nothing is left it can run: 0 if no task waits, 1 if some wait "
            "that it cannot start (dispatch paused, or their executor is not hosted here).",
        ),
    ] = False,
) -> None:
    """The engine without a console: runs what is submitted to the store until stopped."""
    import logging

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    options: GlobalOptions = ctx.obj
    runtime = options.runtime(executor=executor, parallelism=parallelism)
    runtime.warm_up_executors()
    store = runtime.store()
    from console.headless import host_engine

    left_waiting = False

    def idle(engine) -> bool:  # type: ignore[no-untyped-def]
        nonlocal left_waiting
        if not until_idle or engine.in_flight:
            return False
        # Asked after every tick with nothing in flight: an index probe, not a count.
        waiting = engine.store.has_unfinished(engine.executors)
        if waiting and engine.paused:
            # Nothing will start until someone resumes: waiting for it is not "until idle".
            say(
                f"dispatch is paused with {tasks(engine.hosted_unfinished())} waiting: "
                "`execconsole resume`, then run again"
            )
            left_waiting = True
            return True
        if waiting:
            return False
        unhosted = engine.unhosted_waiting()  # says which, once
        left_waiting = bool(unhosted)
        return True

    # Built and started first: a bad executor option, or a store another engine
    # owns, is then the only line said.
    from console.headless import start_engine

    engine = runtime.build_engine()
    start_engine(engine)
    say(f"scheduler on {store.path} with executors {', '.join(runtime.executor_names)}")
    host_engine(runtime, until=idle, engine=engine)
    if left_waiting:
        raise typer.Exit(1)
