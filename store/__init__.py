"""The SQLite store: task instances, the audit log, operator requests, the engine lease."""

from store.errors import InvalidRequest, StoreError, StoreOwned, UnknownTask
from store.records import EventRecord, RequestRecord, TaskRecord
from store.store import Batch, Store, TaskSubmission

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
