"""Runs a started engine's loop on a dedicated thread, away from the UI thread.

The UI thread must never wait for the engine: a single-threaded executor runs
its task inside ``heartbeat()``, and a store tick may wait for SQLite's lock.
So the engine's ``iterate()`` loop gets a thread of its own, and the console
talks to it only through the store (operator requests), ``call_soon`` and
a few attribute reads.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from console.engine import Engine

log = logging.getLogger(__name__)


class EngineHost:
    """The engine thread: ``iterate()`` until stopped, drained, or broken.

    Args:
        engine: an engine whose ``start()`` has already run (before the UI
            started its threads, so executors fork from a clean process).
        on_stopped: called on the engine thread when the loop ends by itself
            (drained, or an error); the console uses it to close.
    """

    def __init__(self, engine: Engine, on_stopped: Callable[[], None] | None = None) -> None:
        self.engine = engine
        self.on_stopped = on_stopped
        self.error: BaseException | None = None
        self.drained = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="execconsole-engine", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        engine = self.engine
        try:
            while not self._stop.is_set():
                engine.iterate()
                if engine.draining and not engine.in_flight:
                    self.drained = True
                    break
        except BaseException as error:  # the console must learn that its engine died
            log.exception("the engine loop stopped")
            self.error = error
        if not self._stop.is_set() and self.on_stopped is not None:
            try:
                self.on_stopped()
            except Exception:
                log.exception("on_stopped failed")

    def call_soon(self, function: Callable[[], None]) -> None:
        """Run ``function`` on the engine thread at its next iteration."""
        self.engine.call_soon(function)

    def drain(self) -> None:
        """Stop dispatching; the loop ends once nothing is in flight."""

        def start_draining() -> None:
            from store import Batch

            engine = self.engine
            engine.draining = True
            # Tries handed out but not started go back to the store, as on pause.
            batch = Batch()
            for executor in engine.executors.values():
                engine.return_backlog(executor, batch)
            engine.store.commit(batch)
            engine.note("draining: nothing new starts; the console closes when running tasks end")

        self.call_soon(start_draining)

    def stop(self, timeout: float = 30.0) -> bool:
        """End the loop after its current iteration; True if the thread ended in time."""
        self._stop.set()
        self.engine.request_stop()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()
