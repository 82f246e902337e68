"""The real `execconsole run examples/demo.toml` in a real terminal (tmux): keys in, screen out.

Afterwards no process of the run may be left: the console, its engine, the
LocalExecutor's forkserver and workers, and every task they started all
carry the test's EXECCONSOLE_HOME in their environment, so psutil finds any
that outlived the console.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from store import Store
from tests.tui.harness import no_process_left, processes_of

REPO = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 45.0


def executable() -> str:
    beside = Path(sys.executable).with_name("execconsole")
    found = str(beside) if beside.exists() else shutil.which("execconsole")
    if found is None:
        pytest.fail("the execconsole entry point is not installed: pip install -e .")
    return found


class Terminal:
    """A tmux server of our own (its own socket) with one 160x50 window."""

    def __init__(self, socket_name: str) -> None:
        self.socket_name = socket_name

    def tmux(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-L", self.socket_name, *args], capture_output=True, text=True, timeout=30
        )

    def start(self, command: str) -> None:
        result = self.tmux("new-session", "-d", "-s", "console", "-x", "160", "-y", "50", command)
        assert result.returncode == 0, result.stderr

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "console").stdout

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "console", *keys)

    @property
    def alive(self) -> bool:
        return self.tmux("has-session", "-t", "console").returncode == 0

    def wait(
        self, condition: Callable[[], object], what: str, timeout: float = WAIT_SECONDS
    ) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"not within {timeout:g}s: {what}\n--- screen ---\n{self.screen()}"
                )
            time.sleep(0.1)

    def wait_for_text(self, text: str, timeout: float = WAIT_SECONDS) -> None:
        self.wait(lambda: text in self.screen(), f"{text!r} on screen", timeout)


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    if shutil.which("tmux") is None:
        pytest.fail("tmux is needed for the end-to-end test")
    made = Terminal(f"execconsole-test-{os.getpid()}")
    yield made
    made.tmux("kill-server")


def console_command(home: Path, arguments: str) -> str:
    """The real binary in a clean environment (COLUMNS or LINES inherited from the
    test runner would override the terminal's real size)."""
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "TERM": "xterm-256color",
        "EXECCONSOLE_HOME": str(home),
    }
    return " ".join(
        [
            "cd",
            shlex.quote(str(REPO)),
            "&& exec env -i",
            *(shlex.quote(f"{key}={value}") for key, value in environment.items()),
            shlex.quote(executable()),
            arguments,
        ]
    )


def console_and_engine(home: Path) -> tuple[psutil.Process, psutil.Process]:
    """The console process and the engine process it started (its child, in another session)."""
    (engine,) = [p for p in processes_of(home) if "console.tui.engine_process" in p.cmdline()]
    console = engine.parent()
    assert console is not None and "execconsole" in " ".join(console.cmdline())
    assert os.getsid(engine.pid) == engine.pid != os.getsid(console.pid)
    return console, engine


def assert_nothing_left(home: Path) -> None:
    left = no_process_left(home)
    assert not left, left
    with Store(home / "execconsole.db") as store:
        counts = store.count_by_state()
        assert counts["running"] == 0 and counts["queued"] == 0, counts
        assert store.lease_owner() is None


def test_the_demo_in_a_real_terminal_opens_steers_and_quits_leaving_no_process(
    terminal: Terminal, home: Path
) -> None:
    store_path = home / "execconsole.db"
    terminal.start(console_command(home, "run examples/demo.toml --parallelism 4"))

    terminal.wait_for_text("started by this console")
    console, engine = console_and_engine(home)
    assert f"engine pid {engine.pid}" in terminal.screen()
    terminal.wait(lambda: "local:" in terminal.screen(), "a task running on a LocalExecutor worker")
    screen = terminal.screen()
    for panel in ("1 Running", "2 Queued", "3 Events", "4 Timeline", "5 Workers"):
        assert panel in screen, screen
    # The Workers panel lists the engine process's workers (reported through its status).
    workers = [child.pid for child in engine.children(recursive=True) if "worker:" in child.name()]
    terminal.wait(
        lambda: any(str(pid) in terminal.screen() for pid in workers), "a worker pid listed"
    )

    terminal.keys("?")
    # A line near the top of the key table (the table is taller than 50 lines now).
    terminal.wait_for_text("Parallelism +1")
    terminal.keys("Escape")
    terminal.wait(lambda: "Parallelism +1" not in terminal.screen(), "help closed")

    terminal.keys("p")
    terminal.wait_for_text("PAUSED")
    with Store(store_path) as store:
        assert store.get_setting("paused") is True
    terminal.keys("p")
    terminal.wait(lambda: "PAUSED" not in terminal.screen(), "resumed")

    terminal.keys("q")
    terminal.wait_for_text("Quit?")
    terminal.keys("k")
    terminal.wait(lambda: not terminal.alive, "the console exited")
    assert_nothing_left(home)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
def test_a_console_told_to_stop_by_a_signal_stops_its_engine_and_leaves_no_process(
    terminal: Terminal, home: Path, tmp_path: Path, signum: signal.Signals
) -> None:
    workflow = tmp_path / "short.toml"
    workflow.write_text(
        'id = "short"\n'
        + "".join(f'[[task]]\nid = "t{n}"\ncommand = ["sleep", "1"]\n' for n in range(6)),
        encoding="utf-8",
    )
    terminal.start(console_command(home, f"run {shlex.quote(str(workflow))} --parallelism 2"))
    terminal.wait_for_text("started by this console")
    console, engine = console_and_engine(home)
    terminal.wait(lambda: "short/t" in terminal.screen(), "tasks shown")
    console.send_signal(signum)
    # As if the operator chose "let them finish": running tries end, nothing new starts.
    # (SIGKILL: the console cannot say so; the engine reads the end of its control pipe.)
    engine.wait(60)
    console.wait(60)
    assert_nothing_left(home)
    with Store(home / "execconsole.db") as store:
        counts = store.count_by_state()
        assert counts["failed"] == 0 and counts["success"] + counts["scheduled"] == 6, counts
