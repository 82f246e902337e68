"""console.collection_pause: no cyclic collection during a workflow's start-up burst."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from console.collection_pause import collection_paused


@pytest.fixture(autouse=True)
def _collector_restored() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    gc.unfreeze()  # back into the oldest generation: later tests see a normal heap
    if enabled:
        gc.enable()
    else:
        gc.disable()


def test_the_collector_is_off_inside_and_survivors_are_frozen_after() -> None:
    gc.enable()
    gc.unfreeze()
    kept = []
    with collection_paused():
        assert not gc.isenabled()
        kept.extend([index] for index in range(5000))  # 5,000 container objects
    assert gc.isenabled()
    assert gc.get_freeze_count() >= 5000
    # Frozen objects are in no generation a collection walks.
    first = kept[0]
    assert not any(obj is first for obj in gc.get_objects())


def test_an_error_inside_still_turns_the_collector_back_on() -> None:
    gc.enable()
    with pytest.raises(ValueError), collection_paused():
        raise ValueError("bad workflow")
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off_and_nothing_is_frozen() -> None:
    gc.disable()
    gc.unfreeze()
    with collection_paused():
        _made = [[index] for index in range(100)]
    assert not gc.isenabled()
    assert gc.get_freeze_count() == 0
