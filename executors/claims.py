"""Claim files: the on-disk proof that a try started at most once.

Every hand-off of a try carries a fresh token. Before a worker starts the
task's process it *claims* the token by creating ``<dir>/<token>.json`` with
O_EXCL; an engine recovering from a crash *revokes* a token the same way. Only
one of them can win, so a try that a dead engine had queued is either started
by its worker or handed out again, never both. The worker then records the
pid it started and, at the end, how the process ended: a new engine reads that
to adopt a try still running or to finish one that ended while nobody watched.

The files are small JSON documents replaced atomically (write, then rename).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

CLAIMED = "claimed"
STARTED = "started"
FINISHED = "finished"
REVOKED = "revoked"


class ClaimBook:
    """The claim files of one EXECCONSOLE_HOME (``<home>/claims``)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _path(self, token: str) -> Path:
        if not token or "/" in token or token.startswith("."):
            raise ValueError(f"bad claim token {token!r}")
        return self.directory / f"{token}.json"

    def _create(self, token: str, record: dict[str, Any]) -> bool:
        try:
            fd = os.open(self._path(token), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as handle:
            json.dump(record, handle)
        return True

    def _replace(self, token: str, record: dict[str, Any]) -> None:
        path = self._path(token)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        with open(temporary, "w") as handle:
            json.dump(record, handle)
        os.replace(temporary, path)

    def claim(self, token: str, **details: Any) -> bool:
        """A worker's claim before starting; False if the token was claimed or revoked already."""
        return self._create(token, {"state": CLAIMED, **details})

    def revoke(self, token: str, why: str = "revoked") -> bool:
        """An engine's claim that the try must never start; False if a worker got there first."""
        return self._create(token, {"state": REVOKED, "why": why})

    def record_started(self, token: str, **details: Any) -> None:
        self._replace(token, {"state": STARTED, **details})

    def record_finished(self, token: str, **details: Any) -> None:
        self._replace(token, {"state": FINISHED, **details})

    def read(self, token: str) -> dict[str, Any] | None:
        """The claim's latest record, or None if nobody claimed the token."""
        try:
            with open(self._path(token)) as handle:
                return json.load(handle)
        except FileNotFoundError:
            return None
        except json.JSONDecodeError:
            # A claim file is created and written in two steps; an empty one
            # means its worker died between them: claimed, never started.
            return {"state": CLAIMED}

    def forget(self, token: str) -> None:
        """Delete a claim once its outcome is safely in the store."""
        try:
            self._path(token).unlink()
        except FileNotFoundError:
            pass
