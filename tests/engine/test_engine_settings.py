"""What an engine starts with: live settings left on the store, and --parallelism."""

from __future__ import annotations

from pathlib import Path

from console.runtime import Runtime
from console.snapshot import SnapshotBuilder
from store import Batch, Store


def _store_settings(home: Path, **settings: object) -> None:
    with Store(home / "execconsole.db") as store:
        batch = Batch()
        for key, value in settings.items():
            batch.set_setting(key.replace("__", "."), value)
        store.commit(batch)


def _engine(home: Path, parallelism: int | None):  # type: ignore[no-untyped-def]
    runtime = Runtime.load(home=home, executor="local", parallelism=parallelism)
    return runtime.build_engine()


def test_a_parallelism_set_live_carries_over_to_the_next_engine_and_is_announced(
    home: Path,
) -> None:
    home.mkdir(parents=True)
    _store_settings(home, parallelism__local=1)
    engine = _engine(home, parallelism=None)
    engine.start()
    try:
        assert engine.executors["local"].parallelism == 1
        assert any("parallelism of local is 1, as last set live" in m for m in engine.messages)
    finally:
        engine.shutdown("kill", timeout=5)
        engine.store.close()


def test_parallelism_given_to_the_engine_wins_over_the_live_setting_and_replaces_it(
    home: Path,
) -> None:
    home.mkdir(parents=True)
    _store_settings(home, parallelism__local=1)
    with Store(home / "execconsole.db") as store:
        stale = store.add_request("parallelism", {"value": 1, "executor": "local"})
    engine = _engine(home, parallelism=4)
    engine.start()
    try:
        assert engine.executors["local"].parallelism == 4
        engine.store_tick()
        assert engine.executors["local"].parallelism == 4  # the older request lost
        request = engine.store.get_request(stale)
        assert request is not None and request.status == "rejected"
        assert "--parallelism" in (request.result or "")
        assert engine.store.get_setting("parallelism.local") == 4
    finally:
        engine.shutdown("kill", timeout=5)
        engine.store.close()


def test_parallelism_given_to_the_engine_is_stored_where_attached_consoles_read_it(
    home: Path,
) -> None:
    # A fresh store holds no live setting: an attached console (another
    # process, no status from this engine) must still show 5, not its default.
    home.mkdir(parents=True)
    engine = _engine(home, parallelism=5)
    engine.start()
    try:
        assert engine.store.get_setting("parallelism.local") == 5
        builder = SnapshotBuilder(
            engine.store.path,
            executors=engine.executors,
            attached_to=engine.store.lease_owner(),
            default_parallelism=2,
        )
        (view,) = builder.build().header.executors
        assert view.parallelism == 5
    finally:
        engine.shutdown("kill", timeout=5)
        engine.store.close()


def test_a_paused_store_is_announced_when_an_engine_starts(home: Path) -> None:
    home.mkdir(parents=True)
    _store_settings(home, paused=True)
    engine = _engine(home, parallelism=None)
    engine.start()
    try:
        assert engine.paused
        assert any("dispatch is paused" in m and "execconsole resume" in m for m in engine.messages)
    finally:
        engine.shutdown("kill", timeout=5)
        engine.store.close()
