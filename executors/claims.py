"""Claim journals: the on-disk proof that a try started at most once.

Every hand-off of a try carries a fresh token. Before a worker starts the
task's process it *claims* the token; an engine recovering from a crash, or
taking back a try nobody has started, *revokes* it. Only one of the two can
win, so a try that a dead engine had queued is either started by its worker or
handed out again, never both. The worker then records the pid it started and,
at the end, how the process ended: a new engine reads that to adopt a try still
running or to finish one that ended while nobody watched.

Layout of the directory (``<home>/claims``)::

    lock                        flock(2): held exclusively for every claim,
                                revocation and prune, for a few microseconds
    <writer>.<n>.journal        append-only records of one writer process;
                                the writer holds flock on it while it may
                                still append, so "lock free" means "closed"
    revoked/<token>             one small file per revocation, kept a day

A journal line is ``<token> <state letter> <JSON record>``, written with one
``write`` on an ``O_APPEND`` descriptor. Why journals and not one file per
claim: creating a file costs 15-800 us of kernel time on this machine's ext4
(more while earlier files are written back and discarded), and a try used to
create, rewrite and delete one; appending a line costs about 1 us. Revocations
are rare, so they stay files.

Claims are exclusive across processes because a claimer holds ``lock``
exclusively while it looks for the token in every journal's new claim lines
and in the revocations, decides, and appends; a revoker does the same before
it creates its file. ``lock`` also holds two counters, bumped whenever a
journal or a revocation is created or deleted, so nobody lists the directory
unless it changed.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import struct
import threading
import time
import uuid
from pathlib import Path
from typing import Any

CLAIMED = "claimed"
STARTED = "started"
FINISHED = "finished"
REVOKED = "revoked"

ROTATE_RECORDS = 3000
"""A writer starts a new journal after this many lines (about 1,000 tries), so
the engine can delete the old one once every try in it is in the store."""

REVOKED_KEEP_SECONDS = 24 * 3600
"""How long a revocation stays: it is what stops a worker orphaned by a dead
engine from starting a try the next engine handed out again."""

EMPTY_JOURNAL_KEEP_SECONDS = 60.0

LEGACY_REVOKED_MODE = 0o400  # claim files written before the journals marked revocations so

_LETTER = {CLAIMED: b"c", STARTED: b"s", FINISHED: b"f"}
_RANK = {ord("c"): 1, ord("s"): 2, ord("f"): 3}
"""A try's records may sit in two writers' journals (a test, or a worker that
records an outcome for a claim it inherited); the most advanced state wins."""

_READ_CHUNK = 1 << 16

_COUNTERS = struct.Struct("<QQ")  # journals created or deleted; revocations created or deleted
_JOURNALS, _REVOCATIONS = 0, 1

_ENCODER = json.JSONEncoder(separators=(",", ":"))
"""Built once: ``json.dumps`` with separators builds a new encoder on every call."""

_ENCODE_FLAT: Any = (
    json.encoder.c_make_encoder(  # type: ignore[attr-defined]
        None,
        _ENCODER.default,
        json.encoder.encode_basestring_ascii,
        None,
        ":",
        ",",
        False,
        False,
        True,
    )
    if getattr(json.encoder, "c_make_encoder", None) is not None
    else None
)
"""The C encoder behind ``_ENCODER``, built once too. ``JSONEncoder.encode`` builds
it again on every call, through two Python frames: a third of a record's cost
(three records a try). No check for circular references: records are flat."""

_forks = 0
"""How many forks led to this process since this module was imported."""


def _count_fork() -> None:
    global _forks
    _forks += 1


# A book notices it is in a forked child by this count, not by comparing
# os.getpid() (a syscall) on every call.
os.register_at_fork(after_in_child=_count_fork)


def _encode_record(state: str, details: dict[str, Any]) -> bytes:
    """``<state letter> <JSON>``: the state's letter, then ``{"state": state, **details}``."""
    record = {"state": state, **details}
    text = "".join(_ENCODE_FLAT(record, 0)) if _ENCODE_FLAT else _ENCODER.encode(record)
    return _LETTER[state] + b" " + text.encode()


_CLAIM_LINE = re.compile(rb"^([^ \n]+) c ", re.MULTILINE)


def _whole_lines(fd: int, offset: int, partial: bytes) -> tuple[bytes, int, bytes]:
    """What was appended from ``offset`` on, after ``partial`` (the unfinished line read before).

    Returns the whole lines, the new offset, and the unfinished last line (one
    still being written), which the next call is given back.
    """
    data = os.pread(fd, _READ_CHUNK, offset)
    if not data:
        return b"", offset, partial  # the usual answer to a claim's look at another journal
    offset += len(data)
    if len(data) == _READ_CHUNK:  # there may be more
        chunks = [partial, data]
        while chunk := os.pread(fd, _READ_CHUNK, offset):
            chunks.append(chunk)
            offset += len(chunk)
            if len(chunk) < _READ_CHUNK:
                break
        data = b"".join(chunks)
    elif partial:
        data = partial + data
    end = data.rfind(b"\n") + 1
    return data[:end], offset, data[end:]


class _Journal:
    """What this process knows of one journal file.

    Read two ways, each from its own offset: whole records (``offset``, for
    ``read``, ``revoke`` and ``prune``, rare) and only the tokens of claim
    lines (``claims_offset``, by a regular expression, for every ``claim``).
    """

    __slots__ = (
        "name",
        "fd",
        "offset",
        "partial",
        "tokens",
        "closed",
        "claims_offset",
        "claims_partial",
        "claimed",
        "settled",
    )

    def __init__(self, name: str, fd: int, offset: int = 0) -> None:
        self.name = name
        self.fd = fd  # for reading, and for the flock test of prune()
        self.offset = offset
        self.partial = b""
        self.tokens: set[str] = set()
        self.closed = False
        self.claims_offset = offset
        self.claims_partial = b""
        self.claimed: set[bytes] = set()
        self.settled = False  # closed, and every claim line in it is in ``claimed``


class ClaimBook:
    """The claims of one EXECCONSOLE_HOME (``<home>/claims``), seen from one process.

    Safe to use from several threads of one process; a process forked from one
    that used a book opens everything again on first use (flock locks belong
    to open files, which a fork would share).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        rotate_records: int = ROTATE_RECORDS,
        delivered_once: bool = False,
    ) -> None:
        """Open the claims under ``directory``.

        Args:
            rotate_records: start a new journal after this many of this process's lines.
            delivered_once: every token this process claims reached it alone.
                A LocalExecutor worker takes each dispatch from a socket that
                hands every message to exactly one reader, so no other process
                can hold a claim on its tokens: its claims need only beat a
                revocation, and skip reading the other writers' claim lines
                (a quarter of a short try's claim cost, measured in a worker).
                A Celery worker must not set it: a broker may deliver a task twice.
        """
        self.directory = Path(directory)
        self._revoked_dir = self.directory / "revoked"
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._revoked_dir.mkdir(exist_ok=True, mode=0o700)
        self._rotate_records = rotate_records
        self._delivered_once = delivered_once
        # The last claim's details and their record: a worker's never change.
        # One tuple, so threads sharing the book never pair one's details with another's record.
        self._claim_cache: tuple[dict[str, Any] | None, bytes] = (None, b"")
        self._mutex = threading.Lock()
        self._pid = -1
        self._lock_fd = -1
        self._own: _Journal | None = None
        self._own_fd = -1  # the O_APPEND descriptor this process writes its journal through
        self._journals: dict[str, _Journal] = {}
        self._open()

    # ---- opening and locking ---------------------------------------------------
    def _open(self) -> None:
        """(Re)open the lock file and forget what an ancestor process had read."""
        for fd in (self._lock_fd, self._own_fd, *(j.fd for j in self._journals.values())):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._pid = os.getpid()
        self._forks_seen = _forks
        self._lock_fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        self._journals = {}
        self._latest: dict[str, tuple[str, bytes]] = {}  # token -> (journal name, record)
        self._revoked: set[str] = set()
        self._seen = (-1, -1)  # the lock file's counters when this process last looked
        self._own = None
        self._own_fd = -1
        self._own_lines = 0
        self._own_count = 0
        self._writer = f"{self._pid}-{uuid.uuid4().hex[:8]}"
        self._next_revoked_sweep = 0.0

    def _enter(self, exclusive: bool) -> None:
        self._mutex.acquire()
        try:
            if self._forks_seen != _forks:
                self._open()
            if exclusive:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        except BaseException:
            self._mutex.release()
            raise

    def _leave(self, exclusive: bool) -> None:
        try:
            if exclusive:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        finally:
            self._mutex.release()

    def _counters(self) -> tuple[int, int]:
        data = os.pread(self._lock_fd, _COUNTERS.size, 0)
        return _COUNTERS.unpack(data) if len(data) == _COUNTERS.size else (0, 0)

    def _bump(self, which: int) -> None:
        """Tell every other process the directory changed; the caller holds ``lock``."""
        counters = list(self._counters())
        counters[which] += 1
        os.pwrite(self._lock_fd, _COUNTERS.pack(*counters), 0)

    @staticmethod
    def _check_token(token: str) -> None:
        if not token or "/" in token or " " in token or token.startswith("."):
            raise ValueError(f"bad claim token {token!r}")

    # ---- reading the journals -----------------------------------------------
    def _refresh(self, rescan: bool = False) -> None:
        """Read every other journal's lines written since the last refresh.

        The directory is listed again only when the lock file's counters say a
        journal or a revocation came or went (or when asked to).
        """
        counters = self._counters()
        if rescan or counters[_JOURNALS] != self._seen[_JOURNALS]:
            self._rescan_journals()
        if rescan or counters[_REVOCATIONS] != self._seen[_REVOCATIONS]:
            self._revoked = set(os.listdir(self._revoked_dir))
        self._seen = counters
        own = self._own
        for journal in self._journals.values():
            if journal is not own:
                self._read_new_lines(journal)

    def _rescan_journals(self) -> None:
        present = {name for name in os.listdir(self.directory) if name.endswith(".journal")}
        for name in [name for name in self._journals if name not in present]:
            self._drop(name)  # another process pruned it
        for name in present - self._journals.keys():
            try:
                fd = os.open(self.directory / name, os.O_RDONLY)
            except FileNotFoundError:
                continue
            self._journals[name] = _Journal(name, fd)

    def _read_new_lines(self, journal: _Journal) -> None:
        lines, journal.offset, journal.partial = _whole_lines(
            journal.fd, journal.offset, journal.partial
        )
        for line in lines.split(b"\n"):
            raw_token, _, record = line.partition(b" ")
            if record:
                self._note(journal, raw_token.decode(), record)

    def _note(self, journal: _Journal, token: str, record: bytes) -> None:
        journal.tokens.add(token)
        known = self._latest.get(token)
        if known is None or _RANK.get(known[1][0], 0) <= _RANK.get(record[0], 0):
            self._latest[token] = (journal.name, record)

    def _drop(self, name: str) -> None:
        journal = self._journals.pop(name)
        if journal.fd >= 0:
            os.close(journal.fd)
        for token in journal.tokens:
            known = self._latest.get(token)
            if known is not None and known[0] == name:
                del self._latest[token]

    # ---- writing ---------------------------------------------------------------
    def _start_own_journal(self) -> None:
        """Open a new journal for this process's records; the caller holds ``lock``.

        It is created and flocked under ``lock``, so a pruning engine never
        sees it unlocked and takes it for closed.
        """
        if self._own is not None:
            # Closing the writing descriptor releases its flock: the journal is
            # closed and prune() may delete it. Keep a reading descriptor for
            # this process's own prune().
            old = self._own
            old.fd = os.open(self.directory / old.name, os.O_RDONLY)
            old.offset = old.claims_offset = os.fstat(old.fd).st_size
            old.closed = True
            old.settled = True  # its claims are all in ``claimed``, and nothing more comes
            os.close(self._own_fd)
        self._own_count += 1
        name = f"{self._writer}.{self._own_count:06d}.journal"
        fd = os.open(
            self.directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600
        )
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._own_fd = fd
        self._own = self._journals[name] = _Journal(name, -1)
        self._own_lines = 0
        self._bump(_JOURNALS)

    def _append(self, token: str, record: bytes) -> None:
        """Write one line of this process's journal; the caller holds the mutex."""
        own = self._own
        assert own is not None
        os.write(self._own_fd, b"%s %s\n" % (token.encode(), record))
        self._own_lines += 1
        self._note(own, token, record)

    def _record(self, token: str, state: str, details: dict[str, Any]) -> None:
        self._check_token(token)
        record = _encode_record(state, details)  # before taking the mutex: it needs none
        with self._mutex:
            if self._forks_seen != _forks:
                self._open()
            if self._own is None:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
                try:
                    self._start_own_journal()
                finally:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            self._append(token, record)

    # ---- the public operations ----------------------------------------------------
    def claim(self, token: str, **details: Any) -> bool:
        """A worker's claim before starting; False if the token was claimed or revoked already.

        Under ``lock``, it looks for the token among the revocations and the
        claim lines of every journal. Those lines are found in the bytes
        written since its last claim by one regular expression a journal (in
        C): a claim costs a few microseconds whatever the number of workers,
        and the lock is never held long enough to be preempted while held.
        """
        self._check_token(token)
        wanted = token.encode()
        cached = self._claim_cache
        if cached[0] != details:
            cached = self._claim_cache = (details, _encode_record(CLAIMED, details))
        record = cached[1]
        self._enter(exclusive=True)
        try:
            counters = self._counters()
            scan = not self._delivered_once
            if not scan:
                # Other journals are not looked at: read() and prune() must still list them.
                counters = (self._seen[_JOURNALS], counters[_REVOCATIONS])
            elif counters[_JOURNALS] != self._seen[_JOURNALS]:
                self._rescan_journals()
            if counters[_REVOCATIONS] != self._seen[_REVOCATIONS]:
                self._revoked = set(os.listdir(self._revoked_dir))
            self._seen = counters
            if token in self._revoked or token in self._latest:
                return False
            for journal in self._journals.values():
                if scan and journal is not self._own and not journal.settled:
                    self._scan_claims(journal)
                if wanted in journal.claimed:
                    return False
            if self._own is None or self._own_lines >= self._rotate_records:
                # Only here, between tries: a try's records then share one journal.
                self._start_own_journal()
            self._append(token, record)
            assert self._own is not None
            self._own.claimed.add(wanted)
            return True
        finally:
            self._leave(exclusive=True)

    @staticmethod
    def _scan_claims(journal: _Journal) -> None:
        """Add the tokens of claim lines written since the last scan to ``journal.claimed``."""
        lines, journal.claims_offset, journal.claims_partial = _whole_lines(
            journal.fd, journal.claims_offset, journal.claims_partial
        )
        journal.claimed.update(_CLAIM_LINE.findall(lines))

    def revoke(self, token: str, why: str = "revoked") -> bool:
        """An engine's claim that the try must never start; False if a worker got there first."""
        self._check_token(token)
        self._enter(exclusive=True)
        try:
            self._refresh()
            if token in self._latest:
                return False
            try:
                fd = os.open(self._revoked_dir / token, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                return False
            try:
                os.write(fd, json.dumps({"why": why}).encode())
            finally:
                os.close(fd)
            self._bump(_REVOCATIONS)
            return True
        finally:
            self._leave(exclusive=True)

    def record_started(self, token: str, **details: Any) -> None:
        self._record(token, STARTED, details)

    def record_finished(self, token: str, **details: Any) -> None:
        self._record(token, FINISHED, details)

    def read(self, token: str) -> dict[str, Any] | None:
        """The claim's latest record, or None if nobody claimed or revoked the token."""
        self._check_token(token)
        self._enter(exclusive=False)
        try:
            self._refresh(rescan=True)
            known = self._latest.get(token)
        finally:
            self._leave(exclusive=False)
        if known is not None:
            return json.loads(known[1][2:])
        try:
            why = json.loads((self._revoked_dir / token).read_bytes()).get("why")
        except FileNotFoundError:
            return self._read_legacy(token)
        except ValueError:
            why = None  # its revoker died mid-write: revoked all the same
        return {"state": REVOKED, "why": why}

    def _read_legacy(self, token: str) -> dict[str, Any] | None:
        """A claim file written before the journals (one JSON file per token)."""
        try:
            data = (self.directory / f"{token}.json").read_bytes()
        except FileNotFoundError:
            return None
        try:
            return json.loads(data)
        except ValueError:
            return {"state": CLAIMED}

    def prune(self, keep: set[str]) -> int:
        """Delete every closed journal none of whose tries is in ``keep``; returns how many files went.

        Only safe when every token not in ``keep`` has its outcome committed
        to the store (the engine calls it right after a commit). A journal is
        closed once its writer moved to a newer one or died (nobody holds its
        flock). Revocations stay a day.
        """
        removed = 0
        self._enter(exclusive=True)
        try:
            # Journals still open are not read here: none can be deleted yet,
            # and reading every line of every try would cost the engine more
            # than the claims cost the workers.
            counters = self._counters()
            if counters[_JOURNALS] != self._seen[_JOURNALS]:
                self._rescan_journals()
                self._seen = (counters[_JOURNALS], self._seen[_REVOCATIONS])
            now = time.time()
            for name, journal in list(self._journals.items()):
                if journal is self._own:
                    continue
                if not journal.closed:
                    try:
                        fcntl.flock(journal.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        continue  # its writer may still append
                    journal.closed = True
                if journal.offset == 0 and not journal.partial and len(keep) <= 64:
                    # Never read here. A byte search of the whole file (in C)
                    # spares parsing a thousand lines in Python when, as
                    # usual, none of the few tries in flight is in it; a
                    # false hit only means it is parsed after all.
                    data = _whole_lines(journal.fd, 0, b"")[0]
                    empty = not data
                    if any(token.encode() in data for token in keep):
                        self._read_new_lines(journal)
                        if journal.tokens & keep:
                            continue
                else:
                    self._read_new_lines(journal)  # once closed, nothing more comes
                    if journal.tokens & keep:
                        continue
                    empty = not journal.tokens
                if empty:
                    try:
                        age = now - os.fstat(journal.fd).st_mtime
                    except OSError:
                        age = EMPTY_JOURNAL_KEEP_SECONDS
                    if age < EMPTY_JOURNAL_KEEP_SECONDS:
                        continue
                try:
                    (self.directory / name).unlink()
                except FileNotFoundError:
                    pass
                removed += 1
                self._drop(name)
                self._bump(_JOURNALS)
            removed += self._prune_files(keep, now)
        finally:
            self._leave(exclusive=True)
        return removed

    def _prune_files(self, keep: set[str], now: float) -> int:
        """Old revocations, and finished claim files from before the journals."""
        if now < self._next_revoked_sweep:
            return 0
        self._next_revoked_sweep = now + 60.0
        removed = 0
        for directory, legacy in ((self._revoked_dir, False), (self.directory, True)):
            with os.scandir(directory) as entries:
                for entry in entries:
                    name = entry.name
                    if legacy and not name.endswith(".json"):
                        continue
                    token = name[:-5] if legacy else name
                    if token in keep:
                        continue
                    try:
                        info = entry.stat()
                        revoked = not legacy or info.st_mode & 0o777 == LEGACY_REVOKED_MODE
                        if revoked and now - info.st_mtime < REVOKED_KEEP_SECONDS:
                            continue
                        os.unlink(entry.path)
                        removed += 1
                        if not legacy:
                            self._bump(_REVOCATIONS)
                    except FileNotFoundError:
                        pass
        return removed
