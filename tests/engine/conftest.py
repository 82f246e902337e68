from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from console.engine import Engine
from console.runtime import Runtime
from store import Store


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in list(__import__("os").environ):
        if key.startswith("EXECCONSOLE"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("EXECCONSOLE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def make_engine(home: Path) -> Iterator:
    """Build engines through the product's own construction path; shut them all down after."""
    engines: list[Engine] = []

    def build(parallelism: int = 2, executor: str = "local", **overrides: object) -> Engine:
        runtime = Runtime.load(home=home, executor=executor, parallelism=parallelism)
        engine = runtime.build_engine()
        for name, value in overrides.items():
            setattr(engine, name, value)
        engine.start()
        engines.append(engine)
        return engine

    yield build
    for engine in engines:
        if engine._started:
            engine.shutdown("kill", timeout=5)
        engine.store.close()


def drive(engine: Engine, until, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    """Iterate the engine until ``until()`` holds (bounded)."""
    import time

    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"engine did not reach the expected state within {timeout}s:\n{engine.debug_dump()}"
            )
        engine.iterate()


def idle(engine: Engine):  # type: ignore[no-untyped-def]
    return lambda: not engine.in_flight and engine.store.unfinished_count() == 0


def open_store(home: Path) -> Store:
    return Store(home / "execconsole.db")
