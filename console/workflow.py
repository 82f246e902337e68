"""Workflow files: TOML in, a validated WorkflowSpec out.

A workflow file names the workflow and lists its tasks as ``[[task]]`` tables,
one per task, in the order an operator reads them::

    id = "nightly"                        # required; letters, digits, _ . - : + @
    description = "Nightly ETL"           # optional

    [[task]]
    id = "extract"
    command = ["python3", "extract.py", "--day", "today"]   # argv list: no shell
    priority = 5                          # higher runs first when slots are short
    retries = 2                           # extra tries after the first fails
    retry_delay = "30s"                   # seconds, or "500ms" / "30s" / "2m" / "1h30m" / "1d"
    timeout = 600                         # seconds (or a duration, console/durations.py); absent = none
    env = { REGION = "eu" }               # added to the task's environment
    cwd = "data"                          # relative to the workflow file's folder
    executor = "local"                    # absent = the configured default
    queue = "default"

    [[task]]
    id = "report"
    upstream = ["extract"]                # runs after these succeed
    shell = true                          # only then may command be one string
    command = "du -sh data | tee report.txt"

    [defaults]                            # optional: every task's values unless it sets its own
    retries = 1                           # any task key but id, command, shell and upstream;
    env = { LOG_LEVEL = "info" }          # env tables merge, the task's variables winning

Every problem becomes a ``WorkflowError`` whose message is one line naming the
file, the task and the key at fault, and what to write instead. All problems
are collected first; the message shows the first and counts the rest, and
``WorkflowError.errors`` holds them all.
"""

from __future__ import annotations

import difflib
import heapq
import json
import re
import shlex
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# tomli is the library the standard tomllib was taken from, shipped compiled
# with mypyc: it parses a 10,000-task workflow in 0.06 s against tomllib's 0.31 s
# (measured here). Same parser, same errors.
import tomli

from console.durations import TIMEOUT_MIN, DurationError, parse_duration
from console.shell_syntax import shell_syntax
from executors.task_key import ID_RULE, is_valid_id

TOP_LEVEL_KEYS = ("id", "description", "defaults", "task")
TASK_KEYS = (
    "id",
    "command",
    "shell",
    "upstream",
    "priority",
    "retries",
    "retry_delay",
    "timeout",
    "env",
    "cwd",
    "executor",
    "queue",
)
_TASK_KEY_SET = frozenset(TASK_KEYS)
DEFAULT_QUEUE = "default"
STRING_SOURCE = "<string>"

_ID_RULE = ID_RULE
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")

# Bounds on a task's numbers, shared by workflow files, `execconsole submit` and
# the console's actions (console/actions.py), so that nothing the engine cannot
# store or schedule is ever accepted:
# - priority: a signed 32-bit integer, as Airflow bounds priority_weight. The
#   store's column holds 64 bits, but a 32-bit value also survives being
#   negated or summed there, and is more room than any ordering needs.
# - retries: 0 to 1000; more is a loop, not a retry policy.
# - retry_delay and timeout: at most a year (8760h); the engine adds them to
#   dates, which end in the year 9999.
PRIORITY_MIN = -(2**31)
PRIORITY_MAX = 2**31 - 1
RETRIES_MAX = 1000
SECONDS_MAX = 365 * 24 * 3600.0
SECONDS_MAX_TEXT = "8760h (a year)"


class WorkflowError(ValueError):
    """A workflow file that cannot be used; ``str()`` is one line for operators.

    Attributes:
        errors: every problem found, each a one-line message.
    """

    def __init__(self, errors: str | list[str]) -> None:
        self.errors: list[str] = [errors] if isinstance(errors, str) else list(errors)
        message = self.errors[0]
        if len(self.errors) > 1:
            message += f" (and {len(self.errors) - 1} more)"
        super().__init__(message)


@dataclass(slots=True)
class TaskSpec:
    """One task of a workflow, as written in the file, with defaults filled in.

    ``command`` is an argv list; with ``shell`` true it is a one-element list
    holding the shell string (the same convention as ``Workload.command``).
    A value, never changed once parsed; not a frozen dataclass because that
    costs 5.8 us to build against 1.6 us, once per task of a file.
    """

    id: str
    command: list[str]
    shell: bool = False
    upstream: list[str] = field(default_factory=list)
    priority: int = 1
    retries: int = 0
    retry_delay: float = 0.0
    timeout: float | None = None
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    executor: str | None = None
    queue: str = DEFAULT_QUEUE


@dataclass(frozen=True)
class WorkflowSpec:
    """A validated workflow: its id (the dag id), description and tasks in file order."""

    dag_id: str
    tasks: list[TaskSpec]
    description: str = ""
    source: str = STRING_SOURCE

    @property
    def task_ids(self) -> list[str]:
        """Task ids in file order."""
        return [task.id for task in self.tasks]

    def task(self, task_id: str) -> TaskSpec:
        """The task with this id; KeyError if there is none."""
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise KeyError(task_id)

    def downstream(self, task_id: str) -> list[str]:
        """Ids of the tasks that list ``task_id`` as upstream, in file order."""
        return [task.id for task in self.tasks if task_id in task.upstream]


# ---- public entry points ---------------------------------------------------


def load_workflow(path: str | Path, known_executors: Collection[str] | None = None) -> WorkflowSpec:
    """Read and validate the workflow file at ``path``.

    Relative ``cwd`` values are taken relative to the file's folder, so a
    workflow runs the same from wherever it is started. With
    ``known_executors`` (as ``run`` and ``check`` load it), each ``cwd`` must
    be an existing folder on this machine (see ``parse_workflow``).

    Raises:
        WorkflowError: the file is missing, unreadable, not TOML or not valid.
    """
    path = Path(path)
    source = str(path)
    if path.is_dir():
        inside = sorted(p.name for p in path.glob("*.toml"))[:3]
        hint = f" (it holds {', '.join(inside)})" if inside else ""
        raise WorkflowError(
            f"{source}: is a directory{hint}; give the path of a .toml workflow file"
        )
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise WorkflowError(f"{source}: no such workflow file; check the path") from None
    except OSError as error:
        raise WorkflowError(f"{source}: cannot read it: {error.strerror or error}") from None
    try:
        # "utf-8-sig": a byte-order mark, as Windows editors write it, is not part of the TOML.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise WorkflowError(
            f"{source}: not UTF-8 text (bad byte at offset {error.start}); save it as UTF-8"
        ) from None
    return parse_workflow(
        text, source=source, known_executors=known_executors, base_dir=path.parent.absolute()
    )


def parse_workflow(
    text: str,
    source: str = STRING_SOURCE,
    known_executors: Collection[str] | None = None,
    base_dir: str | Path | None = None,
) -> WorkflowSpec:
    """Parse and validate workflow TOML held in a string.

    Args:
        text: the TOML document.
        source: how messages name the document (usually its path).
        known_executors: executor names a task may use; None accepts any name.
            Given, the workflow is checked as it would run here: each task's
            ``cwd`` (once joined to ``base_dir``) must be an existing folder too,
            as ``submit --cwd`` requires.
        base_dir: folder that relative ``cwd`` values are joined to; None keeps them as written.

    Raises:
        WorkflowError: the text is not TOML or not a valid workflow.
    """
    try:
        document = tomli.loads(text)
    except tomli.TOMLDecodeError as error:
        raise WorkflowError(_toml_error_line(source, str(error))) from None
    return validate_workflow(document, source, known_executors, base_dir)


def validate_workflow(
    document: dict[str, Any],
    source: str = STRING_SOURCE,
    known_executors: Collection[str] | None = None,
    base_dir: str | Path | None = None,
) -> WorkflowSpec:
    """Validate an already-parsed TOML document (see ``parse_workflow``)."""
    errors: list[str] = []

    def report(message: str) -> None:
        errors.append(f"{source}: {message}")

    for key in document:
        if key not in TOP_LEVEL_KEYS:
            report(_unknown_key(key, TOP_LEVEL_KEYS, "at the top level") + _tasks_hint(key))

    dag_id = document.get("id")
    if dag_id is None:
        report("'id' is missing; add id = \"my_workflow\" at the top of the file")
    elif not isinstance(dag_id, str):
        report(f"'id' must be a string, got {_show(dag_id)}")
    elif not is_valid_id(dag_id):
        report(f"'id' {_show(dag_id)} is not a valid id; use {_ID_RULE}")

    description = document.get("description", "")
    if not isinstance(description, str):
        report(f"'description' must be a string, got {_show(description)}")
        description = ""

    raw_tasks = document.get("task")
    tables: list[dict[str, Any]] = []
    if raw_tasks is None:
        if "tasks" not in document:
            report("no tasks; add at least one [[task]] table with an id and a command")
    elif isinstance(raw_tasks, dict):
        report("'task' is a single table; write each task as [[task]] (double brackets)")
    elif not isinstance(raw_tasks, list) or not all(isinstance(t, dict) for t in raw_tasks):
        report(f"'task' must be written as [[task]] tables, got {_show(raw_tasks)}")
    else:
        tables = raw_tasks

    defaults = _parse_defaults(document.get("defaults"), source, known_executors, base_dir, errors)
    tasks, upstream_of = _parse_tasks(tables, source, known_executors, base_dir, errors, defaults)
    _check_graph(upstream_of, source, errors)

    if errors:
        raise WorkflowError(errors)
    assert isinstance(dag_id, str)
    return WorkflowSpec(dag_id=dag_id, tasks=tasks, description=description, source=source)


def topological_order(spec: WorkflowSpec) -> list[TaskSpec]:
    """Tasks so that each follows its upstreams; among ready tasks, file order decides.

    Raises:
        WorkflowError: the tasks form a cycle (possible only for hand-built specs).
    """
    if _in_file_order(spec.tasks):
        # The usual case, and then the heap walk below returns file order
        # anyway: every task is ready by the time the earlier ones are out
        # (10,000 tasks: 13 ms -> 2 ms).
        return list(spec.tasks)
    position = {task.id: index for index, task in enumerate(spec.tasks)}
    waiting = {task.id: len(set(task.upstream)) for task in spec.tasks}
    downstream: dict[str, list[str]] = {task.id: [] for task in spec.tasks}
    for task in spec.tasks:
        for upstream_id in set(task.upstream):
            downstream[upstream_id].append(task.id)
    # A heap of file positions: the earliest ready task comes out first, and a
    # 10,000-task workflow orders in milliseconds (re-sorting a list took seconds).
    ready = [position[tid] for tid, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    ordered: list[TaskSpec] = []
    while ready:
        task = spec.tasks[heapq.heappop(ready)]
        ordered.append(task)
        for child in downstream[task.id]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, position[child])
    if len(ordered) != len(spec.tasks):
        cycle = _find_cycle({task.id: task.upstream for task in spec.tasks})
        path = " → ".join(cycle) if cycle else "?"
        raise WorkflowError(f"{spec.source}: dependency cycle: {path}")
    return ordered


def _in_file_order(tasks: list[TaskSpec]) -> bool:
    """True when the ids are unique and each task's upstreams come before it."""
    earlier: set[str] = set()
    for task in tasks:
        if task.id in earlier or not earlier.issuperset(task.upstream):
            return False
        earlier.add(task.id)
    return True


# ---- tasks -----------------------------------------------------------------


class _Invalid(Exception):
    """One key's problem; the message is the part after ``task '...':``."""


def _parse_tasks(
    tables: list[dict[str, Any]],
    source: str,
    known_executors: Collection[str] | None,
    base_dir: str | Path | None,
    errors: list[str],
    defaults: dict[str, Any] | None = None,
) -> tuple[list[TaskSpec], dict[str, list[str]]]:
    """Valid TaskSpecs, plus the upstream ids of every task with a well-formed id.

    The graph is checked over every such task, valid or not, so that a file
    with a bad field also gets its unknown upstreams and cycles listed (and a
    bad key in one task does not turn every reference to it into an error).
    """
    tasks: list[TaskSpec] = []
    upstream_of: dict[str, list[str]] = {}
    first_seen: dict[str, int] = {}
    checked_dirs: dict[str, str | None] = {}  # most tasks share a cwd: look at each folder once
    for number, table in enumerate(tables, start=1):
        # This task's messages without the "file: task '...': " prefix, which is
        # added only when there are some: building the label and a reporting
        # closure for every task took 40 ms -> 35 ms for 10,000 tasks.
        problems: list[str] = []

        # One pass sorts the keys: unknown ones are reported now, and the
        # per-key checks below run only for a task that has optional keys
        # (most have just an id and a command: 10,000 tasks, 35 ms -> 30 ms).
        has_optional_keys = False
        for key in table:
            if key in _FIELD_CHECKS:
                has_optional_keys = True
            elif key not in _TASK_KEY_SET:
                problems.append(_unknown_key(key, TASK_KEYS, "in a task"))

        raw_id = table.get("id")
        task_id: str | None = None
        if raw_id is None:
            problems.append("'id' is missing; give every [[task]] an id = \"...\"")
        elif not isinstance(raw_id, str):
            problems.append(f"'id' must be a string, got {_show(raw_id)}")
        elif not is_valid_id(raw_id):
            problems.append(f"'id' {_show(raw_id)} is not a valid id; use {_ID_RULE}")
        elif raw_id in first_seen:
            problems.append(
                f"duplicate id; task #{first_seen[raw_id]} already uses it, ids must be unique"
            )
        else:
            task_id = raw_id
            first_seen[raw_id] = number

        # shell decides which command form is right, so it is checked first;
        # the command comes next because it is the key most often wrong.
        values: dict[str, Any] = {}
        shell: bool | None = False
        if "shell" in table:
            try:
                shell = values["shell"] = _check_shell(table["shell"])
            except _Invalid as problem:
                problems.append(str(problem))
                shell = None  # unknown: do not guess which command form was meant
        try:
            values["command"] = _check_command(table.get("command"), shell)
        except _Invalid as problem:
            problems.append(str(problem))
        if has_optional_keys:
            for key, check in _FIELD_CHECKS.items():
                if key not in table:
                    continue
                try:
                    values[key] = check(table[key])
                except _Invalid as problem:
                    problems.append(str(problem))

        executor = values.get("executor")
        if executor is not None and known_executors is not None and executor not in known_executors:
            problems.append(_unknown_executor(executor, known_executors))

        if "cwd" in values:
            if base_dir is not None:
                values["cwd"] = str(Path(base_dir, values["cwd"]))
            if known_executors is not None:
                unusable = _cwd_problem(values["cwd"], checked_dirs)
                if unusable:
                    problems.append(unusable)
        if defaults:
            _apply_defaults(values, defaults)

        if task_id is not None:
            upstream_of[task_id] = values.get("upstream") or []
        if problems:
            label = f"task {raw_id!r}" if isinstance(raw_id, str) and raw_id else f"task #{number}"
            errors.extend(f"{source}: {label}: {message}" for message in problems)
        elif task_id is not None:
            tasks.append(TaskSpec(id=task_id, **values))
    return tasks, upstream_of


# Keys a [defaults] table may hold: what a task may set but its identity and
# shape (id, command, shell) and its place in the graph (upstream).
DEFAULT_KEYS = ("priority", "retries", "retry_delay", "timeout", "env", "cwd", "executor", "queue")


def _parse_defaults(
    value: object,
    source: str,
    known_executors: Collection[str] | None,
    base_dir: str | Path | None,
    errors: list[str],
) -> dict[str, Any]:
    """The ``[defaults]`` table's checked values (empty when absent or wrong).

    Checked once, here, with a task's own checks: a bad default is one
    message naming [defaults], not one per task.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.append(
            f"{source}: 'defaults' must be a table such as [defaults] with retries = 2, "
            f"got {_show(value)}"
        )
        return {}
    defaults: dict[str, Any] = {}
    for key, setting in value.items():
        if key not in DEFAULT_KEYS:
            if key in _TASK_KEY_SET:
                errors.append(f"{source}: [defaults]: {key!r} can only be set on each task")
            else:
                errors.append(f"{source}: {_unknown_key(key, DEFAULT_KEYS, 'in [defaults]')}")
            continue
        try:
            defaults[key] = _FIELD_CHECKS[key](setting)
        except _Invalid as problem:
            errors.append(f"{source}: [defaults]: {problem}")
    executor = defaults.get("executor")
    if executor is not None and known_executors is not None and executor not in known_executors:
        errors.append(f"{source}: [defaults]: {_unknown_executor(executor, known_executors)}")
    if "cwd" in defaults:
        if base_dir is not None:
            defaults["cwd"] = str(Path(base_dir, defaults["cwd"]))
        unusable = None if known_executors is None else _cwd_problem(defaults["cwd"], {})
        if unusable:
            errors.append(f"{source}: [defaults]: {unusable}")
            del defaults["cwd"]  # one message, not one more per task
    return defaults


def _cwd_problem(cwd: str, checked: dict[str, str | None]) -> str | None:
    """Why ``cwd`` cannot be a task's working directory here (None: it is a folder).

    Only an absolute path is looked at: a relative one, with no workflow
    file to be relative to, means the engine's own directory.
    """
    if cwd in checked:
        return checked[cwd]
    import os

    problem = None
    if os.path.isabs(cwd):
        relative = "a relative cwd is taken from the workflow file's folder"
        if not os.path.exists(cwd):
            problem = f"'cwd' {cwd} does not exist: create it, or fix the path ({relative})"
        elif not os.path.isdir(cwd):
            problem = f"'cwd' {cwd} is a file, not a folder: fix the path ({relative})"
    checked[cwd] = problem
    return problem


def _apply_defaults(values: dict[str, Any], defaults: dict[str, Any]) -> None:
    """Fill a task's unset keys from [defaults]; env tables merge, the task's names winning."""
    for key, default in defaults.items():
        if key not in values:
            values[key] = default
        elif key == "env":
            values["env"] = {**default, **values["env"]}


def _check_command(value: object, shell: bool | None) -> list[str]:
    """The command as an argv list (one element when shell is true)."""
    if value is None:
        raise _Invalid(
            '\'command\' is missing; give an argv list such as ["echo", "hi"], '
            "or a string together with shell = true"
        )
    if isinstance(value, str):
        if shell is None:
            raise _Invalid("'command' is a string; that needs shell = true")
        if not shell:
            operator = shell_syntax(value)
            if operator is not None:
                # As an argv list, a pipe or redirection would be a plain word.
                raise _Invalid(
                    f"'command' is a string with shell syntax ({operator}) but shell is not true; "
                    "set shell = true to run it through /bin/sh"
                )
            raise _Invalid(
                f"'command' is a string but shell is not true; write it as an argv list{_argv_hint(value)}"
                ", or set shell = true to run it through /bin/sh"
            )
        if not value.strip():
            raise _Invalid("'command' is an empty shell string; give the shell command to run")
        if "\0" in value:
            raise _Invalid("'command' contains a NUL character, which no process can receive")
        return [value]
    if not isinstance(value, list):
        raise _Invalid(
            f"'command' must be an argv list of strings (or a string with shell = true), got {_show(value)}"
        )
    if shell:
        raise _Invalid(
            "'command' must be one string when shell = true, got an array; "
            'write command = "..." or drop shell = true'
        )
    if not value:
        raise _Invalid("'command' is empty; give at least the program to run")
    for position, element in enumerate(value, start=1):
        if not isinstance(element, str):
            raise _Invalid(
                f"'command' element {position} must be a string, got {_show(element)}"
                + _quote_hint(element, "")
            )
        if "\0" in element:
            raise _Invalid(
                f"'command' element {position} contains a NUL character, which no process can receive"
            )
    # Empty arguments after the program are legitimate (printf "", grep ""),
    # but an empty program name can never start.
    if not value[0].strip():
        raise _Invalid("'command' starts with an empty program name; give the program to run first")
    return list(value)


def _argv_hint(text: str) -> str:
    """` such as ["sleep", "1"]` built from the string, when it splits cleanly."""
    try:
        argv = shlex.split(text)
    except ValueError:
        return ""
    hint = json.dumps(argv, ensure_ascii=False)
    return f" such as {hint}" if argv and len(hint) <= 80 else ""


def _check_shell(value: object) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"'shell' must be true or false, got {_show(value)}")
    return value


def _check_upstream(value: object) -> list[str]:
    if isinstance(value, str):
        raise _Invalid(f"'upstream' must be a list of task ids; write upstream = [{_show(value)}]")
    if not isinstance(value, list):
        raise _Invalid(f"'upstream' must be a list of task ids, got {_show(value)}")
    ids: list[str] = []
    for element in value:
        if not isinstance(element, str):
            raise _Invalid(f"'upstream' must hold task id strings, got {_show(element)}")
        if element not in ids:  # listing a task twice means nothing more than once
            ids.append(element)
    return ids


def _integer_check(key: str, minimum: int, maximum: int) -> Any:
    def check(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise _Invalid(
                f"'{key}' must be an integer from {minimum} to {maximum}, got {_show(value)}"
            )
        return value

    return check


def _check_retry_delay(value: object) -> float:
    try:
        seconds = parse_duration(value)
    except DurationError as error:
        seconds, why = -1.0, _why_not(value, error)
    else:
        why = ""
    if not 0 <= seconds <= SECONDS_MAX:
        raise _Invalid(
            f"'retry_delay' must be seconds from 0 to {SECONDS_MAX_TEXT} (a number, or a duration"
            f' such as "30s" or "2m"), got {_show(value)}{why}'
        )
    return seconds


def _check_timeout(value: object) -> float:
    try:
        seconds = parse_duration(value)
    except DurationError as error:
        seconds, why = 0.0, _why_not(value, error)
    else:
        why = ""
    if not 0 < seconds <= SECONDS_MAX:
        raise _Invalid(
            f"'timeout' must be seconds > 0 and at most {SECONDS_MAX_TEXT} (a number, or a duration"
            f' such as "90s"), got {_show(value)}{why}; leave it out for no timeout'
        )
    if seconds < TIMEOUT_MIN:
        raise _Invalid(
            f"'timeout' must be at least 1ms ({TIMEOUT_MIN:g} seconds), got {_show(value)}; "
            "leave it out for no timeout"
        )
    return seconds


def _why_not(value: object, error: DurationError) -> str:
    """Why a string is not a duration, when there is more to say than that it is not one.

    A quoted number has no unit: `` (write 10 for seconds, or "10s")``.
    """
    if not isinstance(value, str) or str(error) == "not a duration":
        return ""
    number = value.strip()
    if number.replace(".", "", 1).isdigit():
        return f' (write {number} for seconds, or "{number}s")'
    return f" ({error})"


def _check_env(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        raise _Invalid(
            f"'env' must be a table of strings such as {{ REGION = \"eu\" }}, got {_show(value)}"
        )
    env: dict[str, str] = {}
    for name, setting in value.items():
        if not name or "=" in name or "\0" in name:
            raise _Invalid(f"'env' name {_show(name)} is not a usable variable name")
        if not isinstance(setting, str):
            raise _Invalid(
                f"'env' value of {name} must be a string, got {_show(setting)}"
                + _quote_hint(setting, f"{name} = ")
            )
        if "\0" in setting:
            raise _Invalid(f"'env' value of {name} contains a NUL character")
        env[name] = setting
    return env


def _string_check(key: str) -> Any:
    def check(value: object) -> str:
        if not isinstance(value, str):
            raise _Invalid(f"'{key}' must be a string, got {_show(value)}")
        if not value.strip():
            raise _Invalid(f"'{key}' is empty; give a value or leave the key out")
        return value

    return check


def _check_cwd(value: object) -> str:
    text: str = _string_check("cwd")(value)
    return str(Path(text).expanduser())


# The per-key checks, in file-format order. Each returns the converted value or
# raises _Invalid with the message that follows "task '<id>': ".
_FIELD_CHECKS: dict[str, Any] = {
    "upstream": _check_upstream,
    "priority": _integer_check("priority", PRIORITY_MIN, PRIORITY_MAX),
    "retries": _integer_check("retries", 0, RETRIES_MAX),
    "retry_delay": _check_retry_delay,
    "timeout": _check_timeout,
    "env": _check_env,
    "cwd": _check_cwd,
    "executor": _string_check("executor"),
    "queue": _string_check("queue"),
}


# ---- the dependency graph --------------------------------------------------


def _check_graph(upstream_of: dict[str, list[str]], source: str, errors: list[str]) -> None:
    """Unknown upstream ids and cycles, reported against the task that names them.

    ``upstream_of``: each task id with its upstream ids (a task whose
    'upstream' itself is malformed has none here). _find_cycle follows only
    ids it has as keys, so the lists need no filtering first.
    """
    for task_id, upstream in upstream_of.items():
        for upstream_id in upstream:
            if upstream_id not in upstream_of:
                errors.append(
                    f"{source}: task {task_id!r}: 'upstream' names unknown task {upstream_id!r}"
                    + _did_you_mean(upstream_id, sorted(upstream_of))
                )
    cycle = _find_cycle(upstream_of)
    if cycle:
        errors.append(
            f"{source}: dependency cycle: {' → '.join(cycle)}; remove one of these upstream links"
        )


def _find_cycle(upstream_of: Mapping[str, list[str]]) -> list[str] | None:
    """One cycle as ids in run order (a → b means b lists a as upstream), or None.

    Takes each task's upstream ids by task id: building a TaskSpec per task
    just for this walk was half the cost of checking a 10,000-task file.
    """
    done: set[str] = set()
    for start in upstream_of:
        # A task without upstream links cannot be on a cycle; skipping it
        # (most tasks of a large workflow) saves setting up a walk for each.
        # With the unfiltered lists above: 10,000 tasks checked in 3 ms, not 13.
        if start in done or not upstream_of[start]:
            continue
        # Iterative depth-first walk along upstream links; `path` is the
        # current chain, `on_path` makes the back-edge test O(1).
        path: list[str] = [start]
        on_path = {start}
        pending = [iter(upstream_of[start])]
        while pending:
            following = next(pending[-1], None)
            if following is None:
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
                pending.pop()
                continue
            if following in on_path:
                loop = path[path.index(following) :] + [following]
                return list(reversed(loop))
            if following in done or following not in upstream_of:
                continue
            path.append(following)
            on_path.add(following)
            pending.append(iter(upstream_of[following]))
    return None


# ---- messages --------------------------------------------------------------


def _toml_error_line(source: str, message: str) -> str:
    """``file:line:col: invalid TOML: ...`` from tomllib's message, which ends with the position."""
    match = _TOML_POSITION.search(message)
    if match:
        detail = message[: match.start()]
        return f"{source}:{match[1]}:{match[2]}: invalid TOML: {detail}"
    return f"{source}: invalid TOML: {message}"


def _unknown_key(key: str, known: Iterable[str], where: str) -> str:
    known = list(known)
    suggestion = _did_you_mean(key, known)
    if suggestion:
        return f"unknown key {key!r} {where}{suggestion}"
    return f"unknown key {key!r} {where}; known keys: {', '.join(known)}"


def _tasks_hint(key: str) -> str:
    if key == "tasks":
        return "; write each task as a [[task]] table"
    return ""


def _unknown_executor(name: str, known: Collection[str]) -> str:
    names = sorted(known)
    listed = ", ".join(names) if names else "none"
    return f"unknown executor {name!r}{_did_you_mean(name, names)}; known executors: {listed}"


def _quote_hint(value: object, prefix: str) -> str:
    """`; quote it: "1"` for numbers and booleans, which TOML would otherwise not make strings."""
    if isinstance(value, bool | int | float):
        return f"; quote it: {prefix}{json.dumps(_show(value))}"
    return ""


def _did_you_mean(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _show(value: object) -> str:
    """A value as it would look in TOML, short and on one line."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, int | float):
        text = repr(value)
    elif isinstance(value, dict):
        text = "a table"
    elif isinstance(value, list):
        text = "[" + ", ".join(_show(element) for element in value) + "]"
    else:
        text = str(value)  # dates and times print as TOML writes them
    return text if len(text) <= 60 else text[:57] + "..."
