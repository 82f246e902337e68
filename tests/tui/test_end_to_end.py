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
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from store import Store
from tests.tui.harness import processes_of

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


def test_the_demo_in_a_real_terminal_opens_steers_and_quits_leaving_no_process(
    terminal: Terminal, home: Path
) -> None:
    store_path = home / "execconsole.db"
    # A clean environment: COLUMNS or LINES inherited from the test runner would
    # override the terminal's real size.
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "TERM": "xterm-256color",
        "EXECCONSOLE_HOME": str(home),
    }
    command = " ".join(
        [
            "cd",
            shlex.quote(str(REPO)),
            "&& exec env -i",
            *(shlex.quote(f"{key}={value}") for key, value in environment.items()),
            shlex.quote(executable()),
            "run examples/demo.toml --parallelism 4",
        ]
    )
    terminal.start(command)

    terminal.wait_for_text("hosting the engine")
    terminal.wait(lambda: "local:" in terminal.screen(), "a task running on a LocalExecutor worker")
    screen = terminal.screen()
    for panel in ("1 Running", "2 Queued", "3 Events", "4 Timeline", "5 Workers"):
        assert panel in screen, screen

    terminal.keys("?")
    terminal.wait_for_text("Command palette")
    terminal.keys("Escape")
    terminal.wait(lambda: "Command palette" not in terminal.screen(), "help closed")

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

    deadline = time.monotonic() + WAIT_SECONDS
    while (left := processes_of(home)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, [(p.pid, p.cmdline()) for p in left]
    with Store(store_path) as store:
        counts = store.count_by_state()
        assert counts["running"] == 0 and counts["queued"] == 0, counts
        assert store.lease_owner() is None
