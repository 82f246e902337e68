"""Messages between the console's threads and widgets, named for what happened."""

from __future__ import annotations

from collections.abc import Sequence

from textual.message import Message

from console.snapshot import EventRow, Snapshot, TaskDetail
from executors.task_key import TaskKey
from store.runs import RunSummary


class SnapshotTaken(Message):
    """A poll finished: the worker thread built a new snapshot."""

    def __init__(self, snapshot: Snapshot, finished_runs: Sequence[RunSummary] = ()) -> None:
        super().__init__()
        self.snapshot = snapshot
        self.finished_runs = finished_runs  # runs seen at work that have ended since


class SnapshotFailed(Message):
    """A poll failed (the store was busy or broken); the next poll is still scheduled."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class ActionFinished(Message):
    """An operator action ran; ``message`` is its one-line outcome."""

    def __init__(self, label: str, message: str, ok: bool) -> None:
        super().__init__()
        self.label = label
        self.message = message
        self.ok = ok


class EngineStopped(Message):
    """The console's own engine process ended by itself: drained, or died (``error``).

    ``engine`` is the one that ended: a message about an engine the console has
    replaced since is stale.
    """

    def __init__(self, drained: bool, error: str | None, engine: object | None = None) -> None:
        super().__init__()
        self.drained = drained
        self.error = error
        self.engine = engine


class TaskSelected(Message):
    """The operator moved onto a task row (the target of k, r, s, f, enter, l)."""

    def __init__(self, ti_id: int, key: TaskKey, state: str, executor: str) -> None:
        super().__init__()
        self.ti_id = ti_id
        self.key = key
        self.state = state
        self.executor = executor


class TaskOpened(Message):
    """The operator pressed enter on a task row."""

    def __init__(self, ti_id: int) -> None:
        super().__init__()
        self.ti_id = ti_id


class OlderEventsLoaded(Message):
    """A page of older events arrived from the store (None: it could not be read)."""

    def __init__(self, events: list[EventRow] | None) -> None:
        super().__init__()
        self.events = events


class TaskDetailLoaded(Message):
    """The detail of one task arrived from the store."""

    def __init__(self, detail: TaskDetail | None) -> None:
        super().__init__()
        self.detail = detail
