"""Shared test helpers: a private EXECCONSOLE_HOME, the real CLI, bounded waits."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("EXECCONSOLE")}
    env["EXECCONSOLE_HOME"] = str(home)
    env.update(extra)
    return env


def run_cli(
    home: Path, *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real `execconsole` entry point in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "console", *args],
        cwd=REPO,
        env=env or cli_env(home),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def start_cli(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "console", *args],
        cwd=REPO,
        env=env or cli_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )


def wait_until(
    condition: Callable[[], object],
    timeout: float = 60.0,
    interval: float = 0.05,
    message: str = "",
) -> object:
    """Poll ``condition`` until it is truthy; fail after a generous bound (never a timing assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {message or condition}")
        time.sleep(interval)


def processes_with_env_marker(marker: str) -> list[psutil.Process]:
    """Live processes whose environment carries ``marker`` (to find every task a test started)."""
    found = []
    for process in psutil.process_iter(["pid"]):
        try:
            if process.pid == os.getpid():
                continue
            if marker in process.environ().get("EXECCONSOLE_TEST_MARKER", ""):
                if process.status() != psutil.STATUS_ZOMBIE:
                    found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def descendants_alive(pid: int) -> list[psutil.Process]:
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
