"""Keys the built-in executors add never collide with the console's own (built-ins would win)."""

from __future__ import annotations

import pytest

from console.tui.keys import KEYS
from executors.loader import load_executor_class


@pytest.mark.parametrize("name", ["local", "sequential", "celery"])
def test_builtin_executor_keys_do_not_clash_with_console_keys(name: str) -> None:
    console_keys = {key for spec in KEYS for key in spec.keys.split(",")}
    vended = [binding.key for binding in load_executor_class(name).key_bindings()]
    assert not set(vended) & console_keys
    assert len(vended) == len(set(vended))
