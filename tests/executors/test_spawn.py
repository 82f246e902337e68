"""Starting tasks with posix_spawn: only where it does what Popen would, and never leaking a descriptor."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from executors import spawn
from executors.spawn import SpawnedProcess, start_task_process
from executors.state import TaskState
from executors.task_environment import InheritedEnvironment
from tests.executors.conftest import Driver, MakeLocal, make_workload

REPO = Path(__file__).resolve().parents[2]

# Run by a LocalExecutor worker: the task's descriptors, and which of its
# worker's descriptors above 2 a task could inherit (not close-on-exec).
LIST_DESCRIPTORS = textwrap.dedent(
    """
    import os
    for fd in sorted(os.listdir("/proc/self/fd"), key=int):
        try:
            print("task", fd, os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass  # the listing's own descriptor, closed once listed
    worker = os.getppid()
    for fd in os.listdir(f"/proc/{worker}/fdinfo"):
        try:
            with open(f"/proc/{worker}/fdinfo/{fd}") as info:
                flags = int(info.read().split("flags:")[1].split()[0], 8)
        except (OSError, IndexError):
            continue  # closed meanwhile
        if int(fd) > 2 and not flags & 0o2000000:
            print("inheritable", fd)
    """
)


def test_a_task_run_by_a_local_worker_inherits_only_stdin_stdout_and_stderr(
    make_local: MakeLocal, tmp_path: Path
) -> None:
    executor = make_local(1)
    driver = Driver(executor)
    workload = make_workload(tmp_path, [sys.executable, "-c", LIST_DESCRIPTORS])
    executor.queue_workload(workload)
    driver.until_finished(workload.key)
    assert driver.state(workload.key) is TaskState.SUCCESS, driver.reason(workload.key)

    lines = Path(workload.log_path).read_text().splitlines()
    task_descriptors = {line.split()[1] for line in lines if line.startswith("task ")}
    assert task_descriptors == {"0", "1", "2"}, lines
    # The worker sealed what the forkserver handed it, so posix_spawn may start tasks.
    assert [line for line in lines if line.startswith("inheritable ")] == []


def test_sealing_marks_every_descriptor_above_stderr_and_a_fork_must_seal_again() -> None:
    script = textwrap.dedent(
        """
        import os
        from executors import spawn
        read_end, write_end = os.pipe()
        os.set_inheritable(write_end, True)
        assert not spawn._sealed
        assert spawn.seal_inherited_descriptors()
        assert spawn._sealed
        assert not os.get_inheritable(write_end)
        assert os.get_inheritable(1)
        child = os.fork()
        if child == 0:
            os._exit(0 if not spawn._sealed else 1)
        assert os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) == 0
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.stdout == "ok\n", done.stderr


@pytest.fixture
def sealed(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if this process had sealed its descriptors (which would change pytest's own)."""
    monkeypatch.setattr(spawn, "_sealed", True)


@pytest.fixture
def output(tmp_path: Path) -> Iterator[int]:
    fd = os.open(tmp_path / "out.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    yield fd
    os.close(fd)


@pytest.fixture
def devnull() -> Iterator[int]:
    fd = os.open(os.devnull, os.O_RDONLY)
    yield fd
    os.close(fd)


@pytest.mark.usefixtures("sealed")
def test_posix_spawn_only_where_it_does_what_popen_would(
    tmp_path: Path, output: int, devnull: int
) -> None:
    environment = InheritedEnvironment()
    fast = start_task_process(
        ["true"], stdin=devnull, output=output, own_environment=environment.encoded
    )
    assert isinstance(fast, SpawnedProcess)
    assert fast.wait() == 0
    for slow in (
        # posix_spawn cannot change directory
        start_task_process(
            ["true"], stdin=devnull, output=output, cwd=str(tmp_path), own_environment={}
        ),
        # an environment of its own
        start_task_process(["true"], stdin=devnull, output=output, env={"PATH": os.defpath}),
        # this process's environment, not at hand encoded
        start_task_process(["true"], stdin=devnull, output=output),
    ):
        assert isinstance(slow, subprocess.Popen)
        assert slow.wait() == 0


def test_without_sealed_descriptors_tasks_start_through_popen(output: int, devnull: int) -> None:
    assert not spawn._sealed  # pytest's process never seals
    process = start_task_process(
        ["true"], stdin=devnull, output=output, own_environment=InheritedEnvironment().encoded
    )
    assert isinstance(process, subprocess.Popen)
    assert process.wait() == 0


@pytest.mark.usefixtures("sealed")
def test_a_spawned_process_is_waited_for_like_popen(output: int, devnull: int) -> None:
    encoded = InheritedEnvironment().encoded
    process = start_task_process(
        ["sleep", "300"], stdin=devnull, output=output, own_environment=encoded
    )
    assert isinstance(process, SpawnedProcess)
    assert process.poll() is None
    with pytest.raises(subprocess.TimeoutExpired):
        process.wait(timeout=0.05)
    os.killpg(process.pid, signal.SIGKILL)  # its own session and group
    assert process.wait(timeout=10) == -signal.SIGKILL
    assert process.returncode == -signal.SIGKILL
    assert process.poll() == -signal.SIGKILL

    exits = start_task_process(
        ["sh", "-c", "exit 7"], stdin=devnull, output=output, own_environment=encoded
    )
    assert exits.wait(timeout=10) == 7


def test_the_encoded_environment_follows_every_try(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXECCONSOLE_TEST_BASE", "base")
    monkeypatch.delenv("EXECCONSOLE_TEST_EXTRA", raising=False)
    environment = InheritedEnvironment()
    try:
        environment.apply({"EXECCONSOLE_TEST_BASE": "changed", "EXECCONSOLE_TEST_EXTRA": "é"})
        assert environment.encoded == dict(os.environb)
        assert environment.encoded[b"EXECCONSOLE_TEST_EXTRA"] == "é".encode()
        environment.apply({})
        assert environment.encoded == dict(os.environb)
        assert environment.encoded[b"EXECCONSOLE_TEST_BASE"] == b"base"
    finally:
        environment.apply({})
