"""The LocalExecutor's forkserver dying is no reason to kill the tries its workers run.

Workers are forked by a forkserver; multiprocessing learns a worker's exit
status through it, and once it is gone reports every worker as exited with
code 255. The executor must see that its workers still live, let them finish
their tries (each ran once, each succeeded) and spawn later workers from a new
forkserver. Real processes: `execconsole run --headless`, its forkserver
SIGKILLed while two tries run.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil

from store import Store
from tests.helpers import descendants_alive, start_cli, wait_until


def _workflow(path: Path, gate: Path, marks: Path) -> Path:
    def gated(name: str) -> str:
        return (
            f"echo {name} >> {marks}; while [ ! -e {gate} ]; do sleep 0.05; done; "
            f"echo {name}_done >> {marks}"
        )

    path.write_text(
        'id = "fks"\n'
        f'[[task]]\nid = "a"\nshell = true\ncommand = "{gated("a")}"\n'
        f'[[task]]\nid = "b"\nshell = true\ncommand = "{gated("b")}"\n'
        f'[[task]]\nid = "c"\nshell = true\ncommand = "echo c >> {marks}"\nupstream = ["a", "b"]\n'
    )
    return path


def _states(home: Path) -> dict[str, str]:
    with Store(home / "execconsole.db") as store:
        return {record.task_id: str(record.state) for record in store.list_tasks(dag_id="fks")}


def _forkserver_of(pid: int) -> psutil.Process | None:
    for child in psutil.Process(pid).children():
        if "multiprocessing.forkserver" in " ".join(child.cmdline()):
            return child
    return None


def test_killing_the_forkserver_lets_running_tries_finish_and_later_ones_start(
    home: Path, tmp_path: Path
) -> None:
    gate, marks = tmp_path / "gate", tmp_path / "marks"
    run = start_cli(
        home, "run", str(_workflow(tmp_path / "fks.toml", gate, marks)), "--headless",
        "--parallelism", "2",
    )  # fmt: skip
    try:
        wait_until(
            lambda: _states(home).get("a") == "running" and _states(home).get("b") == "running",
            message="a and b running",
        )
        forkserver = wait_until(lambda: _forkserver_of(run.pid), message="the forkserver found")
        assert isinstance(forkserver, psutil.Process)
        workers = forkserver.children()
        assert len(workers) == 2
        os.kill(forkserver.pid, signal.SIGKILL)
        # The workers live on with their tries.
        wait_until(lambda: not forkserver.is_running() or forkserver.status() == "zombie")
        assert all(worker.is_running() for worker in workers)
        gate.touch()
        _, stderr = run.communicate(timeout=120)
    finally:
        gate.touch()
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    assert run.returncode == 0, stderr
    assert _states(home) == {"a": "success", "b": "success", "c": "success"}
    # Each try ran once, to its end; c ran after both.
    assert sorted(marks.read_text().split()) == ["a", "a_done", "b", "b_done", "c"]
    assert "forkserver died; worker" in stderr
    assert "died (" not in stderr  # no worker was taken for dead
    wait_until(lambda: not descendants_alive(run.pid), message="nothing left behind")
    assert not [worker for worker in workers if worker.is_running() and worker.status() != "zombie"]
