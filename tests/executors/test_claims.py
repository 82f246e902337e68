"""Claim files: a try's token can be taken exactly once, by a worker or by a revoking engine."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from executors.claims import CLAIMED, FINISHED, REVOKED, STARTED, ClaimBook


def _race(directory: str, token: str, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    results.put(ClaimBook(directory).claim(token, worker_pid=multiprocessing.current_process().pid))


def test_only_one_of_many_processes_claims_a_token(tmp_path: Path) -> None:
    results: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    racers = [
        multiprocessing.Process(target=_race, args=(str(tmp_path), "t1", results)) for _ in range(8)
    ]
    for racer in racers:
        racer.start()
    outcomes = [results.get(timeout=30) for _ in racers]
    for racer in racers:
        racer.join(timeout=30)
    assert sorted(outcomes) == [False] * 7 + [True]


def test_a_claimed_token_cannot_be_revoked_and_a_revoked_one_cannot_be_claimed(
    tmp_path: Path,
) -> None:
    book = ClaimBook(tmp_path)
    assert book.claim("a", worker_pid=1)
    assert not book.revoke("a")
    assert book.revoke("b", why="engine restarted")
    assert not book.claim("b", worker_pid=1)
    assert book.read("b") == {"state": REVOKED, "why": "engine restarted"}
    assert book.read("never") is None


def test_records_are_updated_in_place_and_read_back_whole(tmp_path: Path) -> None:
    book = ClaimBook(tmp_path)
    book.claim("t", worker_pid=7)
    assert book.read("t") == {"state": CLAIMED, "worker_pid": 7}
    book.record_started("t", pid=42, reason=None)
    assert book.read("t") == {"state": STARTED, "pid": 42, "reason": None}
    long_reason = "x" * 5000  # longer than the padded record size
    book.record_finished("t", exit_code=3, reason=long_reason)
    assert book.read("t") == {"state": FINISHED, "exit_code": 3, "reason": long_reason}
    book.record_finished("t", exit_code=0, reason=None)  # shorter again: no stale tail left behind
    assert ClaimBook(tmp_path).read("t") == {"state": FINISHED, "exit_code": 0, "reason": None}


def test_prune_keeps_tries_in_flight_and_recent_revocations(tmp_path: Path) -> None:
    book = ClaimBook(tmp_path)
    for token in ("done1", "done2", "flying"):
        book.claim(token, worker_pid=1)
        book.record_finished(token, exit_code=0)
    book.revoke("revoked")
    assert book.prune({"flying"}) == 2
    assert book.read("flying") is not None and book.read("revoked") is not None
    assert book.read("done1") is None and book.read("done2") is None
