"""Hosting the engine without a UI: ``run --headless`` and ``scheduler``."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType

from console.engine import Engine
from console.runtime import Runtime

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_SECONDS = 10.0


class StopSignals:
    """SIGINT/SIGTERM ask the engine to stop; a second one stops it harder."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.count = 0
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        self.engine.request_stop()
        # An executor running a try inline holds the engine's loop until it ends:
        # give it the same bound (none on a second signal).
        kill_after = SHUTDOWN_GRACE_SECONDS if self.count == 1 else 0.0
        for executor in self.engine.executors.values():
            executor.stop_requested(kill_after)

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]

    @property
    def shutdown_mode(self) -> str:
        # First signal: let running tries finish (bounded); second: kill them.
        return "kill" if self.count > 1 else "finish"


def host_engine(
    runtime: Runtime,
    *,
    until: Callable[[Engine], bool],
    on_tick: Callable[[Engine], None] | None = None,
    engine: Engine | None = None,
    announce: Callable[[str], None] | None = None,
) -> Engine:
    """Start an engine on the runtime's store, iterate until ``until(engine)``, shut down cleanly.

    ``engine``: one already built by ``runtime.build_engine()``, started or not.
    ``announce``: where to say what the engine noted while starting (dispatch
    paused, a parallelism set live), for hosts that do not log its notes.
    """
    if engine is None:
        engine = runtime.build_engine()
    if not engine.started:
        start_engine(engine)
    if announce is not None:
        for message in engine.messages:  # what starting found worth saying (paused, parallelism)
            announce(message)
    signals = StopSignals(engine)
    last_check = 0.0
    hurried = True  # until the loop has ended on its own: an exception stops everything
    with signals:
        try:
            while not engine._stop.is_set():
                engine.iterate()
                now = time.monotonic()
                if now - last_check >= 0.1:
                    last_check = now
                    if on_tick is not None:
                        on_tick(engine)
                    if until(engine):
                        break
                elif not engine.in_flight and until(engine):
                    break  # the last try just ended: no need to wait for the next check
            hurried = signals.count > 1
            if not hurried:
                hurried = not let_running_tries_finish(engine, signals, SHUTDOWN_GRACE_SECONDS)
        finally:
            if hurried:
                engine.shutdown("kill", timeout=0.0)
            else:
                # Nothing runs any more, or what still runs has had its grace:
                # idle workers get the time they need to take their poison pills.
                engine.shutdown(
                    "finish", timeout=0.0 if engine.in_flight else SHUTDOWN_GRACE_SECONDS
                )
    return engine


def start_engine(engine: Engine) -> None:
    """Start ``engine``, first warning of executors meant for debugging only."""
    for executor in engine.executors.values():
        if not executor.is_production:
            print(
                f"warning: executor {executor.executor_name!r} ({type(executor).__name__}) is for debugging, "
                "not production",
                file=sys.stderr,
            )
    engine.start()


def let_running_tries_finish(engine: Engine, signals: StopSignals, grace: float) -> bool:
    """Before stopping: start nothing more, and record tries that end within ``grace``.

    The engine keeps its loop going meanwhile, so every try that ends is
    recorded as it ends. A (second) stop signal cuts the wait short; whatever
    still runs afterwards is killed by ``Engine.shutdown``. Returns False
    if a signal cut the wait short.
    """
    engine.drain()
    running = len(engine.in_flight)
    if not running:
        return True
    tries = "try" if running == 1 else "tries"
    print(
        f"stopping: waiting up to {grace:g}s for {running} running {tries} to finish; "
        "press Ctrl-C again to kill them now",
        file=sys.stderr,
    )
    deadline = time.monotonic() + grace
    signalled = signals.count
    while engine.in_flight and signals.count == signalled and time.monotonic() < deadline:
        engine.iterate()
    if engine.in_flight:
        left = len(engine.in_flight)
        if signals.count == signalled:
            for flight in engine.in_flight.values():
                flight.kill_reason = (
                    f"killed: the engine was stopping and it still ran after {grace:g}s"
                )
        why = "as asked" if signals.count > signalled else f"still running after {grace:g}s"
        print(f"stopping: killing {left} {'try' if left == 1 else 'tries'} {why}", file=sys.stderr)
    return signals.count == signalled
