"""BaseExecutor's capability interface: flag defaults, their documentation, and the optional hooks."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import ClassVar

import pytest

from executors.base import AdoptionOutcome, AdoptionRecord, BaseExecutor
from executors.state import TaskState
from executors.task_key import TaskKey
from executors.workload import Workload

BASE_SOURCE = Path(__file__).resolve().parent.parent / "executors" / "base.py"

# What a new executor is assumed to be unless it says otherwise: a production
# executor running tasks on this machine with local log files, in priority
# order, with none of the optional powers.
DEFAULT_CAPABILITIES = {
    "is_local": True,
    "is_single_threaded": False,
    "is_production": True,
    "serve_logs": True,
    "supports_ad_hoc_run": True,
    "supports_kill": False,
    "supports_live_scaling": False,
    "supports_adoption": False,
    "supports_priority": True,
}

KEY = TaskKey("dag", "task", "run")


class PlainExecutor(BaseExecutor):
    """Declares nothing: everything it has comes from BaseExecutor."""

    name: ClassVar[str] = "plain"

    def execute_async(self, key: TaskKey, workload: Workload) -> None:
        self.success(key)


class ScalingExecutor(PlainExecutor):
    supports_live_scaling: ClassVar[bool] = True
    is_production: ClassVar[bool] = False


def flag_statements() -> dict[str, tuple[ast.AnnAssign, ast.stmt | None]]:
    """Each ``ClassVar[bool]`` attribute of BaseExecutor with the statement after it."""
    tree = ast.parse(BASE_SOURCE.read_text(encoding="utf-8"))
    (base,) = (
        node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "BaseExecutor"
    )
    flags = {}
    for position, statement in enumerate(base.body):
        if (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and ast.unparse(statement.annotation) == "ClassVar[bool]"
        ):
            following = base.body[position + 1] if position + 1 < len(base.body) else None
            flags[statement.target.id] = (statement, following)
    return flags


# ---- the flags ----------------------------------------------------------------------


def test_each_flag_defaults_to_the_local_assumption() -> None:
    assert BaseExecutor.capabilities() == DEFAULT_CAPABILITIES


def test_capabilities_name_every_flag_base_executor_declares() -> None:
    assert set(flag_statements()) == set(BaseExecutor.CAPABILITY_NAMES)
    assert list(BaseExecutor.capabilities()) == list(BaseExecutor.CAPABILITY_NAMES)


def test_every_flag_has_a_docstring_under_it() -> None:
    undocumented = [
        f"{BASE_SOURCE.name}:{assignment.lineno}: {flag}"
        for flag, (assignment, following) in flag_statements().items()
        if not (
            isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
            and following.value.value.strip()
        )
    ]
    assert not undocumented, "capability flags without a docstring:\n" + "\n".join(undocumented)


def test_capabilities_are_read_from_the_class_without_an_instance() -> None:
    assert ScalingExecutor.capabilities() == {
        **DEFAULT_CAPABILITIES,
        "supports_live_scaling": True,
        "is_production": False,
    }
    assert PlainExecutor.capabilities() == DEFAULT_CAPABILITIES


# ---- the optional hooks ----------------------------------------------------------------


def test_an_executor_vends_nothing_unless_it_says_so() -> None:
    assert PlainExecutor.cli_groups() == []
    assert PlainExecutor.console_panels() == []
    assert PlainExecutor.key_bindings() == []
    assert PlainExecutor(1).worker_processes() == []


def test_kill_names_the_class_when_it_is_not_supported() -> None:
    with pytest.raises(NotImplementedError, match="PlainExecutor") as raised:
        PlainExecutor(1).kill(KEY)
    assert "supports_kill" in str(raised.value)


def test_set_parallelism_is_refused_without_live_scaling() -> None:
    executor = PlainExecutor(2)
    with pytest.raises(NotImplementedError, match="PlainExecutor"):
        executor.set_parallelism(5)
    assert executor.parallelism == 2


def test_set_parallelism_takes_effect_with_live_scaling() -> None:
    executor = ScalingExecutor(2)
    executor.set_parallelism(5)
    assert executor.parallelism == 5
    executor.set_parallelism(0)
    assert executor.open_slots() == 0  # nothing queued, and 0 means no limit
    with pytest.raises(ValueError, match="-1"):
        executor.set_parallelism(-1)


def test_the_default_adoption_gives_every_record_up_as_lost() -> None:
    records = [
        AdoptionRecord(KEY, TaskState.RUNNING, token="a", pid=123),
        AdoptionRecord(KEY.with_try(2), TaskState.QUEUED, token="b"),
    ]
    adopted = PlainExecutor(1).adopt(records)
    assert {key: adoption.outcome for key, adoption in adopted.items()} == {
        KEY: AdoptionOutcome.LOST,
        KEY.with_try(2): AdoptionOutcome.LOST,
    }


def test_the_default_task_log_reads_the_local_file(tmp_path: Path) -> None:
    log = tmp_path / "task.log"
    log.write_text("first\nsecond\n")
    executor = PlainExecutor(1)
    whole = executor.get_task_log(KEY, str(log))
    assert (whole.text, whole.size, whole.truncated) == ("first\nsecond\n", 13, False)
    tail = executor.get_task_log(KEY, str(log), max_bytes=7)
    assert (tail.text, tail.truncated) == ("second\n", True)
    assert executor.get_task_log(KEY, None).text == ""
    assert "(no output)" in executor.get_task_log(KEY, str(tmp_path / "missing.log")).source
