"""Claim files: a try's token can be taken exactly once, by a worker or by a revoking engine."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from executors.claims import _LETTER, CLAIMED, FINISHED, REVOKED, STARTED, ClaimBook, _encode_record


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


def test_the_latest_record_is_read_back_whole_by_any_process(tmp_path: Path) -> None:
    book = ClaimBook(tmp_path)
    book.claim("t", worker_pid=7)
    assert book.read("t") == {"state": CLAIMED, "worker_pid": 7}
    book.record_started("t", pid=42, reason=None)
    assert book.read("t") == {"state": STARTED, "pid": 42, "reason": None}
    long_reason = "x" * 100_000  # longer than one read of a journal
    book.record_finished("t", exit_code=3, reason=long_reason)
    assert ClaimBook(tmp_path).read("t") == {
        "state": FINISHED,
        "exit_code": 3,
        "reason": long_reason,
    }
    book.record_finished("t", exit_code=0, reason=None)  # a later record of the same state wins
    assert ClaimBook(tmp_path).read("t") == {"state": FINISHED, "exit_code": 0, "reason": None}


def _claim_start_and_die(directory: str, token: str) -> None:
    book = ClaimBook(directory)
    assert book.claim(token, worker_pid=os.getpid())
    book.record_started(token, pid=4242)
    os.kill(os.getpid(), signal.SIGKILL)


def test_records_of_a_killed_writer_survive_it_and_its_journal_counts_as_closed(
    tmp_path: Path,
) -> None:
    writer = multiprocessing.get_context("fork").Process(
        target=_claim_start_and_die, args=(str(tmp_path), "orphan")
    )
    writer.start()
    writer.join(timeout=30)
    assert writer.exitcode == -signal.SIGKILL
    book = ClaimBook(tmp_path)
    assert book.read("orphan") == {"state": STARTED, "pid": 4242}
    assert not book.revoke("orphan")
    assert book.prune({"orphan"}) == 0  # still in flight: kept
    assert book.prune(set()) == 1  # committed since: its writer is dead, so the journal goes
    assert book.read("orphan") is None
    assert not list(tmp_path.glob("*.journal"))


@pytest.mark.parametrize("others_in_flight", [0, 100], ids=["byte-search", "parsed"])
def test_prune_keeps_open_journals_tries_in_flight_and_recent_revocations(
    tmp_path: Path, others_in_flight: int
) -> None:
    """Few tries in flight: closed journals are searched as bytes; many: they are parsed."""
    book = ClaimBook(tmp_path, rotate_records=2)  # a new journal every try (claim + finish)
    for token in ("done1", "done2", "flying", "last"):
        assert book.claim(token, worker_pid=1)
        book.record_finished(token, exit_code=0)
    assert book.revoke("revoked")
    assert len(list(tmp_path.glob("*.journal"))) == 4
    # "last" is in the journal still open for writing; "flying" is not committed.
    assert book.prune({"flying", *(f"other{n}" for n in range(others_in_flight))}) == 2
    assert book.read("done1") is None and book.read("done2") is None
    assert (book.read("flying") or {}).get("state") == FINISHED
    assert (book.read("last") or {}).get("state") == FINISHED
    assert book.read("revoked") == {"state": REVOKED, "why": "revoked"}
    assert len(list(tmp_path.glob("*.journal"))) == 2


def test_claim_files_from_before_the_journals_are_still_read(tmp_path: Path) -> None:
    (tmp_path / "old.json").write_text('{"state":"started","pid":9}')
    assert ClaimBook(tmp_path).read("old") == {"state": STARTED, "pid": 9}


def test_a_forked_child_claims_through_its_own_lock(tmp_path: Path) -> None:
    """flock locks belong to open files; a fork must not share the parent's."""
    book = ClaimBook(tmp_path)
    assert book.claim("parent", worker_pid=1)
    results: multiprocessing.Queue = multiprocessing.get_context("fork").Queue()  # type: ignore[type-arg]
    child = multiprocessing.get_context("fork").Process(
        target=lambda: results.put((book.claim("parent"), book.claim("child")))
    )
    child.start()
    child.join(timeout=30)
    assert results.get(timeout=5) == (False, True)
    assert not book.claim("child")


def test_records_are_the_json_encoders_own_text() -> None:
    """Records are byte for byte what json writes, so journals read the same both ways."""
    encoder = json.JSONEncoder(separators=(",", ":"))
    records: list[tuple[str, dict[str, Any]]] = [
        (CLAIMED, {"worker": "local:12", "worker_pid": 12}),
        (STARTED, {"pid": 4, "hostname": 'h"o%s%%t', "worker": "w\n", "started_at": "é"}),
        (
            FINISHED,
            {
                "pid": 4,
                "pid_create_time": 1795314963.12,
                "exit_code": None,
                "signal": signal.SIGKILL,  # an IntEnum: json writes its number
                "reason": "killed by SIGKILL — possibly out of memory",
                "odd%key": [1, {"nested": None}],
                "flags": (True, False),
                "nan": float("nan"),
                "inf": float("-inf"),
                "zero": -0.0,
            },
        ),
        (FINISHED, {}),
        (
            FINISHED,
            {"on": True, "off": False, "none": None, "half": 0.5, "big": 10**30, "e": 1e300},
        ),
        (STARTED, {"state": "overridden", "pid": 1}),
        (STARTED, {"pid": 1, "state": "overridden late"}),
    ]
    for state, details in records:
        for _ in range(2):  # the same bytes every time: no state kept between records
            expected = encoder.encode({"state": state, **details}).encode()
            assert _encode_record(state, details) == _LETTER[state] + b" " + expected


def test_journals_written_by_earlier_versions_are_still_read(tmp_path: Path) -> None:
    (tmp_path / "123-abcdef01.000001.journal").write_bytes(
        b'old c {"state":"claimed","worker":"local:123","worker_pid":123}\n'
        b'old s {"state":"started","pid":124,"hostname":"vm","worker":"local:123",'
        b'"started_at":"2026-11-22T00:00:00.000001Z"}\n'
        b'old f {"state":"finished","pid":124,"exit_code":null,"signal":9,'
        b'"reason":"killed by SIGKILL \\u2014 possibly out of memory"}\n'
    )
    book = ClaimBook(tmp_path)
    assert book.read("old") == {
        "state": FINISHED,
        "pid": 124,
        "exit_code": None,
        "signal": 9,
        "reason": "killed by SIGKILL — possibly out of memory",
    }
    assert not book.claim("old", worker_pid=1)


def test_tokens_in_journals_a_writer_has_closed_stay_claimed_for_everyone(tmp_path: Path) -> None:
    """Claims skip rereading the journals a writer closed itself; nothing in them is forgotten."""
    book = ClaimBook(tmp_path, rotate_records=2)  # a new journal every try (claim + finish)
    for token in ("a", "b", "c"):
        assert book.claim(token, worker_pid=1)
        book.record_finished(token, exit_code=0)
    assert len(list(tmp_path.glob("*.journal"))) == 3
    other = ClaimBook(tmp_path)
    assert not other.claim("a") and not other.claim("c")
    assert other.claim("d")
    assert not book.claim("a") and not book.claim("d")
    assert book.claim("e")
    assert not other.claim("e")


def test_a_book_whose_tokens_are_delivered_once_still_loses_to_revocations(tmp_path: Path) -> None:
    """A LocalExecutor worker's book skips other writers' claim lines, never revocations."""
    worker = ClaimBook(tmp_path, delivered_once=True)
    engine = ClaimBook(tmp_path)
    assert worker.claim("warm", worker="local:1", worker_pid=1)  # the book has looked once
    assert engine.revoke("taken-back", why="dequeued")  # revoked after that look
    assert not worker.claim("taken-back", worker="local:1", worker_pid=1)
    # Its own claims bind everyone else: no revoking them, no second claim.
    assert worker.claim("mine", worker="local:1", worker_pid=1)
    assert not engine.revoke("mine")
    assert not ClaimBook(tmp_path).claim("mine", worker_pid=2)
    assert engine.read("mine") == {"state": CLAIMED, "worker": "local:1", "worker_pid": 1}
    # What it skips when claiming, it still finds when asked: another writer's journals.
    other = ClaimBook(tmp_path, rotate_records=1)  # a new journal every claim
    assert other.claim("theirs", worker="celery:2", worker_pid=2)
    assert other.claim("theirs-too", worker="celery:2", worker_pid=2)  # closes the first journal
    assert worker.claim("after", worker="local:1", worker_pid=1)
    journals = lambda: sorted(path.name for path in tmp_path.glob("*.journal"))  # noqa: E731
    before = journals()
    assert worker.prune(keep={"warm", "mine", "after", "theirs-too"}) == 1
    assert len(journals()) == len(before) - 1  # the closed journal of "theirs" went
    assert worker.read("theirs-too") == {"state": CLAIMED, "worker": "celery:2", "worker_pid": 2}


def test_each_claim_records_its_own_details(tmp_path: Path) -> None:
    """A book reuses the record of identical details, never another claim's."""
    book = ClaimBook(tmp_path)
    assert book.claim("a", worker="local:1", worker_pid=1)
    assert book.claim("b", worker="local:1", worker_pid=1)
    assert book.claim("c", worker="celery:2", worker_pid=2)
    reader = ClaimBook(tmp_path)
    assert (
        reader.read("a")
        == reader.read("b")
        == {"state": CLAIMED, "worker": "local:1", "worker_pid": 1}
    )
    assert reader.read("c") == {"state": CLAIMED, "worker": "celery:2", "worker_pid": 2}
