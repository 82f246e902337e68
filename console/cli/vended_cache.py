"""A cache of the command groups the configured executors vend, for ``--help``.

Listing ``execconsole --help`` needs the names and help of the groups the
configured executors add (``execconsole celery ...``), and finding them means
loading the config, resolving executor names and importing every configured
executor class: about 90 ms here, a third of what ``--help`` costs. Their
answer only changes when the code or the configuration does, so it is kept in
``<home>/cache/cli-groups.json`` with what it depended on:

- every ``EXECCONSOLE*`` environment variable and ``<home>/config.toml``'s
  modification time and size;
- the interpreter, and the installed distributions (``*.dist-info`` and
  ``*.egg-info`` folders, with their modification times) in every
  ``sys.path`` entry: installing, removing or upgrading a package, and so a
  plug-in's entry points, changes them;
- the modification time and size of every module imported to find the
  groups (the loader, each executor class's module and its bases' modules).

Anything different and the groups are found again and the file rewritten.
The cache is only written into a home that exists already (``--help`` on a
fresh machine creates nothing), and any error reading or writing it just
means finding the groups the slow way.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

VERSION = 1
FILENAME = "cli-groups.json"


@dataclass(frozen=True)
class CachedGroup:
    """A vended CLI group as remembered: the same fields and ``load`` as ``CliGroup``."""

    name: str
    help: str
    target: str

    def load(self) -> Any:
        module_name, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(module_name), attribute)


def _home() -> Path:
    # As console.config.resolve_home, without importing the config module.
    return Path(os.environ.get("EXECCONSOLE_HOME") or "~/.execconsole").expanduser().absolute()


def _stamp(path: str | os.PathLike[str]) -> list[int] | None:
    try:
        status = os.stat(path)
    except (OSError, ValueError):
        return None
    return [status.st_mtime_ns, status.st_size]


def _context(home: Path) -> dict[str, Any]:
    return {
        "version": VERSION,
        "python": [sys.executable, sys.version],
        "env": sorted([k, v] for k, v in os.environ.items() if k.startswith("EXECCONSOLE")),
        "config": _stamp(home / "config.toml"),
        "sys_path": [[entry, _distributions(entry or ".")] for entry in sys.path],
    }


def _distributions(folder: str) -> list[list[Any]] | None:
    """The installed distributions' metadata folders in a ``sys.path`` entry, with mtimes.

    What entry points (and so executor names) come from; installing, removing
    or upgrading a package changes this list. The folder's own mtime would not
    do: the current directory, also on ``sys.path``, changes all the time.
    """
    try:
        with os.scandir(folder) as entries:
            return sorted(
                [entry.name, entry.stat().st_mtime_ns]
                for entry in entries
                if entry.name.endswith((".dist-info", ".egg-info"))
            )
    except OSError:
        return None


def load() -> dict[str, CachedGroup] | None:
    """The remembered groups, or None when there are none or they may be out of date."""
    home = _home()
    try:
        data = json.loads((home / "cache" / FILENAME).read_text())
        if data["context"] != _context(home):
            return None
        for path, stamp in data["files"]:
            if _stamp(path) != stamp:
                return None
        return {group["name"]: CachedGroup(**group) for group in data["groups"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save(groups: dict[str, Any], modules: list[ModuleType]) -> None:
    """Remember ``groups``, found by importing ``modules``; never raises."""
    home = _home()
    if not home.is_dir():
        return
    files = sorted(
        {str(module.__file__) for module in modules if getattr(module, "__file__", None)}
    )
    document = {
        "context": _context(home),
        "files": [[path, _stamp(path)] for path in files],
        "groups": [
            asdict(CachedGroup(group.name, group.help, group.target)) for group in groups.values()
        ],
    }
    folder = home / "cache"
    temporary = folder / f".{FILENAME}.{os.getpid()}.tmp"
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        temporary.write_text(json.dumps(document))
        os.replace(temporary, folder / FILENAME)
    except OSError:
        try:
            temporary.unlink()
        except OSError:
            pass


def modules_behind(classes: list[type]) -> list[ModuleType]:
    """The modules defining ``classes`` and every class they inherit from."""
    found = []
    for cls in classes:
        for base in cls.__mro__:
            module = sys.modules.get(base.__module__)
            if module is not None:
                found.append(module)
    return found
