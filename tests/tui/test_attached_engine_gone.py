"""An attached console whose engine stops: it says so, and can host an engine itself."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from console.tui.confirm_screen import RestartScreen
from store import Store
from tests.tui.harness import Console

REPO = Path(__file__).resolve().parents[2]

ConsoleFactory = Callable[..., Console]


def _scheduler(home: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "console", "scheduler"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    with Store(home / "execconsole.db") as store:
        deadline = time.monotonic() + 60
        while (store.lease_owner() or {}).get("pid") != process.pid:
            assert process.poll() is None, "the scheduler exited"
            assert time.monotonic() < deadline, "the scheduler did not take the store"
            time.sleep(0.05)
        owner = store.lease_owner()
    assert owner is not None
    return process, owner


def test_an_attached_console_offers_to_host_an_engine_when_its_engine_stops(
    console: ConsoleFactory, home: Path
) -> None:
    home.mkdir(parents=True, exist_ok=True)
    scheduler, owner = _scheduler(home)
    try:
        c = console(hosted=False, attached_to=owner)

        async def scenario(pilot: Any) -> None:
            await c.wait(
                pilot,
                lambda: c.app.snapshot is not None and c.app.snapshot.header.mode == "attached",
                "attached",
            )
            scheduler.terminate()  # a clean stop: it gives the store up
            scheduler.wait(60)
            await c.wait(pilot, lambda: isinstance(c.app.screen, RestartScreen), "the offer")
            await c.wait(
                pilot,
                lambda: c.app.snapshot is not None and c.app.snapshot.header.mode == "watching",
                "shown watching",
            )
            assert "watching" in c.app.title
            await pilot.press("y")
            await c.wait(pilot, lambda: c.app.context.engine is not None, "an engine of its own")
            key = c.submit("true", task_id="after")
            await c.wait(pilot, lambda: c.state(key) == "success", "run by the new engine")
            assert c.app.snapshot is not None and c.app.snapshot.header.mode == "hosted"
            assert c.app.context.attached_to is None

        c.run(scenario)
    finally:
        if scheduler.poll() is None:
            scheduler.kill()
            scheduler.wait(60)


def test_a_read_only_console_follows_the_store_from_one_engine_to_the_next(
    console: ConsoleFactory, home: Path
) -> None:
    home.mkdir(parents=True, exist_ok=True)
    first, owner = _scheduler(home)
    second = None
    try:
        c = console(hosted=False, attached_to=owner, read_only=True)

        async def scenario(pilot: Any) -> None:
            nonlocal second
            first.terminate()
            first.wait(60)
            await c.wait(
                pilot,
                lambda: c.app.snapshot is not None and c.app.snapshot.header.mode == "watching",
                "watching once the engine stopped",
            )
            assert not isinstance(c.app.screen, RestartScreen)  # read-only: nothing offered
            second, new_owner = _scheduler(home)
            await c.wait(
                pilot,
                lambda: (c.app.context.attached_to or {}).get("pid") == second.pid,
                "attached to the next engine",
            )
            await c.wait(
                pilot,
                lambda: c.app.snapshot is not None and c.app.snapshot.header.mode == "attached",
                "shown attached",
            )
            assert f"pid {second.pid}" in c.app.title

        c.run(scenario)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(60)


def test_a_request_made_while_watching_says_it_waits_for_the_next_engine(
    console: ConsoleFactory, home: Path
) -> None:
    home.mkdir(parents=True, exist_ok=True)
    scheduler, owner = _scheduler(home)
    try:
        c = console(hosted=False, attached_to=owner)

        def said(text: str) -> bool:
            return any(text in note.message for note in c.app._notifications)

        async def scenario(pilot: Any) -> None:
            await c.wait(
                pilot,
                lambda: c.app.snapshot is not None and c.app.snapshot.header.mode == "attached",
                "attached",
            )
            scheduler.terminate()
            scheduler.wait(60)
            await c.wait(pilot, lambda: isinstance(c.app.screen, RestartScreen), "the offer")
            await pilot.press("n")  # keep watching
            await c.wait(pilot, lambda: c.app.screen is c.app.dashboard, "declined")
            await pilot.press("p")
            await c.wait(
                pilot, lambda: said("(pause) written: it runs when an engine starts"), "said"
            )

        c.run(scenario)
        assert [kind for (kind,) in c.store.conn.execute("SELECT kind FROM requests")] == ["pause"]
    finally:
        if scheduler.poll() is None:
            scheduler.kill()
            scheduler.wait(60)
