"""Each try sees exactly its own variables on top of the worker's environment, never a previous try's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from executors.state import TaskState
from executors.task_environment import InheritedEnvironment
from tests.executors.conftest import Driver, MakeLocal, make_workload


def test_a_try_sees_its_own_variables_and_none_left_by_the_try_before(
    make_local: MakeLocal, tmp_path: Path
) -> None:
    executor = make_local(1)  # one worker: both tries run in the same process
    driver = Driver(executor)
    show = 'echo "only=${ONLY_FIRST:-unset} home=$HOME"'
    first = make_workload(
        tmp_path, show, run="first", env={"ONLY_FIRST": "1", "HOME": "/elsewhere"}
    )
    second = make_workload(tmp_path, show, run="second")
    executor.queue_workload(first)
    driver.until_finished(first.key)
    executor.queue_workload(second)
    driver.until_finished(second.key)

    assert driver.state(first.key) is TaskState.SUCCESS
    assert Path(first.log_path).read_text() == "only=1 home=/elsewhere\n"
    assert Path(second.log_path).read_text() == f"only=unset home={os.environ['HOME']}\n"


def test_apply_changes_only_the_difference_and_restores_the_base(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EXECCONSOLE_TEST_BASE", "base")
    monkeypatch.delenv("EXECCONSOLE_TEST_EXTRA", raising=False)
    environment = InheritedEnvironment()

    environment.apply({"EXECCONSOLE_TEST_BASE": "changed", "EXECCONSOLE_TEST_EXTRA": "x"})
    assert os.environ["EXECCONSOLE_TEST_BASE"] == "changed"
    assert os.environ["EXECCONSOLE_TEST_EXTRA"] == "x"

    environment.apply({})
    assert os.environ["EXECCONSOLE_TEST_BASE"] == "base"
    assert "EXECCONSOLE_TEST_EXTRA" not in os.environ


def test_tries_in_a_row_sharing_variables_each_see_exactly_their_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A variable whose value stays from one try to the next is left alone; the
    spawn environment (``encoded``) and ``os.environ`` still agree after each try."""
    monkeypatch.setenv("EXECCONSOLE_TEST_BASE", "base")
    for name in ("EXECCONSOLE_TEST_RUN", "EXECCONSOLE_TEST_TASK"):
        monkeypatch.delenv(name, raising=False)
    environment = InheritedEnvironment()
    tries = [
        {"EXECCONSOLE_TEST_RUN": "r1", "EXECCONSOLE_TEST_TASK": "a"},
        {"EXECCONSOLE_TEST_RUN": "r1", "EXECCONSOLE_TEST_TASK": "b"},
        {"EXECCONSOLE_TEST_RUN": "r1", "EXECCONSOLE_TEST_BASE": "changed"},
        {"EXECCONSOLE_TEST_RUN": "r1", "EXECCONSOLE_TEST_TASK": "c"},
        {"EXECCONSOLE_TEST_TASK": "c"},
        {},
    ]
    for overrides in tries:
        environment.apply(overrides)
        expected = {
            "EXECCONSOLE_TEST_BASE": "base",
            "EXECCONSOLE_TEST_RUN": None,
            "EXECCONSOLE_TEST_TASK": None,
            **overrides,
        }
        for name, value in expected.items():
            assert os.environ.get(name) == value, (overrides, name)
            encoded = environment.encoded.get(os.fsencode(name))
            assert encoded == (None if value is None else os.fsencode(value)), (overrides, name)
