"""The SQLite store: task instances, the audit log, operator requests, the engine lease.

Names are imported lazily so that ``store.errors`` (needed by every command's
error handling) does not pull in the whole store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from store.errors import InvalidRequest, StoreError, StoreOwned, UnknownTask
    from store.records import EventRecord, RequestRecord, TaskRecord
    from store.store import Batch, Store, TaskSubmission

_WHERE = {
    "InvalidRequest": "store.errors",
    "StoreError": "store.errors",
    "StoreOwned": "store.errors",
    "UnknownTask": "store.errors",
    "EventRecord": "store.records",
    "RequestRecord": "store.records",
    "TaskRecord": "store.records",
    "Batch": "store.store",
    "Store": "store.store",
    "TaskSubmission": "store.store",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'store' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "Batch",
    "EventRecord",
    "InvalidRequest",
    "RequestRecord",
    "Store",
    "StoreError",
    "StoreOwned",
    "TaskRecord",
    "TaskSubmission",
    "UnknownTask",
]
