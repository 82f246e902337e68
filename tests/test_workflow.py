"""Workflow files: what parses, what is rejected, and how the rejection reads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from console.workflow import (
    TaskSpec,
    WorkflowError,
    WorkflowSpec,
    load_workflow,
    parse_duration,
    parse_workflow,
    topological_order,
)

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo.toml"


def workflow(*tasks: str, head: str = 'id = "demo"\n') -> str:
    """A workflow document from task bodies (each the lines after a [[task]] header)."""
    return head + "".join(f"\n[[task]]\n{body}\n" for body in tasks)


def error_of(text: str, known_executors: list[str] | None = None) -> WorkflowError:
    """The WorkflowError that parsing ``text`` (named demo.toml) raises."""
    with pytest.raises(WorkflowError) as caught:
        parse_workflow(text, source="demo.toml", known_executors=known_executors)
    return caught.value


# ---- what parses -----------------------------------------------------------


def test_minimal_task_gets_the_documented_defaults() -> None:
    spec = parse_workflow(workflow('id = "a"\ncommand = ["true"]'))
    assert spec.dag_id == "demo"
    assert spec.description == ""
    assert spec.tasks == [
        TaskSpec(
            id="a",
            command=["true"],
            shell=False,
            upstream=[],
            priority=1,
            retries=0,
            retry_delay=0.0,
            timeout=None,
            env={},
            cwd=None,
            executor=None,
            queue="default",
        )
    ]


def test_every_task_key_is_read() -> None:
    spec = parse_workflow(
        workflow(
            'id = "a"\ncommand = ["true"]',
            """id = "b"
command = ["sh", "-c", "exit 0"]
upstream = ["a"]
priority = -3
retries = 2
retry_delay = 1.5
timeout = 30
env = { REGION = "eu", EMPTY = "" }
cwd = "/tmp"
executor = "local"
queue = "fast"
""",
            head='id = "demo"\ndescription = "two tasks"\n',
        )
    )
    task = spec.task("b")
    assert spec.description == "two tasks"
    assert task.command == ["sh", "-c", "exit 0"]
    assert task.upstream == ["a"]
    assert (task.priority, task.retries, task.retry_delay, task.timeout) == (-3, 2, 1.5, 30.0)
    assert task.env == {"REGION": "eu", "EMPTY": ""}
    assert (task.cwd, task.executor, task.queue) == ("/tmp", "local", "fast")


def test_shell_command_is_kept_as_a_one_element_list() -> None:
    spec = parse_workflow(workflow('id = "a"\nshell = true\ncommand = "echo hi | tr a-z A-Z"'))
    assert spec.tasks[0].shell is True
    assert spec.tasks[0].command == ["echo hi | tr a-z A-Z"]


def test_empty_arguments_after_the_program_are_allowed() -> None:
    spec = parse_workflow(workflow('id = "a"\ncommand = ["printf", ""]'))
    assert spec.tasks[0].command == ["printf", ""]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(0, 0.0), (2.5, 2.5), ("500ms", 0.5), ("30s", 30.0), ("2m", 120.0), ("1h", 3600.0)]
    + [("1m30s", 90.0), ("1.5s", 1.5)],
)
def test_durations_accept_seconds_and_unit_strings(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["soon", "30", "", "5 parsecs", True, float("inf")])
def test_durations_reject_anything_else(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


def test_duration_strings_are_accepted_for_retry_delay_and_timeout() -> None:
    spec = parse_workflow(
        workflow('id = "a"\ncommand = ["true"]\nretry_delay = "2m"\ntimeout = "1h"')
    )
    assert (spec.tasks[0].retry_delay, spec.tasks[0].timeout) == (120.0, 3600.0)


def test_relative_cwd_is_taken_from_the_workflow_files_folder(tmp_path: Path) -> None:
    path = tmp_path / "flows" / "w.toml"
    path.parent.mkdir()
    path.write_text(workflow('id = "a"\ncommand = ["true"]\ncwd = "data"'))
    spec = load_workflow(path)
    assert spec.tasks[0].cwd == str(tmp_path / "flows" / "data")
    assert spec.source == str(path)


def test_absolute_cwd_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "w.toml"
    path.write_text(workflow('id = "a"\ncommand = ["true"]\ncwd = "/var/tmp"'))
    assert load_workflow(path).tasks[0].cwd == "/var/tmp"


def test_any_executor_name_is_accepted_when_no_list_is_given() -> None:
    spec = parse_workflow(workflow('id = "a"\ncommand = ["true"]\nexecutor = "anything"'))
    assert spec.tasks[0].executor == "anything"


def test_known_executor_is_accepted() -> None:
    spec = parse_workflow(
        workflow('id = "a"\ncommand = ["true"]\nexecutor = "celery"'),
        known_executors=["local", "celery"],
    )
    assert spec.tasks[0].executor == "celery"


def test_an_upstream_listed_twice_counts_once() -> None:
    spec = parse_workflow(
        workflow(
            'id = "a"\ncommand = ["true"]', 'id = "b"\ncommand = ["true"]\nupstream = ["a", "a"]'
        )
    )
    assert spec.task("b").upstream == ["a"]


# ---- what is rejected, and how it reads ------------------------------------


def test_invalid_toml_names_the_line_and_column() -> None:
    error = error_of('id = "demo"\n[[task]\nid = "a"\n')
    assert str(error).startswith("demo.toml:2:")
    assert "invalid TOML" in str(error)


def test_unknown_top_level_key_suggests_the_closest_known_key() -> None:
    error = error_of(
        workflow('id = "a"\ncommand = ["true"]', head='id = "demo"\ndescripton = "x"\n')
    )
    assert (
        str(error)
        == "demo.toml: unknown key 'descripton' at the top level (did you mean 'description'?)"
    )


def test_unknown_task_key_suggests_the_closest_known_key() -> None:
    error = error_of(workflow('id = "load"\ncommand = ["true"]\nretry = 1'))
    assert (
        str(error)
        == "demo.toml: task 'load': unknown key 'retry' in a task (did you mean 'retries'?)"
    )


def test_unknown_key_with_no_close_match_lists_the_known_keys() -> None:
    error = error_of(workflow('id = "a"\ncommand = ["true"]\nzzz = 1'))
    assert "unknown key 'zzz'" in str(error)
    assert "known keys: id, command, shell" in str(error)


def test_tasks_written_as_named_tables_are_rejected_with_the_right_form() -> None:
    error = error_of('id = "demo"\n[tasks.a]\ncommand = ["true"]\n')
    assert "unknown key 'tasks'" in str(error)
    assert "[[task]]" in str(error)


def test_a_single_bracket_task_table_is_rejected() -> None:
    error = error_of('id = "demo"\n[task]\nid = "a"\ncommand = ["true"]\n')
    assert "[[task]] (double brackets)" in str(error)


def test_missing_workflow_id_is_rejected() -> None:
    error = error_of(workflow('id = "a"\ncommand = ["true"]', head=""))
    assert str(error).startswith("demo.toml: 'id' is missing")


def test_invalid_workflow_id_is_rejected() -> None:
    error = error_of(workflow('id = "a"\ncommand = ["true"]', head='id = "my demo"\n'))
    assert "'id' \"my demo\" is not a valid id" in str(error)


def test_workflow_without_tasks_is_rejected() -> None:
    assert "no tasks" in str(error_of('id = "demo"\n'))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('retries = "three"', "'retries' must be an integer from 0 to 1000, got \"three\""),
        ("retries = -1", "'retries' must be an integer from 0 to 1000, got -1"),
        ("retries = true", "'retries' must be an integer from 0 to 1000, got true"),
        ("retries = 1001", "'retries' must be an integer from 0 to 1000, got 1001"),
        (
            "retries = 99999999999999999999999",
            "'retries' must be an integer from 0 to 1000, got 99999999999999999999999",
        ),
        ("priority = 1.5", "'priority' must be an integer from -2147483648 to 2147483647, got 1.5"),
        (
            "priority = 99999999999999999999999",
            "'priority' must be an integer from -2147483648 to 2147483647, got 99999999999999999999999",
        ),
        (
            "priority = -9223372036854775809",
            "'priority' must be an integer from -2147483648 to 2147483647, got -9223372036854775809",
        ),
        ("priority = 2147483648", "'priority' must be an integer from -2147483648 to 2147483647"),
        ('shell = "yes"', "'shell' must be true or false, got \"yes\""),
        ('upstream = "b"', "'upstream' must be a list of task ids; write upstream = [\"b\"]"),
        ("upstream = [1]", "'upstream' must hold task id strings, got 1"),
        ("timeout = 0", "'timeout' must be seconds > 0"),
        ("timeout = -5", "'timeout' must be seconds > 0"),
        ("timeout = 1e300", "'timeout' must be seconds > 0 and at most 8760h (a year)"),
        ("timeout = nan", "'timeout' must be seconds > 0"),
        ("timeout = inf", "'timeout' must be seconds > 0"),
        ("retry_delay = -1", "'retry_delay' must be seconds from 0 to 8760h (a year)"),
        ('retry_delay = "soon"', "'retry_delay' must be seconds from 0 to 8760h"),
        ("retry_delay = 1e300", "'retry_delay' must be seconds from 0 to 8760h"),
        ('retry_delay = "99999999999999h"', "'retry_delay' must be seconds from 0 to 8760h"),
        ('env = "A=1"', "'env' must be a table of strings"),
        ("env = { A = 1 }", "'env' value of A must be a string, got 1; quote it: A = \"1\""),
        ("cwd = 3", "'cwd' must be a string, got 3"),
        ('queue = ""', "'queue' is empty"),
        ("executor = 5", "'executor' must be a string, got 5"),
    ],
)
def test_wrong_types_and_ranges_are_rejected_naming_task_and_key(line: str, expected: str) -> None:
    error = error_of(workflow(f'id = "load"\ncommand = ["true"]\n{line}'))
    assert str(error).startswith(f"demo.toml: task 'load': {expected}")


def test_numbers_at_the_edges_of_their_ranges_are_accepted() -> None:
    spec = parse_workflow(
        workflow(
            'id = "high"\ncommand = ["true"]\npriority = 2147483647\nretries = 1000\n'
            'retry_delay = "8760h"\ntimeout = "8760h"',
            'id = "low"\ncommand = ["true"]\npriority = -2147483648\nretries = 0\n'
            "retry_delay = 0\ntimeout = 0.001",
        ),
        source="demo.toml",
    )
    high, low = spec.tasks
    assert (high.priority, high.retries, high.retry_delay, high.timeout) == (
        2**31 - 1,
        1000,
        365 * 24 * 3600.0,
        365 * 24 * 3600.0,
    )
    assert (low.priority, low.retries, low.retry_delay, low.timeout) == (-(2**31), 0, 0.0, 0.001)


def test_missing_command_is_rejected() -> None:
    assert "'command' is missing" in str(error_of(workflow('id = "a"')))


def test_empty_command_is_rejected() -> None:
    assert "'command' is empty" in str(error_of(workflow('id = "a"\ncommand = []')))


def test_empty_program_name_is_rejected() -> None:
    error = error_of(workflow('id = "a"\ncommand = ["", "x"]'))
    assert "empty program name" in str(error)


def test_non_string_argv_element_is_rejected_with_a_quoting_hint() -> None:
    error = error_of(workflow('id = "a"\ncommand = ["sleep", 1]'))
    assert str(error) == (
        "demo.toml: task 'a': 'command' element 2 must be a string, got 1; quote it: \"1\""
    )


def test_string_command_without_shell_is_rejected_with_the_argv_form() -> None:
    error = error_of(workflow('id = "a"\ncommand = "sleep 1"'))
    assert "shell is not true" in str(error)
    assert 'such as ["sleep", "1"]' in str(error)
    assert "set shell = true" in str(error)


def test_a_string_command_with_a_pipe_is_told_to_use_the_shell_not_an_argv_list() -> None:
    # As an argv list, "|" would reach echo as a plain word: only shell = true is a fix.
    error = error_of(workflow('id = "a"\ncommand = "echo hi | cat"'))
    assert str(error) == (
        "demo.toml: task 'a': 'command' is a string with shell syntax (|) but shell is not "
        "true; set shell = true to run it through /bin/sh"
    )


def test_graph_problems_are_listed_beside_field_problems() -> None:
    # One pass lists every problem: the cycle and the unknown upstream too, not
    # only once the broken fields are fixed.
    error = error_of(
        workflow(
            'id = "a"\ncommand = "sleep 1"\nupstream = ["b"]',
            'id = "b"\ncommand = ["true"]\ntimeout = "30m1h"\nupstream = ["a", "zzz"]',
        )
    )
    text = "\n".join(error.errors)
    assert "task 'a': 'command' is a string" in text
    assert "task 'b': 'timeout'" in text
    assert "task 'b': 'upstream' names unknown task 'zzz'" in text
    assert "dependency cycle: " in text


def test_argv_command_with_shell_true_is_rejected() -> None:
    error = error_of(workflow('id = "a"\nshell = true\ncommand = ["echo", "hi"]'))
    assert "must be one string when shell = true" in str(error)


def test_blank_shell_command_is_rejected() -> None:
    error = error_of(workflow('id = "a"\nshell = true\ncommand = "   "'))
    assert "empty shell string" in str(error)


def test_nul_character_in_an_argument_is_rejected() -> None:
    error = error_of(workflow('id = "a"\ncommand = ["echo", "a\\u0000b"]'))
    assert "NUL character" in str(error)


def test_invalid_task_id_is_rejected() -> None:
    error = error_of(workflow('id = "load/all"\ncommand = ["true"]'))
    assert "'id' \"load/all\" is not a valid id" in str(error)


def test_task_without_id_is_named_by_its_position() -> None:
    error = error_of(workflow('id = "a"\ncommand = ["true"]', 'command = ["true"]'))
    assert str(error).startswith("demo.toml: task #2: 'id' is missing")


def test_duplicate_task_ids_are_rejected() -> None:
    error = error_of(workflow('id = "a"\ncommand = ["true"]', 'id = "a"\ncommand = ["false"]'))
    assert str(error) == (
        "demo.toml: task 'a': duplicate id; task #1 already uses it, ids must be unique"
    )


def test_unknown_upstream_is_rejected_with_a_suggestion() -> None:
    error = error_of(
        workflow(
            'id = "load"\ncommand = ["true"]', 'id = "b"\ncommand = ["true"]\nupstream = ["lod"]'
        )
    )
    assert str(error) == (
        "demo.toml: task 'b': 'upstream' names unknown task 'lod' (did you mean 'load'?)"
    )


def test_dependency_cycle_is_reported_with_its_path() -> None:
    error = error_of(
        workflow(
            'id = "a"\ncommand = ["true"]\nupstream = ["c"]',
            'id = "b"\ncommand = ["true"]\nupstream = ["a"]',
            'id = "c"\ncommand = ["true"]\nupstream = ["b"]',
            'id = "d"\ncommand = ["true"]',
        )
    )
    assert "dependency cycle: a → b → c → a" in str(error)


def test_a_task_upstream_of_itself_is_a_cycle() -> None:
    error = error_of(workflow('id = "a"\ncommand = ["true"]\nupstream = ["a"]'))
    assert "dependency cycle: a → a" in str(error)


def test_unknown_executor_is_rejected_listing_the_known_ones() -> None:
    error = error_of(
        workflow('id = "a"\ncommand = ["true"]\nexecutor = "celeri"'),
        known_executors=["local", "celery"],
    )
    assert str(error) == (
        "demo.toml: task 'a': unknown executor 'celeri' (did you mean 'celery'?); "
        "known executors: celery, local"
    )


def test_several_problems_show_the_first_and_count_the_rest() -> None:
    error = error_of(
        workflow('id = "a"\ncommand = ["true"]\nretries = -1', 'id = "b"\ncommand = "x"')
    )
    assert str(error).endswith("(and 1 more)")
    assert len(error.errors) == 2
    assert "task 'b'" in error.errors[1]


def test_every_message_is_one_line_even_for_values_with_newlines() -> None:
    error = error_of(
        workflow('id = "a"\ncommand = ["true"]\nqueue = 1\nretries = "x\\ny"', 'command = "a\\nb"')
    )
    assert len(error.errors) >= 3
    assert all("\n" not in message for message in error.errors)
    assert "\n" not in str(error)


def test_a_broken_task_does_not_also_break_references_to_it() -> None:
    error = error_of(
        workflow(
            'id = "a"\ncommand = ["true"]\nretries = -1',
            'id = "b"\ncommand = ["true"]\nupstream = ["a"]',
        )
    )
    assert len(error.errors) == 1
    assert "'retries'" in error.errors[0]


# ---- files -----------------------------------------------------------------


def test_missing_file_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(WorkflowError) as caught:
        load_workflow(tmp_path / "nope.toml")
    assert str(caught.value) == f"{tmp_path / 'nope.toml'}: no such workflow file; check the path"


def test_directory_is_rejected_naming_the_toml_files_inside(tmp_path: Path) -> None:
    (tmp_path / "demo.toml").write_text("")
    with pytest.raises(WorkflowError) as caught:
        load_workflow(tmp_path)
    assert "is a directory (it holds demo.toml)" in str(caught.value)


def test_file_that_is_not_utf8_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "w.toml"
    path.write_bytes(b'id = "\xff"\n')
    with pytest.raises(WorkflowError) as caught:
        load_workflow(path)
    assert "not UTF-8" in str(caught.value)


def test_errors_from_a_file_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "w.toml"
    path.write_text(workflow('id = "a"\ncommand = ["true"]\nretries = "three"'))
    with pytest.raises(WorkflowError) as caught:
        load_workflow(path)
    assert str(caught.value).startswith(f"{path}: task 'a': 'retries'")


# ---- the graph -------------------------------------------------------------


def test_topological_order_runs_upstreams_first_then_the_earliest_ready_task_in_the_file() -> None:
    spec = parse_workflow(
        workflow(
            'id = "report"\ncommand = ["true"]\nupstream = ["load", "extract"]',
            'id = "load"\ncommand = ["true"]\nupstream = ["extract"]',
            'id = "extract"\ncommand = ["true"]',
            'id = "cleanup"\ncommand = ["true"]',
        )
    )
    assert [task.id for task in topological_order(spec)] == ["extract", "load", "report", "cleanup"]


def test_topological_order_rejects_a_hand_built_cycle() -> None:
    spec = WorkflowSpec(
        dag_id="d",
        tasks=[
            TaskSpec(id="a", command=["true"], upstream=["b"]),
            TaskSpec(id="b", command=["true"], upstream=["a"]),
        ],
    )
    with pytest.raises(WorkflowError, match="dependency cycle: a → b → a"):
        topological_order(spec)


def test_downstream_lists_the_tasks_that_wait_for_a_task() -> None:
    spec = parse_workflow(
        workflow(
            'id = "a"\ncommand = ["true"]',
            'id = "b"\ncommand = ["true"]\nupstream = ["a"]',
            'id = "c"\ncommand = ["true"]\nupstream = ["a", "b"]',
        )
    )
    assert spec.downstream("a") == ["b", "c"]
    assert spec.downstream("c") == []


# ---- the demo workflow -----------------------------------------------------


def test_demo_workflow_parses_and_is_acyclic() -> None:
    spec = load_workflow(DEMO, known_executors=["local", "sequential", "celery"])
    ordered = topological_order(spec)
    assert len(ordered) == len(spec.tasks)
    assert 25 <= len(spec.tasks) <= 35
    seen: set[str] = set()
    for task in ordered:
        assert set(task.upstream) <= seen
        seen.add(task.id)


def test_demo_shows_fan_in_retries_timeout_shell_and_priorities() -> None:
    spec = load_workflow(DEMO)
    assert any(len(task.upstream) >= 3 for task in spec.tasks)
    assert any(len(spec.downstream(task.id)) >= 3 for task in spec.tasks)
    assert sum("EXECCONSOLE_TRY_NUMBER" in " ".join(t.command) for t in spec.tasks) >= 2
    assert any(task.timeout is not None for task in spec.tasks)
    assert any(task.shell for task in spec.tasks)
    assert len({task.priority for task in spec.tasks}) >= 4


def _run_demo_task(task: TaskSpec, try_number: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **task.env, "EXECCONSOLE_TRY_NUMBER": str(try_number)}
    argv: str | list[str] = task.command[0] if task.shell else task.command
    return subprocess.run(
        argv, shell=task.shell, env=env, capture_output=True, text=True, timeout=60
    )


def test_demo_flaky_tasks_fail_on_the_first_try_and_succeed_on_the_second() -> None:
    spec = load_workflow(DEMO)
    flaky = [t for t in spec.tasks if "EXECCONSOLE_TRY_NUMBER" in " ".join(t.command)]
    for task in flaky:
        assert task.retries >= 1
        assert _run_demo_task(task, 1).returncode != 0
        assert _run_demo_task(task, 2).returncode == 0


def test_demo_shell_task_runs() -> None:
    spec = load_workflow(DEMO)
    (task,) = [t for t in spec.tasks if t.shell]
    result = _run_demo_task(task, 1)
    assert result.returncode == 0
    assert "total" in result.stdout


def test_workflow_module_does_not_import_heavy_packages() -> None:
    code = (
        "import sys, console.workflow; "
        "print(','.join(m for m in ('textual', 'sqlite_utils', 'typer') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=DEMO.parent.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == ""
