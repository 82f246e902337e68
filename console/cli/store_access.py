"""How commands that only read (or only name existing tasks) open the store.

Opening a store creates it when its file is missing. That is right for
commands that put work in (``submit``, ``run``, ``scheduler``, ``pause`` ...),
but a command that only reads must leave a missing store missing: a mistyped
``--store`` would otherwise leave an empty database behind and answer from it
as if nothing had been submitted. So these commands say there is no store
instead: lists are empty (exit 0), and a task key is unknown (exit 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

from console.cli.output import say


def no_store_text(path: Path) -> str:
    """One line saying the store file does not exist, and where to look if one was expected."""
    return (
        f"no store at {path} yet: nothing has been submitted there "
        "(check --store or EXECCONSOLE_HOME)"
    )


def answer_without_store(path: Path, empty_json: Any = None) -> None:
    """A read command's whole answer when the store does not exist (it stays missing).

    ``empty_json``: the command's empty result, printed when it was asked for
    JSON, so stdout still holds exactly one document; the note goes to stderr.
    """
    if empty_json is not None:
        from console.cli.output import emit_json

        emit_json(empty_json)
    say(no_store_text(path))


class NoStore:
    """Stands in for a missing store in commands that name tasks by key.

    No key matches anything here. Only ``resolve`` exists: every such command
    (``tasks show``, ``logs``, ``kill``, ``retry``, ``mark``, ``priority``)
    resolves its keys before it reads or writes anything else, so it fails
    there with an unknown key (exit 2) after checking its other arguments
    as it always does, and nothing is created.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def resolve(self, key: Any) -> NoReturn:
        from executors.task_key import parse_key
        from store.errors import UnknownTask

        if isinstance(key, str):
            parse_key(key)  # a malformed key is reported as such, as with a store
        raise UnknownTask(
            f"no task instance matches {key}: there is no store at {self.path} "
            "(check --store or EXECCONSOLE_HOME)"
        )


def store_for_keys(runtime: Any) -> Any:
    """The store, or a NoStore when its file is missing (never created here)."""
    store = runtime.existing_store()
    return NoStore(runtime.config.store_path) if store is None else store


class StoreOnFirstUse:
    """The store, opened (and created when missing) the first time a command uses it.

    For commands that create a missing store (``submit``, ``parallelism``):
    they hand this to a function of console/actions.py, which checks its
    arguments before it touches the store, so a refused command leaves a
    missing store missing and a fresh home empty.
    """

    def __init__(self, runtime: Any) -> None:
        self._runtime = runtime

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runtime.store(), name)


def store_on_first_use(runtime: Any) -> Any:
    """The store as it will be once opened: see StoreOnFirstUse."""
    return StoreOnFirstUse(runtime)
