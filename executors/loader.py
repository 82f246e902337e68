"""Find executor classes from what an operator typed, and build the configured executors.

An executor list (``--executor local,celery`` or the config file) is a comma
separated list of entries. Each entry names one executor and, optionally, the
name it is configured under (its *alias*)::

    local                                  a built-in, by short name
    LocalExecutor                          a known executor, by its class name
    threads                                an installed plug-in, by entry-point name
    executors.local:LocalExecutor          any class, by module path ...
    executors.local.LocalExecutor          ... in either spelling
    fast:local                             alias ``fast`` for a known executor
    fast:executors.local.LocalExecutor     alias ``fast`` for a module path
    fast:executors.local:LocalExecutor     the same

*Known* executors are the built-ins below plus every entry point in the
``execconsole.executors`` group, so a third-party executor plugs in by being
installed. Parsing never imports an executor's module for a known name: the
class name is read off the import path. A module path that matches no known
executor is imported while parsing, because its ``name`` attribute is the
name it is configured under. The first entry is the default executor.
"""

from __future__ import annotations

import importlib
import importlib.util
import keyword
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from executors.options import ExecutorOption

if TYPE_CHECKING:
    # Imported where a class is loaded: every command checks the configured
    # executor names through this module, and naming a built-in needs no class.
    from executors.base import BaseExecutor

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "execconsole.executors"

# Listed here as well as in pyproject's entry points so that a source checkout
# that was never pip-installed still finds them.
BUILTIN_EXECUTORS: Mapping[str, str] = MappingProxyType(
    {
        "local": "executors.local:LocalExecutor",
        "sequential": "executors.sequential:SequentialExecutor",
        "celery": "executors.celery.executor:CeleryExecutor",
    }
)

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
ENTRY_FORMS = "NAME, ALIAS:NAME, MODULE:CLASS, MODULE.CLASS or ALIAS:MODULE:CLASS"


class ExecutorConfigError(ValueError):
    """An executor entry or list that cannot be used; the message is one line for the operator."""


# ---- executor options ------------------------------------------------------------

# Every executor takes ``parallelism`` (build_executors reads it), bounded as
# [core] parallelism and `execconsole parallelism N` are (the bound is checked
# in check_options: ExecutorOption shows bounds with :g, 2.14748e+09).
PARALLELISM_MAX = 2**31 - 1
COMMON_OPTIONS: Mapping[str, ExecutorOption] = MappingProxyType(
    {"parallelism": ExecutorOption("integer", 0)}
)


# The built-in executors' options, known without importing their modules
# (executors.local costs 25 ms): loading the config checks them, so every
# command refuses a value the engine would refuse, and `config show` lists
# them with their defaults. The classes declare the same option_specs, which
# the engine checks again; tests/test_config.py pins the two together.
BUILTIN_OPTIONS: Mapping[str, Mapping[str, tuple[ExecutorOption, Any]]] = MappingProxyType(
    {
        "local": MappingProxyType(
            {
                "prefetch": (ExecutorOption("flag"), True),
                "terminate_grace": (ExecutorOption("seconds", 0, 3600), 5.0),
                "quiet_start": (ExecutorOption("seconds", 0, 60), 0.005),
                "log_every_try": (ExecutorOption("flag"), False),
            }
        ),
    }
)


def builtin_option_defaults(name: str) -> dict[str, Any]:
    """A built-in executor's options with their defaults (``parallelism`` aside); {} for others."""
    return {key: default for key, (_, default) in BUILTIN_OPTIONS.get(name, {}).items()}


def check_builtin_options(name: str, options: Mapping[str, Any]) -> None:
    """``check_options`` for built-in executor ``name`` (see BUILTIN_OPTIONS), without importing it.

    Raises:
        ExecutorConfigError: as check_options.
    """
    declared = {key: option for key, (option, _) in BUILTIN_OPTIONS[name].items()}
    _check_declared(name, {**COMMON_OPTIONS, **declared}, options)


def declared_options(executor_class: type[BaseExecutor]) -> dict[str, ExecutorOption] | None:
    """The options ``executor_class`` reads, ``parallelism`` included; None if it does not say.

    Only a class's own ``option_specs`` count: a subclass may read more than
    the class it extends, so it is checked only once it declares its own.
    """
    declared = vars(executor_class).get("option_specs")
    if declared is None:
        return None
    return {**COMMON_OPTIONS, **declared}


def check_options(
    name: str, executor_class: type[BaseExecutor], options: Mapping[str, Any]
) -> None:
    """Refuse an option ``executor_class`` does not declare, or a value it cannot use.

    ``options`` may carry ``origins`` (console.config.ExecutorOptions): where
    each option was set, a file or an environment variable, to name in the
    message; otherwise the message names the executor.

    Raises:
        ExecutorConfigError: one line naming the option, what it must be, and where it was set.
    """
    declared = declared_options(executor_class)
    if declared is not None:
        _check_declared(name, declared, options)


def _check_declared(
    name: str, declared: Mapping[str, ExecutorOption], options: Mapping[str, Any]
) -> None:
    origins: Mapping[str, str] = getattr(options, "origins", {})
    sections: Mapping[str, str] = getattr(options, "sections", {})
    for key, value in options.items():
        where = origins.get(key)
        prefix = f"{where}: " if where else f"executor {name!r}: "
        section = sections.get(key, f"[executor.{name}]")
        option = declared.get(key)
        if option is None:
            import difflib  # only on an error path

            known = sorted(declared)
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = (
                f" (did you mean '{close[0]}'?)"
                if close
                else f"; known options: {', '.join(known)}"
            )
            raise ExecutorConfigError(f"{prefix}unknown option '{key}' in {section}{hint}")
        problem = option.problem(value)
        if problem is None and key == "parallelism" and value > PARALLELISM_MAX:
            problem = f"must be an integer from 0 to {PARALLELISM_MAX}"
        if problem is not None:
            fix = "; fix or unset the variable" if where and where.startswith("environment") else ""
            raise ExecutorConfigError(f"{prefix}{section} {key} {problem}, got {_show(value)}{fix}")


def _show(value: Any) -> str:
    """A value as TOML would show it, on one short line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    elif isinstance(value, dict):
        return "a table"
    elif isinstance(value, list):
        return "an array"
    else:
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True, slots=True)
class ExecutorSpec:
    """One configured executor: the name it is configured under and its class's import path."""

    name: str
    import_path: str  # "package.module:Class"

    @property
    def module(self) -> str:
        """The module that defines the class."""
        return self.import_path.partition(":")[0]

    @property
    def class_name(self) -> str:
        """The class's own name, read off the import path."""
        return self.import_path.partition(":")[2].rpartition(".")[2]


def available_executors() -> dict[str, str]:
    """Every known executor name with its import path: built-ins first, then entry points.

    Nothing is imported. An entry point may not replace a built-in: one that
    tries is ignored with a warning, so installing a package cannot silently
    change what ``local`` means.
    """
    # Imported here: 25-30 ms, paid only when a name is not a built-in one.
    from importlib.metadata import entry_points

    known = dict(BUILTIN_EXECUTORS)
    plugins: dict[str, str] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        import_path = f"{point.module}:{point.attr}"
        if not _NAME.match(point.name):
            log.warning("ignoring executor entry point %r: not a valid executor name", point.name)
        elif point.name in known:
            if known[point.name] != import_path:
                log.warning(
                    "ignoring executor entry point %r -> %s: the name is built in",
                    point.name,
                    import_path,
                )
        elif point.name in plugins:
            # Two installed packages claim one name; keep the first as
            # importlib.metadata would, and say so.
            if plugins[point.name] != import_path:
                log.warning(
                    "ignoring executor entry point %r -> %s: already provided by %s",
                    point.name,
                    import_path,
                    plugins[point.name],
                )
        else:
            plugins[point.name] = import_path
    known.update(sorted(plugins.items()))
    return known


class KnownExecutors(Mapping[str, str]):
    """``available_executors()``, read only as far as a lookup needs.

    A built-in name is answered at once; the entry points are scanned the
    first time anything else is asked. The scan reads the metadata of every
    installed distribution (0.2 s of a 0.9 s ``execconsole run`` with a few
    hundred packages installed), which naming ``local`` never needs.
    """

    def __init__(self) -> None:
        self._everything: dict[str, str] | None = None

    def _all(self) -> dict[str, str]:
        if self._everything is None:
            self._everything = available_executors()
        return self._everything

    def __getitem__(self, name: str) -> str:
        if name in BUILTIN_EXECUTORS:
            return BUILTIN_EXECUTORS[name]
        return self._all()[name]

    def __contains__(self, name: object) -> bool:
        return name in BUILTIN_EXECUTORS or name in self._all()

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


def parse_executor_list(text: str) -> list[ExecutorSpec]:
    """Parse ``"local,celery"`` into specs, the default first.

    Raises:
        ExecutorConfigError: the list is empty, an entry is empty or malformed,
            names an unknown executor, or two entries share a configured name.
    """
    entries = [entry.strip() for entry in text.split(",")]
    if entries == [""]:
        # An empty --executor '' too: say what there is to choose from.
        raise ExecutorConfigError(
            f"no executor named: name at least one, e.g. 'local'; available: "
            f"{', '.join(KnownExecutors())} (or give {ENTRY_FORMS})"
        )
    known = KnownExecutors()
    specs: list[ExecutorSpec] = []
    for position, entry in enumerate(entries, start=1):
        if not entry:
            raise ExecutorConfigError(
                f"executor list {text!r} has an empty entry at position {position}: remove the extra comma"
            )
        specs.append(parse_executor_spec(entry, known))
    _refuse_duplicates(specs)
    return specs


def parse_executor_spec(entry: str, known: Mapping[str, str] | None = None) -> ExecutorSpec:
    """Parse one entry of an executor list (see the module docstring for its forms).

    Args:
        entry: the entry, e.g. ``"local"`` or ``"fast:executors.local:LocalExecutor"``.
        known: known names with import paths; defaults to ``available_executors()``.

    Raises:
        ExecutorConfigError: the entry is malformed or names an unknown executor.
    """
    entry = entry.strip()
    if known is None:
        known = KnownExecutors()
    if not entry:
        raise ExecutorConfigError(f"empty executor entry: expected {ENTRY_FORMS}")
    parts = entry.split(":")
    if any(not part or part != part.strip() for part in parts):
        raise ExecutorConfigError(
            f"executor entry {entry!r} has an empty or padded part around ':'; expected {ENTRY_FORMS}"
        )
    if len(parts) > 3:
        raise ExecutorConfigError(
            f"executor entry {entry!r} has too many ':'; expected {ENTRY_FORMS}"
        )

    if len(parts) == 3:
        alias, module, class_name = parts
        return ExecutorSpec(_check_alias(alias, entry), _import_path(module, class_name, entry))

    if len(parts) == 2:
        left, right = parts
        if "." in left:
            return _spec_for_path(_import_path(left, right, entry), known)
        alias = left
        if "." in right:
            return ExecutorSpec(_check_alias(alias, entry), _dotted_import_path(right, entry))
        found = _find_known(right, known)
        if found is not None:
            return ExecutorSpec(_check_alias(alias, entry), found[1])
        if left.isidentifier() and importlib.util.find_spec(left) is None:
            # Neither a known name nor an importable top-level module: most
            # likely an alias for a misspelt name, so say what is available.
            raise _unknown(right, known, entry)
        return _spec_for_path(_import_path(left, right, entry), known)

    (target,) = parts
    if "." in target:
        return _spec_for_path(_dotted_import_path(target, entry), known)
    found = _find_known(target, known)
    if found is None:
        raise _unknown(target, known, entry)
    return ExecutorSpec(*found)


def load_executor_class(spec: ExecutorSpec | str) -> type[BaseExecutor]:
    """Import the class a spec names (an entry string is parsed first).

    Raises:
        ExecutorConfigError: the module cannot be imported, has no such class,
            or the object is not a BaseExecutor subclass.
    """
    from executors.base import BaseExecutor

    if isinstance(spec, str):
        spec = parse_executor_spec(spec)
    module_name, _, attribute = spec.import_path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ExecutorConfigError(
            f"executor {spec.name!r}: cannot import {module_name} ({error}); "
            "is the package that provides it installed?"
        ) from error
    found: Any = module
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise ExecutorConfigError(
                f"executor {spec.name!r}: {module_name} has no {attribute!r}"
            ) from None
    if not (isinstance(found, type) and issubclass(found, BaseExecutor)) or found is BaseExecutor:
        raise ExecutorConfigError(
            f"executor {spec.name!r}: {spec.import_path} is not an executor class "
            "(it must be a subclass of executors.base.BaseExecutor)"
        )
    return found


def build_executors(
    specs: Sequence[ExecutorSpec],
    parallelism: int,
    home: str | os.PathLike[str] | None = None,
    options_by_name: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, BaseExecutor]:
    """Instantiate the configured executors, keyed by configured name, in order (default first).

    Args:
        specs: from ``parse_executor_list``.
        parallelism: each executor's parallelism, unless its options hold
            ``parallelism``, which wins for that executor alone.
        home: the EXECCONSOLE_HOME directory handed to every executor.
        options_by_name: executor-specific settings by configured name; names
            that are not configured are ignored (the config file may describe
            executors this run does not use).

    Raises:
        ExecutorConfigError: no specs, a duplicate name, a class that cannot be
            loaded, or settings the executor refuses.
    """
    if not specs:
        raise ExecutorConfigError("no executor configured: name at least one, e.g. 'local'")
    _refuse_duplicates(specs)
    options_by_name = options_by_name or {}
    home_dir = os.fspath(home) if home is not None else None
    executors: dict[str, BaseExecutor] = {}
    for spec in specs:
        executor_class = load_executor_class(spec)
        given = options_by_name.get(spec.name, {})
        check_options(spec.name, executor_class, given)
        options = dict(given)
        own_parallelism = options.pop("parallelism", parallelism)
        if isinstance(own_parallelism, bool) or not isinstance(own_parallelism, int):
            raise ExecutorConfigError(
                f"executor {spec.name!r}: parallelism must be a whole number, not {own_parallelism!r}"
            )
        try:
            executors[spec.name] = executor_class(
                own_parallelism, name=spec.name, home=home_dir, options=options
            )
        except ValueError as error:
            raise ExecutorConfigError(f"executor {spec.name!r}: {error}") from error
    return executors


# ---- helpers ------------------------------------------------------------------


def _refuse_duplicates(specs: Sequence[ExecutorSpec]) -> None:
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise ExecutorConfigError(
                f"executor {spec.name!r} is configured twice; "
                f"give one an alias, e.g. '{spec.name}2:{spec.import_path}'"
            )
        seen.add(spec.name)


def _find_known(target: str, known: Mapping[str, str]) -> tuple[str, str] | None:
    """A known executor by short name, else by class name; None if neither matches."""
    if target in known:
        return target, known[target]
    matches = [
        (name, path)
        for name, path in known.items()
        if ExecutorSpec(name, path).class_name == target
    ]
    if len(matches) > 1:
        names = ", ".join(f"{name} ({path})" for name, path in matches)
        raise ExecutorConfigError(
            f"executor class name {target!r} is ambiguous: {names}; use one of the short names"
        )
    return matches[0] if matches else None


def _spec_for_path(import_path: str, known: Mapping[str, str]) -> ExecutorSpec:
    """A spec for a module path with no alias: a known executor keeps its name, others use ``name``."""
    for name, path in known.items():
        if path == import_path:
            return ExecutorSpec(name, path)
    from executors.base import BaseExecutor

    # Not known, so the class itself must say what it is called.
    executor_class = load_executor_class(ExecutorSpec(import_path, import_path))
    name = executor_class.name
    if name == BaseExecutor.name or not _NAME.match(name):
        raise ExecutorConfigError(
            f"executor class {import_path} does not set a usable `name`; "
            f"configure it with an alias, e.g. 'myexecutor:{import_path}'"
        )
    return ExecutorSpec(name, import_path)


def _unknown(target: str, known: Mapping[str, str], entry: str) -> ExecutorConfigError:
    where = "" if target == entry else f" in {entry!r}"
    return ExecutorConfigError(
        f"unknown executor {target!r}{where}; available: {', '.join(known) or 'none'} "
        "(or give MODULE:CLASS)"
    )


def _check_alias(alias: str, entry: str) -> str:
    if not _NAME.match(alias):
        raise ExecutorConfigError(
            f"executor alias {alias!r} in {entry!r} is not a valid name: "
            "use letters, digits, '_' and '-', starting with a letter"
        )
    return alias


def _is_identifier(text: str) -> bool:
    return text.isidentifier() and not keyword.iskeyword(text)


def _import_path(module: str, class_name: str, entry: str) -> str:
    if not all(_is_identifier(part) for part in module.split(".")):
        raise ExecutorConfigError(f"executor entry {entry!r}: {module!r} is not a module path")
    if not _is_identifier(class_name):
        raise ExecutorConfigError(f"executor entry {entry!r}: {class_name!r} is not a class name")
    return f"{module}:{class_name}"


def _dotted_import_path(dotted: str, entry: str) -> str:
    module, _, class_name = dotted.rpartition(".")
    return _import_path(module, class_name, entry)


__all__ = [
    "BUILTIN_EXECUTORS",
    "BUILTIN_OPTIONS",
    "ENTRY_POINT_GROUP",
    "ExecutorConfigError",
    "ExecutorOption",
    "ExecutorSpec",
    "available_executors",
    "build_executors",
    "builtin_option_defaults",
    "check_builtin_options",
    "check_options",
    "declared_options",
    "load_executor_class",
    "parse_executor_list",
    "parse_executor_spec",
]
