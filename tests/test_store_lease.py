"""The engine lease: who owns a store, and when an owner counts as gone."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import psutil
import pytest

from store import Store, StoreOwned
from tests.helpers import wait_until


def _pretend_owner(store: Store, pid: int) -> None:
    store.conn.execute(
        "INSERT INTO lease (name, pid, hostname, acquired_at, heartbeat) VALUES ('engine', ?, ?, ?, ?)",
        (pid, store.hostname, store.now(), store.clock().timestamp()),
    )


def test_a_live_owner_with_a_fresh_heartbeat_keeps_the_store(tmp_path: Path) -> None:
    with Store(tmp_path / "store.db") as store:
        _pretend_owner(store, os.getppid())
        owner = store.lease_owner()
        assert owner is not None and owner["pid"] == os.getppid()
        with pytest.raises(StoreOwned, match=f"pid {os.getppid()}"):
            store.acquire_lease()


def test_an_owner_killed_but_not_yet_reaped_has_given_the_store_up(tmp_path: Path) -> None:
    # A zombie: its parent (this test) has not waited for it, as a careless
    # supervisor of `execconsole scheduler` may never do.
    child = subprocess.Popen(["sleep", "60"])
    try:
        child.kill()
        wait_until(
            lambda: psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE,
            message="the killed child to become a zombie",
        )
        with Store(tmp_path / "store.db") as store:
            _pretend_owner(store, child.pid)
            assert store.lease_owner() is None
            store.acquire_lease()  # a new engine may start at once
            owner = store.lease_owner()
            assert owner is not None and owner["pid"] == os.getpid()
    finally:
        child.wait()
