"""Two `run --headless` on one store at once (two cron jobs overlapping).

The first becomes the engine; the second follows it. The first stops once its
own run is over (after letting the other run's running tries finish), so the
second must take the store over and finish its own run, not give up.
"""

from __future__ import annotations

import threading
from pathlib import Path

from store import Store
from tests.helpers import start_cli, wait_until


def _gated(path: Path, dag_id: str, gate: Path, *, then: str | None = None) -> Path:
    wait = f"while [ ! -e {gate} ]; do sleep 0.05; done"
    text = f'id = "{dag_id}"\n\n[[task]]\nid = "gated"\ncommand = ["sh", "-c", "{wait}"]\n'
    if then is not None:
        text += f'\n[[task]]\nid = "{then}"\ncommand = ["true"]\nupstream = ["gated"]\n'
    path.write_text(text)
    return path


def _state(home: Path, dag_id: str, task_id: str) -> str | None:
    with Store(home / "execconsole.db") as store:
        records = [r for r in store.list_tasks(dag_id=dag_id) if r.task_id == task_id]
    return str(records[-1].state) if records else None


def test_a_run_whose_engine_stops_first_takes_the_store_over_and_finishes(
    home: Path, tmp_path: Path
) -> None:
    first_gate, second_gate = tmp_path / "first.gate", tmp_path / "second.gate"
    first = start_cli(
        home, "run", str(_gated(tmp_path / "a.toml", "first", first_gate)), "--headless"
    )
    try:
        wait_until(lambda: _state(home, "first", "gated") == "running", message="first running")
        second = start_cli(
            home,
            "run",
            str(_gated(tmp_path / "b.toml", "second", second_gate, then="after")),
            "--headless",
        )
        try:
            wait_until(
                lambda: _state(home, "second", "gated") == "running", message="second running"
            )
            # The first run ends; its engine waits for the second run's running try
            # (started by it), then stops without starting "after".
            first_err_lines: list[str] = []
            reader = threading.Thread(
                target=lambda: first_err_lines.extend(iter(first.stderr.readline, "")),  # type: ignore[union-attr]
                daemon=True,
            )
            reader.start()
            first_gate.touch()
            wait_until(
                lambda: any("running try of other runs" in line for line in first_err_lines),
                message="the first engine waiting for the second run's try",
            )
            second_gate.touch()
            first.wait(timeout=60)
            reader.join(timeout=10)
            first_err = "".join(first_err_lines)
            assert first.returncode == 0, first_err
            _, second_err = second.communicate(timeout=60)
            assert second.returncode == 0, second_err
            assert "this process runs the engine now" in second_err
            assert _state(home, "second", "after") == "success"
        finally:
            if second.poll() is None:
                second.kill()
                second.communicate()
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()


def test_a_follower_that_outlives_a_killed_host_names_the_run_it_leaves_unfinished(
    home: Path, tmp_path: Path
) -> None:
    # The host is killed; the follower takes the store over, finishes its own run
    # and stops: the host's run is not over, and nothing else would say so.
    import os
    import signal

    gate = tmp_path / "first.gate"
    wait = f"while [ ! -e {gate} ]; do sleep 0.05; done"
    workflow = tmp_path / "a.toml"
    # Its worker dies with the host, so the try's exit status is unknown: it fails
    # into its retry, and the run is not over when the follower stops.
    workflow.write_text(
        f'id = "first"\n[[task]]\nid = "gated"\nretries = 1\ncommand = ["sh", "-c", "{wait}"]\n'
    )
    first = start_cli(home, "run", str(workflow), "--headless")
    second = None
    try:
        wait_until(lambda: _state(home, "first", "gated") == "running", message="first running")
        quick = tmp_path / "b.toml"
        quick.write_text('id = "second"\n[[task]]\nid = "quick"\ncommand = ["true"]\n')
        second = start_cli(home, "run", str(quick), "--headless")
        os.killpg(first.pid, signal.SIGKILL)  # the host, its forkserver and workers
        first.communicate()
        wait_until(lambda: _state(home, "second", "quick") == "success", message="second ran")
        gate.touch()  # the adopted try of the first run ends; its retry waits
        _, second_err = second.communicate(timeout=120)
        assert second.returncode == 0, second_err
        assert _state(home, "first", "gated") == "scheduled"
        with Store(home / "execconsole.db") as store:
            (run,) = store.runs(dag_id="first")
        assert (
            f"note: first/{run.run_id} not over and no engine runs this store now: "
            "`execconsole scheduler` carries on"
        ) in second_err
    finally:
        gate.touch()
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.communicate()
