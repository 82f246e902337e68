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
) -> Engine:
    """Start an engine on the runtime's store, iterate until ``until(engine)``, shut down cleanly.

    ``engine``: one already built by ``runtime.build_engine()`` (not started).
    """
    if engine is None:
        engine = runtime.build_engine()
    for executor in engine.executors.values():
        if not executor.is_production:
            print(
                f"warning: executor {executor.executor_name!r} ({type(executor).__name__}) is for debugging, "
                "not production",
                file=sys.stderr,
            )
    engine.start()
    signals = StopSignals(engine)
    last_check = 0.0
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
        finally:
            grace = 0.0 if signals.count > 1 else SHUTDOWN_GRACE_SECONDS
            engine.shutdown(signals.shutdown_mode, timeout=grace)
    return engine
