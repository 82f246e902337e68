"""How numbers, times and keys read on screen (plain functions, no Textual)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from executors.task_key import TaskKey


def duration(seconds: float | None) -> str:
    """``0.4s``, ``12s``, ``3m05s``, ``2h14m``; a dash when unknown."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def age(seconds: float | None) -> str:
    """A coarse age (``<1m``, ``10m``, ``2h14m``): a column of them changes once a minute, not every poll."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return "<1m"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def size(count: int | None) -> str:
    """Bytes as ``812K``, ``12.5M``, ``1.2G``; a dash when unknown."""
    if count is None:
        return "-"
    value = float(count)
    for unit in ("B", "K", "M", "G"):
        if value < 1024 or unit == "G":
            return (
                f"{value:.0f}{unit}" if unit in ("B", "K") or value >= 100 else f"{value:.1f}{unit}"
            )
        value /= 1024
    return f"{value:.1f}T"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


def clock_time(iso: str | None) -> str:
    """``18:30:05`` (UTC) from an ISO-8601 string."""
    if not iso:
        return "-"
    try:
        return datetime.fromisoformat(iso).astimezone(UTC).strftime("%H:%M:%S")
    except ValueError:
        return iso


def task_label(key: TaskKey) -> str:
    """``dag/task#try`` (with ``[i]`` for a mapped task): the run is shown apart."""
    task = key.task_id if key.map_index < 0 else f"{key.task_id}[{key.map_index}]"
    return f"{key.dag_id}/{task}#{key.try_number}"


def distinct_task_labels(keys: Iterable[TaskKey]) -> dict[TaskKey, str]:
    """``task_label`` of each key, with its run's last characters where labels clash.

    Each ``execconsole submit`` is a run of its own: three submits of ``sleep``
    are all ``adhoc/sleep#1``, told apart only by their runs (``@0f34cc``).
    """
    keys = list(keys)
    runs_by_label: dict[str, set[str]] = {}
    for key in keys:
        runs_by_label.setdefault(task_label(key), set()).add(key.run_id)
    labels = {}
    for key in keys:
        label = task_label(key)
        if len(runs_by_label[label]) > 1:
            label = f"{label} @{run_tag(key.run_id)}"
        labels[key] = label
    return labels


def run_tag(run_id: str) -> str:
    """A run id's distinguishing end: the random suffix of ``manual__<time>_<hex>``."""
    return run_id.rsplit("_", 1)[-1][-8:] if "_" in run_id else run_id[-8:]
