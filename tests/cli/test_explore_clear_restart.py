"""`tasks retry --downstream` of a running task, then the engine is killed with kill -9.

The clear killed the running downstream try and promised a new try after it.
The engine dying before that try ended must not lose the promise: the next
engine runs the task again, after its cleared upstream, once.
"""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

import pytest

from tests.cli.test_retry_downstream import ran, rows, span, tries, write
from tests.helpers import cli_env, processes_with_env_marker, run_cli, start_cli, wait_until

# d swallows the first SIGTERM (a kill still under way when the engine dies),
# and runs until the gate opens; the second SIGTERM ends it.
SLOW_TO_DIE = """
id = "sd"
[[task]]
id = "a"
command = ["sh", "-c", "echo a >> {trace}"]
[[task]]
id = "d"
upstream = ["a"]
env = {{EXECCONSOLE_TEST_MARKER = "clear-restart-{marker}"}}
command = ["sh", "-c", "echo d >> {trace}; trap 'trap - TERM; echo TERM' TERM; while [ ! -e {gate} ]; do sleep 0.05; done"]
"""


@pytest.mark.parametrize("meanwhile", ["ends", "runs_on"])
def test_a_clear_of_a_running_task_survives_the_engine_being_killed(
    home: Path, tmp_path: Path, meanwhile: str
) -> None:
    trace, gate, marker = tmp_path / "trace", tmp_path / "gate", uuid.uuid4().hex
    workflow = write(home, "sd", SLOW_TO_DIE, trace=trace, gate=gate, marker=marker)
    # A kill's SIGKILL comes only after this grace: the first engine dies before it.
    env = cli_env(home, EXECCONSOLE__EXECUTOR__LOCAL__TERMINATE_GRACE="3600")
    first = start_cli(home, "run", str(workflow), "--headless", env=env)
    try:
        wait_until(lambda: ran(trace) == ["a", "d"], message="d running after a")
        cleared = run_cli(home, "tasks", "retry", "sd/a", "--downstream", env=env)
        assert cleared.returncode == 0, cleared.stderr
        assert "killing sd/d/" in cleared.stderr
        log = Path(rows(home, "SELECT log_path FROM task_instances WHERE task_id = 'd'")[0][0])
        wait_until(lambda: "TERM" in log.read_text(), message="d got the first SIGTERM")
        os.kill(first.pid, signal.SIGKILL)
        first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    if meanwhile == "ends":
        gate.touch()  # d's first try ends (exit 0) while no engine runs
        wait_until(lambda: not processes_with_env_marker(f"clear-restart-{marker}"))
    second = start_cli(home, "scheduler", "--until-idle", env=env)
    try:
        # Still running: the new engine adopts it and kills it again, as cleared.
        wait_until(lambda: len(tries(home, "sd")["d"]) == 2, message="d's new try")
        gate.touch()
        _out, err = second.communicate(timeout=120)
        assert second.returncode == 0, err
    finally:
        gate.touch()
        if second.poll() is None:
            second.kill()
            second.communicate()
    found = tries(home, "sd")
    assert found["a"] == [(1, "success"), (2, "success")]
    # d's first try: recorded by its worker as it ended (exit 0 after the gate:
    # success), or, when no record was left, failed by recovery into the clear's
    # restart (up_for_retry). Either way exactly one new try followed.
    assert found["d"] in ([(1, "up_for_retry"), (2, "success")], [(1, "success"), (2, "success")])
    assert sorted(ran(trace)) == ["a", "a", "d", "d"]
    assert span(home, "sd", "a", 2)[1] <= span(home, "sd", "d", 2)[0]  # after its upstream
    assert span(home, "sd", "d", 1)[1] <= span(home, "sd", "d", 2)[0]  # never side by side
    wait_until(lambda: not processes_with_env_marker(f"clear-restart-{marker}"))
