"""What an executor may add to the product: CLI groups, console panels, key bindings.

Each is plain data naming its implementation by import path ("module:attr"),
so that listing what an executor vends never imports Textual or the group's
code. The CLI imports a group's module only when that group runs (or for
``--help``); the console imports a panel's widget only when it builds the tab.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from executors.base import BaseExecutor
    from executors.task_key import TaskKey


def import_target(target: str) -> Any:
    """Import ``"package.module:attribute"`` and return the attribute."""
    module_name, _, attribute = target.partition(":")
    if not attribute:
        raise ValueError(f"import target {target!r} must look like 'package.module:attribute'")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ValueError(f"import target {target!r}: {module_name} has no {attribute!r}") from None


@dataclass(frozen=True)
class CliGroup:
    """A command group mounted as ``execconsole <name> ...``.

    ``target`` names a ``typer.Typer`` instance, imported only when needed.
    """

    name: str
    help: str
    target: str

    def load(self) -> Any:
        return import_target(self.target)


@dataclass(frozen=True)
class ConsolePanel:
    """A tab in the console.

    ``target`` names a callable ``(executor, console_context) -> textual Widget``;
    the console imports it lazily, so headless code never pulls in Textual.
    The widget may define ``refresh_panel(snapshot)``, which the console calls
    on every poll with the latest snapshot.
    """

    id: str
    title: str
    target: str

    def load(self) -> Any:
        return import_target(self.target)


# An action receives the executor and the selected task key (None when no task
# row is selected) and returns a one-line message for the operator, or None.
KeyAction = Callable[["BaseExecutor", "TaskKey | None"], "str | None"]


@dataclass(frozen=True)
class KeyBinding:
    """A key an executor adds to the console.

    Attributes:
        key: Textual key name, e.g. ``"w"`` or ``"ctrl+r"``.
        description: shown in the footer and the help screen.
        action: what the key does; runs on the engine's thread.
        needs_task: the key acts on the selected task row.
        mutating: hidden in read-only mode.
        capability: name of a capability flag that must be true for the key to be enabled.
    """

    key: str
    description: str
    action: KeyAction
    needs_task: bool = False
    mutating: bool = True
    capability: str | None = None
