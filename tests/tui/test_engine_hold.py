"""The console's own engine holds dispatch until the console is on screen."""

from __future__ import annotations

import time
from pathlib import Path

from console import actions
from console.runtime import Runtime
from console.tui.engine_process import ChildEngine
from store import Store
from tests.helpers import wait_until
from tests.tui.harness import no_process_left


def test_a_held_engine_starts_nothing_until_released_and_a_respawned_one_is_not_held(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    runtime = Runtime.load(home=home, executor="local", parallelism=1)
    marker = tmp_path / "ran"
    with Store(runtime.config.store_path) as store:
        key = actions.submit_command(
            store,
            ["touch", str(marker)],
            executor="local",
            configured_executors=["local"],
            task_id="first",
        )
    engine = ChildEngine.spawn(runtime, hold=True)
    try:
        engine.wait_ready()
        # A bounded look, not a timing claim: while held, several store ticks
        # pass and the task stays scheduled.
        deadline = time.monotonic() + 1.0
        with Store(runtime.config.store_path) as store:
            while time.monotonic() < deadline:
                assert str(store.resolve(key).state) == "scheduled"
                time.sleep(0.05)
        assert not marker.exists()

        engine.release()
        with Store(runtime.config.store_path) as store:
            wait_until(lambda: str(store.resolve(key).state) == "success", message="dispatch")
        assert marker.exists()
    finally:
        engine.stop("finish")
    assert "--hold" in engine.command
    assert "--hold" not in engine.respawn_command()
    assert no_process_left(home) == []
