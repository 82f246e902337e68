"""Claim files: the on-disk proof that a try started at most once.

Every hand-off of a try carries a fresh token. Before a worker starts the
task's process it *claims* the token by creating ``<dir>/<token>.json`` with
O_EXCL; an engine recovering from a crash *revokes* a token the same way. Only
one of them can win, so a try that a dead engine had queued is either started
by its worker or handed out again, never both. The worker then records the
pid it started and, at the end, how the process ended: a new engine reads that
to adopt a try still running or to finish one that ended while nobody watched.

Records are small JSON documents, padded and overwritten in place.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

CLAIMED = "claimed"
STARTED = "started"
FINISHED = "finished"
REVOKED = "revoked"


RECORD_SIZE = 1024  # records are padded to this size so an update is one in-place write
REVOKED_MODE = 0o400
REVOKED_KEEP_SECONDS = 24 * 3600


class ClaimBook:
    """The claim files of one EXECCONSOLE_HOME (``<home>/claims``).

    Creating a claim is the only step that must be atomic, and ``O_EXCL``
    makes it so. Later records (started, finished) overwrite the file in place
    through the descriptor the claim opened: one ``pwrite`` of a padded
    record, instead of a temporary file and a rename (measured here: about
    0.1 ms against 2.5 ms a try, the difference between keeping up with
    ``subprocess.run`` and not). A reader that catches a write half-done sees
    invalid JSON and reads again.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._open: dict[str, int] = {}

    def _path(self, token: str) -> Path:
        if not token or "/" in token or token.startswith("."):
            raise ValueError(f"bad claim token {token!r}")
        return self.directory / f"{token}.json"

    @staticmethod
    def _encode(record: dict[str, Any]) -> bytes:
        data = json.dumps(record, separators=(",", ":")).encode()
        return data.ljust(RECORD_SIZE) if len(data) < RECORD_SIZE else data

    def _create(
        self, token: str, record: dict[str, Any], keep_open: bool, mode: int = 0o600
    ) -> bool:
        try:
            fd = os.open(self._path(token), os.O_RDWR | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:
            return False
        os.pwrite(fd, self._encode(record), 0)
        if keep_open:
            self._open[token] = fd
        else:
            os.close(fd)
        return True

    def _overwrite(self, token: str, record: dict[str, Any], close: bool) -> None:
        fd = self._open.pop(token, None)
        if fd is None:
            fd = os.open(self._path(token), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            data = self._encode(record)
            os.pwrite(fd, data, 0)
            if len(data) > RECORD_SIZE or os.fstat(fd).st_size > len(data):
                os.ftruncate(fd, len(data))  # an oversized record grew or shrank the file
        finally:
            if close:
                os.close(fd)
            else:
                self._open[token] = fd

    def claim(self, token: str, **details: Any) -> bool:
        """A worker's claim before starting; False if the token was claimed or revoked already."""
        return self._create(token, {"state": CLAIMED, **details}, keep_open=True)

    def revoke(self, token: str, why: str = "revoked") -> bool:
        """An engine's claim that the try must never start; False if a worker got there first."""
        # Revocations are marked by their mode, so prune() can keep them without reading them.
        return self._create(
            token, {"state": REVOKED, "why": why}, keep_open=False, mode=REVOKED_MODE
        )

    def record_started(self, token: str, **details: Any) -> None:
        self._overwrite(token, {"state": STARTED, **details}, close=False)

    def record_finished(self, token: str, **details: Any) -> None:
        self._overwrite(token, {"state": FINISHED, **details}, close=True)

    def read(self, token: str) -> dict[str, Any] | None:
        """The claim's latest record, or None if nobody claimed the token."""
        for attempt in range(5):
            try:
                with open(self._path(token), "rb") as handle:
                    data = handle.read()
            except FileNotFoundError:
                return None
            try:
                return json.loads(data)
            except (json.JSONDecodeError, UnicodeDecodeError):
                if not data.strip():
                    # Created but not yet written: its worker died between the
                    # two steps, or is between them now. Claimed, never started.
                    return {"state": CLAIMED}
                time.sleep(0.001 * (attempt + 1))  # a write in progress: read again
        return {"state": CLAIMED}

    def forget(self, token: str) -> None:
        """Delete a claim once its outcome is safely in the store."""
        fd = self._open.pop(token, None)
        if fd is not None:
            os.close(fd)
        try:
            self._path(token).unlink()
        except FileNotFoundError:
            pass

    def prune(self, keep: set[str]) -> int:
        """Delete every claim except ``keep``'s and recent revocations; returns how many went.

        Only safe when every token not in ``keep`` has its outcome committed
        to the store (the engine calls it right after a commit). Revocations
        stay a day: they are what stops a worker orphaned by a dead engine from
        starting a try the next engine handed out again.
        """
        removed = 0
        now = time.time()
        for entry in os.scandir(self.directory):
            name = entry.name
            if not name.endswith(".json") or name[:-5] in keep:
                continue
            try:
                info = entry.stat()
                if (
                    info.st_mode & 0o777 == REVOKED_MODE
                    and now - info.st_mtime < REVOKED_KEEP_SECONDS
                ):
                    continue
                os.unlink(entry.path)
                removed += 1
            except FileNotFoundError:
                pass
        return removed
