"""Errors the store raises; each message is one line an operator can act on."""

from __future__ import annotations


class StoreError(Exception):
    """The store file cannot be used (a directory, not SQLite, unwritable, newer schema)."""


class StoreOwned(StoreError):
    """Another live engine holds the store's lease."""


class UnknownTask(StoreError):
    """A task key matches no task instance (or more than one)."""


class InvalidRequest(StoreError):
    """An operator request that cannot apply to the task's current state."""
