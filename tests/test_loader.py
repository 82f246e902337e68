"""Loading executors: every way of naming one, the executor list, and the example plug-in."""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from executors import loader
from executors.base import BaseExecutor, EventBufferValue
from executors.loader import (
    BUILTIN_EXECUTORS,
    ENTRY_POINT_GROUP,
    ExecutorConfigError,
    ExecutorSpec,
    available_executors,
    build_executors,
    load_executor_class,
    parse_executor_list,
    parse_executor_spec,
)
from executors.state import TaskState
from executors.task_key import TaskKey
from executors.workload import Workload
from tests.plugin_support import PLUGIN_ENTRY_POINT, PLUGIN_IMPORT_PATH, install_threads_plugin
from tests.sample_executors import EchoExecutor, NamelessExecutor

ROOT = Path(__file__).resolve().parent.parent
ECHO_PATH = "tests.sample_executors:EchoExecutor"
WAIT_SECONDS = 30.0  # a generous bound, never an expectation of speed


@pytest.fixture(scope="session", autouse=True)
def threads_plugin() -> None:
    """The example plug-in, installed as a third party would install it."""
    install_threads_plugin()


def importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def builtin_param(name: str, path: str, *needs: str) -> object:
    """A built-in executor, skipped while its module (or an optional dependency) is missing."""
    missing = [module for module in (path.partition(":")[0], *needs) if not importable(module)]
    return pytest.param(
        name, path, id=name, marks=pytest.mark.skipif(bool(missing), reason=f"no {missing}")
    )


# The plug-in always; built-ins once their modules exist in this checkout.
NAMED_EXECUTORS = [
    pytest.param(PLUGIN_ENTRY_POINT, PLUGIN_IMPORT_PATH, id="plugin"),
    builtin_param("local", BUILTIN_EXECUTORS["local"]),
    builtin_param("sequential", BUILTIN_EXECUTORS["sequential"]),
    builtin_param("celery", BUILTIN_EXECUTORS["celery"], "celery", "redis"),
]


# ---- what is available ------------------------------------------------------------


def test_builtins_are_available_by_short_name() -> None:
    available = available_executors()
    assert available["local"] == "executors.local:LocalExecutor"
    assert available["sequential"] == "executors.sequential:SequentialExecutor"
    assert available["celery"] == "executors.celery.executor:CeleryExecutor"


def test_an_installed_plugin_is_available_through_its_entry_point() -> None:
    points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    assert points[PLUGIN_ENTRY_POINT].value == PLUGIN_IMPORT_PATH
    assert available_executors()[PLUGIN_ENTRY_POINT] == PLUGIN_IMPORT_PATH


def test_a_new_interpreter_finds_the_plugin_with_no_help_from_the_tests() -> None:
    """Installing the package is the whole integration: no sys.path tricks."""
    script = (
        "from executors.loader import load_executor_class\n"
        f"print(load_executor_class({PLUGIN_ENTRY_POINT!r}).__module__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "execconsole_threads.executor"


def test_parsing_known_names_imports_none_of_their_modules() -> None:
    script = (
        "import sys\n"
        "from executors.loader import parse_executor_list\n"
        "parse_executor_list('local,SequentialExecutor,celery,threads,big:ThreadPoolTaskExecutor')\n"
        "heavy = ('executors.local', 'executors.sequential', 'executors.celery',"
        " 'execconsole_threads', 'celery', 'textual', 'typer')\n"
        "print(sorted(name for name in sys.modules if name.startswith(heavy)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# ---- every way of naming an executor ----------------------------------------------


@pytest.mark.parametrize(("name", "import_path"), NAMED_EXECUTORS)
def test_name_class_name_and_both_module_paths_give_the_same_executor(
    name: str, import_path: str
) -> None:
    module, _, class_name = import_path.partition(":")
    forms = [name, class_name, import_path, f"{module}.{class_name}"]
    specs = [parse_executor_spec(form) for form in forms]
    assert specs == [ExecutorSpec(name, import_path)] * len(forms)
    classes = {load_executor_class(spec) for spec in specs}
    assert len(classes) == 1


def test_the_entry_point_loads_the_class_the_loader_loads() -> None:
    point = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)[PLUGIN_ENTRY_POINT]
    assert point.load() is load_executor_class(PLUGIN_ENTRY_POINT)


@pytest.mark.parametrize(
    "entry",
    [
        f"fast:{PLUGIN_ENTRY_POINT}",
        "fast:ThreadPoolTaskExecutor",
        f"fast:{PLUGIN_IMPORT_PATH}",
        f"fast:{PLUGIN_IMPORT_PATH.replace(':', '.')}",
    ],
)
def test_an_alias_configures_the_executor_under_its_own_name(entry: str, tmp_path: Path) -> None:
    spec = parse_executor_spec(entry)
    assert spec == ExecutorSpec("fast", PLUGIN_IMPORT_PATH)
    executors = build_executors([spec], parallelism=2, home=tmp_path)
    assert list(executors) == ["fast"]
    assert executors["fast"].executor_name == "fast"
    assert type(executors["fast"]) is load_executor_class(PLUGIN_ENTRY_POINT)


@pytest.mark.parametrize("entry", [ECHO_PATH, ECHO_PATH.replace(":", ".")])
def test_an_unregistered_class_is_named_by_its_name_attribute(entry: str) -> None:
    spec = parse_executor_spec(entry)
    assert spec == ExecutorSpec("echo", ECHO_PATH)
    assert load_executor_class(spec) is EchoExecutor


def test_an_unregistered_class_without_a_name_needs_an_alias() -> None:
    path = "tests.sample_executors:NamelessExecutor"
    with pytest.raises(ExecutorConfigError, match="alias"):
        parse_executor_spec(path)
    spec = parse_executor_spec(f"plain:{path}")
    assert spec == ExecutorSpec("plain", path)
    assert load_executor_class(spec) is NamelessExecutor


def test_one_class_can_run_twice_under_two_aliases(tmp_path: Path) -> None:
    executors = build_executors(
        parse_executor_list(f"cpu:{PLUGIN_ENTRY_POINT},io:{PLUGIN_ENTRY_POINT}"), 2, tmp_path
    )
    assert list(executors) == ["cpu", "io"]
    assert executors["cpu"] is not executors["io"]


# ---- the executor list --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "default"),
    [(f"{PLUGIN_ENTRY_POINT},{ECHO_PATH}", PLUGIN_ENTRY_POINT), (f"{ECHO_PATH},threads", "echo")],
)
def test_the_first_configured_executor_is_the_default(
    text: str, default: str, tmp_path: Path
) -> None:
    specs = parse_executor_list(text)
    assert specs[0].name == default
    executors = build_executors(specs, parallelism=3, home=tmp_path)
    assert next(iter(executors)) == default
    assert [executor.executor_name for executor in executors.values()] == [
        spec.name for spec in specs
    ]


def test_spaces_around_entries_are_ignored() -> None:
    assert parse_executor_list(f" {PLUGIN_ENTRY_POINT} , {ECHO_PATH} ") == [
        ExecutorSpec(PLUGIN_ENTRY_POINT, PLUGIN_IMPORT_PATH),
        ExecutorSpec("echo", ECHO_PATH),
    ]


@pytest.mark.parametrize(
    "text",
    [
        f"{PLUGIN_ENTRY_POINT},{PLUGIN_ENTRY_POINT}",
        f"{PLUGIN_ENTRY_POINT},ThreadPoolTaskExecutor",
        f"{PLUGIN_ENTRY_POINT},{PLUGIN_IMPORT_PATH}",
        f"fast:{PLUGIN_ENTRY_POINT},fast:{ECHO_PATH}",
        f"echo:{PLUGIN_ENTRY_POINT},{ECHO_PATH}",
    ],
)
def test_two_entries_with_one_name_are_refused(text: str) -> None:
    with pytest.raises(ExecutorConfigError, match="configured twice") as raised:
        parse_executor_list(text)
    assert "\n" not in str(raised.value)


def test_build_refuses_duplicate_specs_made_by_hand() -> None:
    spec = ExecutorSpec("echo", ECHO_PATH)
    with pytest.raises(ExecutorConfigError, match="configured twice"):
        build_executors([spec, spec], parallelism=1)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        f"{PLUGIN_ENTRY_POINT},",
        f",{PLUGIN_ENTRY_POINT}",
        f"{PLUGIN_ENTRY_POINT},,{ECHO_PATH}",
        "a:b:c:d",
        f"fast:{PLUGIN_IMPORT_PATH}:extra",
        f"1fast:{PLUGIN_ENTRY_POINT}",
        f"fa.st:{PLUGIN_ENTRY_POINT}:X",
        f"fast:{PLUGIN_ENTRY_POINT}:",
        f":{PLUGIN_ENTRY_POINT}",
        f"fast :{PLUGIN_ENTRY_POINT}",
        "tests..sample_executors:EchoExecutor",
        "tests.sample_executors:1Echo",
        "tests.sample_executors.",
        "class.module:Executor",
    ],
)
def test_a_malformed_list_is_refused_in_one_line(text: str) -> None:
    with pytest.raises(ExecutorConfigError) as raised:
        parse_executor_list(text)
    message = str(raised.value)
    assert message
    assert "\n" not in message


@pytest.mark.parametrize("entry", ["nosuch", "fast:nosuch", f"{PLUGIN_ENTRY_POINT},NoSuchExecutor"])
def test_an_unknown_name_lists_every_available_executor(entry: str) -> None:
    with pytest.raises(ExecutorConfigError, match="unknown executor") as raised:
        parse_executor_list(entry)
    message = str(raised.value)
    for name in [*BUILTIN_EXECUTORS, PLUGIN_ENTRY_POINT]:
        assert name in message
    assert "\n" not in message


# ---- loading and building ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("import_path", "complaint"),
    [
        ("tests.sample_executors:NotAnExecutor", "not an executor class"),
        ("tests.sample_executors:NOT_A_CLASS", "not an executor class"),
        ("executors.base:BaseExecutor", "not an executor class"),
        ("tests.sample_executors:Missing", "has no 'Missing'"),
        ("tests.no_such_module:Executor", "cannot import tests.no_such_module"),
    ],
)
def test_only_a_subclass_of_base_executor_loads(import_path: str, complaint: str) -> None:
    with pytest.raises(ExecutorConfigError, match=complaint) as raised:
        load_executor_class(ExecutorSpec("odd", import_path))
    assert "'odd'" in str(raised.value)
    with pytest.raises(ExecutorConfigError, match=complaint):
        load_executor_class(f"odd:{import_path}")


def test_build_hands_each_executor_its_settings(tmp_path: Path) -> None:
    executors = build_executors(
        parse_executor_list(f"{PLUGIN_ENTRY_POINT},{ECHO_PATH}"),
        parallelism=3,
        home=tmp_path,
        options_by_name={
            "echo": {"parallelism": 7, "colour": "blue"},
            "not-configured": {"ignored": True},
        },
    )
    threads, echo = executors[PLUGIN_ENTRY_POINT], executors["echo"]
    assert (threads.parallelism, threads.options, threads.home) == (3, {}, str(tmp_path))
    assert (echo.parallelism, echo.options, echo.home) == (7, {"colour": "blue"}, str(tmp_path))


@pytest.mark.parametrize(
    ("parallelism", "options"),
    [(-1, {}), (2, {"parallelism": -4}), (2, {"parallelism": "many"}), (2, {"parallelism": True})],
)
def test_build_refuses_a_bad_parallelism_in_one_line(
    parallelism: int, options: dict[str, object]
) -> None:
    with pytest.raises(ExecutorConfigError, match="'echo'") as raised:
        build_executors(
            [ExecutorSpec("echo", ECHO_PATH)], parallelism, options_by_name={"echo": options}
        )
    assert "\n" not in str(raised.value)


def test_build_needs_at_least_one_executor() -> None:
    with pytest.raises(ExecutorConfigError, match="no executor"):
        build_executors([], parallelism=1)


# ---- what the plug-in vends, found only through the interface ----------------------------


@pytest.fixture
def plugin_class() -> type[BaseExecutor]:
    return load_executor_class(PLUGIN_ENTRY_POINT)


def test_the_plugin_declares_its_capabilities(plugin_class: type[BaseExecutor]) -> None:
    capabilities = plugin_class.capabilities()
    assert capabilities["supports_kill"] is True
    assert capabilities["supports_live_scaling"] is True
    assert capabilities["is_production"] is False
    assert capabilities["is_local"] is True


def test_the_plugin_cli_group_imports_and_runs_tasks(plugin_class: type[BaseExecutor]) -> None:
    import typer
    from typer.testing import CliRunner

    (group,) = plugin_class.cli_groups()
    assert group.name == PLUGIN_ENTRY_POINT
    app = group.load()
    assert isinstance(app, typer.Typer)
    result = CliRunner().invoke(app, ["smoke", "--tasks", "3", "--threads", "2"])
    assert result.exit_code == 0, result.output
    assert "3 succeeded, 0 failed" in result.output
    failing = CliRunner().invoke(app, ["smoke", "--tasks", "2", "--command", "exit 3"])
    assert failing.exit_code == 1
    assert "0 succeeded, 2 failed" in failing.output


def test_the_plugin_key_binding_grows_the_pool(plugin_class: type[BaseExecutor]) -> None:
    (binding,) = plugin_class.key_bindings()
    assert binding.capability is not None
    assert plugin_class.capabilities()[binding.capability] is True
    executor = plugin_class(2, name="pool")
    message = binding.action(executor, None)
    assert executor.parallelism == 3
    assert message is not None and "3" in message and "pool" in message


def test_the_plugin_panel_shows_the_pool(plugin_class: type[BaseExecutor], tmp_path: Path) -> None:
    from textual.app import App, ComposeResult

    (panel,) = plugin_class.console_panels()
    executor = plugin_class(4, home=str(tmp_path))
    widget = panel.load()(executor, None)

    class Host(App[None]):
        def compose(self) -> ComposeResult:
            yield widget

    async def scene() -> str:
        async with Host().run_test() as pilot:
            widget.refresh_panel(None)
            await pilot.pause()
            return str(widget.render())

    with running(executor):
        assert "0 started" in asyncio.run(scene())
        run_until_finished(executor, [workload(tmp_path, "one"), workload(tmp_path, "two")])
        text = asyncio.run(scene())
    assert "2 started, 0 busy, 2 idle" in text
    assert "Limit    4" in text
    assert "Done     2 tasks" in text


# ---- the plug-in is a real executor ---------------------------------------------------


def workload(home: Path, task_id: str, command: str = "true") -> Workload:
    return Workload(
        key=TaskKey("plugin", task_id, "run1"),
        command=[command],
        shell=True,
        log_path=str(home / "logs" / f"{task_id}.log"),
        token=uuid.uuid4().hex,
    )


@contextmanager
def running(executor: BaseExecutor) -> Iterator[BaseExecutor]:
    """Start the executor and always end it, so no task process outlives the test."""
    executor.start()
    try:
        yield executor
    finally:
        executor.end(timeout=WAIT_SECONDS)


def heartbeats(executor: BaseExecutor) -> Iterator[dict[TaskKey, EventBufferValue]]:
    """Heartbeat and yield each batch of events, failing after a generous deadline."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        executor.heartbeat()
        yield executor.get_event_buffer()
        time.sleep(0.01)
    raise AssertionError(f"{executor!r} did not finish within {WAIT_SECONDS}s")


def run_until_finished(
    executor: BaseExecutor, workloads: list[Workload]
) -> dict[TaskKey, list[EventBufferValue]]:
    """Queue workloads and heartbeat until each has finished; every event, in order, per key."""
    events: dict[TaskKey, list[EventBufferValue]] = {}
    for item in workloads:
        executor.queue_workload(item)
    for batch in heartbeats(executor):
        for key, value in batch.items():
            events.setdefault(key, []).append(value)
        if all(
            events.get(item.key, [])[-1:] and events[item.key][-1][0].is_finished
            for item in workloads
        ):
            break
    return events


def test_the_plugin_runs_each_task_as_a_process(
    plugin_class: type[BaseExecutor], tmp_path: Path
) -> None:
    executor = plugin_class(2, home=str(tmp_path))
    ok, bad = workload(tmp_path, "ok", "echo hello"), workload(tmp_path, "bad", "exit 3")
    with running(executor):
        events = run_until_finished(executor, [ok, bad, workload(tmp_path, "third")])

    # A fast task may start and end within one heartbeat; then only its last state shows.
    for key, values in events.items():
        assert [state for state, _ in values[:-1]] in ([], [TaskState.RUNNING]), key
    ok_state, ok_report = events[ok.key][-1]
    bad_state, bad_report = events[bad.key][-1]
    assert ok_state is TaskState.SUCCESS and ok_report is not None and ok_report.pid
    assert bad_state is TaskState.FAILED and bad_report is not None
    assert (bad_report.exit_code, bad_report.reason) == (3, "exited with code 3")
    assert Path(ok.log_path).read_text() == "hello\n"
    assert executor.running == set()


def test_the_plugin_kills_a_running_task(plugin_class: type[BaseExecutor], tmp_path: Path) -> None:
    executor = plugin_class(1, home=str(tmp_path))
    sleeper = workload(tmp_path, "sleeper", "sleep 60")
    final: EventBufferValue | None = None
    with running(executor):
        executor.queue_workload(sleeper)
        for batch in heartbeats(executor):
            if sleeper.key not in batch:
                continue
            state, report = batch[sleeper.key]
            if state is TaskState.RUNNING:
                assert report is not None and report.pid
                assert executor.kill(sleeper.key)
            else:
                final = batch[sleeper.key]
                break
    assert final is not None
    state, report = final
    assert state is TaskState.FAILED
    assert report is not None and report.reason == "killed by operator (killed by SIGTERM)"
    assert executor.kill(sleeper.key) is False


def test_terminating_the_plugin_leaves_no_process_behind(
    plugin_class: type[BaseExecutor], tmp_path: Path
) -> None:
    executor = plugin_class(2, home=str(tmp_path))
    sleepers = [workload(tmp_path, f"sleeper{n}", "sleep 60") for n in range(2)]
    pids: list[int] = []
    executor.start()
    try:
        for item in sleepers:
            executor.queue_workload(item)
        for batch in heartbeats(executor):
            pids += [report.pid for _, report in batch.values() if report and report.pid]
            if len(pids) == len(sleepers):
                break
    finally:
        executor.terminate()
    assert all(not psutil.pid_exists(pid) for pid in pids)
    finals = executor.get_event_buffer()
    assert {state for state, _ in finals.values()} == {TaskState.FAILED}


def test_built_in_names_are_resolved_without_scanning_installed_packages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Scanning entry points reads every installed package's metadata; `local` never needs it."""

    def no_scan(**_kwargs: object) -> None:
        raise AssertionError("entry points were scanned")

    monkeypatch.setattr(importlib.metadata, "entry_points", no_scan)
    specs = loader.parse_executor_list("local, sequential")
    assert [spec.name for spec in specs] == ["local", "sequential"]
    with pytest.raises(AssertionError, match="scanned"):
        loader.parse_executor_list("not-built-in")  # anything else still looks at plugins
