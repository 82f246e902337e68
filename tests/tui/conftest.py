"""Fixtures for the console's tests: a private EXECCONSOLE_HOME and real consoles."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.tui.harness import Console, build_console


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh EXECCONSOLE_HOME; nothing the tests do touches ~."""
    for key in list(os.environ):
        if key.startswith("EXECCONSOLE"):
            monkeypatch.delenv(key)
    path = tmp_path / "home"
    monkeypatch.setenv("EXECCONSOLE_HOME", str(path))
    return path


@pytest.fixture
def console(home: Path) -> Iterator[Callable[..., Console]]:
    """Build consoles on ``home``; every engine is stopped and its tasks killed afterwards."""
    built: list[Console] = []

    def build(**options: Any) -> Console:
        made = build_console(home, **options)
        built.append(made)
        return made

    yield build
    for made in reversed(built):
        made.close()
