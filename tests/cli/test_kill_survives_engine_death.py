"""An operator's kill (`tasks kill`, `runs cancel`) outlives the engine carrying it out.

The kill's signals come from the engine (SIGTERM, then SIGKILL after a grace).
If that engine is killed with kill -9 first, the next engine must finish the
job as asked: the try ends failed, "killed by operator", and no retry follows,
whatever the task's retries. Before, the "no retry" lived only in the dead
engine's memory: the next engine adopted the try and retried it.
"""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

import pytest

from tests.cli.test_retry_downstream import rows, tries, write
from tests.helpers import cli_env, processes_with_env_marker, run_cli, start_cli, wait_until

# The task swallows the first SIGTERM (so the kill is still under way when the
# engine dies) and runs until a second SIGTERM comes, or the gate opens: then
# it fails, as a killed task would (a success before the kill lands stays one).
# The trap is set before the task says it started: the kill may come at once.
STUBBORN = """
id = "st"
[[task]]
id = "stubborn"
retries = 2
env = {{EXECCONSOLE_TEST_MARKER = "kill-survives-{marker}"}}
command = ["sh", "-c", "trap 'trap - TERM; echo TERM' TERM; echo started >> {trace}; while [ ! -e {gate} ]; do sleep 0.05; done; exit 1"]
"""


@pytest.mark.parametrize("how", ["tasks kill", "runs cancel"])
@pytest.mark.parametrize("meanwhile", ["ends", "runs_on"])
def test_a_kill_under_way_is_finished_by_the_next_engine_without_a_retry(
    home: Path, tmp_path: Path, how: str, meanwhile: str
) -> None:
    trace, gate, marker = tmp_path / "trace", tmp_path / "gate", uuid.uuid4().hex
    workflow = write(home, "st", STUBBORN, trace=trace, gate=gate, marker=marker)
    # The kill's SIGKILL comes only after this grace: the first engine dies before it.
    env = cli_env(home, EXECCONSOLE__EXECUTOR__LOCAL__TERMINATE_GRACE="3600")
    first = start_cli(home, "run", str(workflow), "--headless", env=env)
    try:
        wait_until(lambda: trace.exists(), message="the task started")
        target = (
            ["tasks", "kill", "st/stubborn"] if how == "tasks kill" else ["runs", "cancel", "st"]
        )
        asked = run_cli(home, *target, env=env)
        assert asked.returncode == 0, asked.stderr
        log = Path(rows(home, "SELECT log_path FROM task_instances")[0][0])
        wait_until(lambda: "TERM" in log.read_text(), message="the first SIGTERM arrived")
        os.kill(first.pid, signal.SIGKILL)
        first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    if meanwhile == "ends":
        gate.touch()  # the try ends (exit 1) while no engine runs: the kill was under way
        wait_until(lambda: not processes_with_env_marker(f"kill-survives-{marker}"))
    second = start_cli(home, "scheduler", "--until-idle", env=env)
    try:
        # Still running: the new engine adopts it and kills it again.
        _out, err = second.communicate(timeout=120)
        assert second.returncode == 0, err
    finally:
        gate.touch()
        if second.poll() is None:
            second.kill()
            second.communicate()
    assert tries(home, "st") == {"stubborn": [(1, "failed")]}  # retries = 2, and none followed
    ((reason,),) = rows(home, "SELECT reason FROM task_instances")
    assert "by operator" in reason
    assert trace.read_text().count("started") == 1
    wait_until(lambda: not processes_with_env_marker(f"kill-survives-{marker}"))
