"""The layering rules of DESIGN.md, checked on the source itself.

- Core code (``console/``, ``store/``) never names a concrete executor: no
  import of an executor's module, no use of its class (``isinstance`` included),
  no string spelling its class or module. It asks BaseExecutor's capability
  interface instead (AIP-51).
- ``executors/`` and ``store/`` never import ``console``.
- Only console panels import Textual at module level, so headless commands
  start without it.

The scans read files with ``ast``; they pass on an empty tree and keep guarding
as code is added. Failures list every offence as ``path:line: what``.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_PROJECT = ROOT / "tests" / "plugins" / "execconsole_threads"
CORE_DIRS = ("console", "store")
HEADLESS_DIRS = ("executors", "store")

# Named here as well as discovered, so the rule holds even before (or after)
# their modules exist in this checkout.
KNOWN_EXECUTOR_CLASSES = frozenset(
    {"LocalExecutor", "SequentialExecutor", "CeleryExecutor", "ThreadPoolTaskExecutor"}
)
KNOWN_EXECUTOR_MODULES = frozenset(
    {
        "executors.local",
        "executors.local_worker",
        "executors.local_panel",
        "executors.sequential",
        "executors.celery",
        "execconsole_threads",
    }
)
# Where a module-level Textual import is allowed: the TUI and executors' panels.
TEXTUAL_ALLOWED = (
    "console/tui/",
    "executors/*_panel.py",
    "executors/celery/panel.py",
    "tests/plugins/execconsole_threads/execconsole_threads/panel.py",
)
OPTIONAL_DEPENDENCIES = ("celery", "redis", "kombu")
ENTRY_MODULES = ("console.cli.main",)


@dataclass(frozen=True)
class Source:
    """A parsed Python file and the module name it is imported as."""

    path: Path
    module: str
    tree: ast.Module

    @property
    def relative(self) -> str:
        return self.path.relative_to(ROOT).as_posix()

    def where(self, node: ast.AST) -> str:
        return f"{self.relative}:{getattr(node, 'lineno', 0)}"


def module_name(path: Path) -> str:
    """The dotted name a file is imported as (plug-in files relative to their project)."""
    base = PLUGIN_PROJECT if path.is_relative_to(PLUGIN_PROJECT) else ROOT
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def sources(*directories: str) -> tuple[Source, ...]:
    """Every .py file under the given directories (relative to the repository root), parsed."""
    found = []
    for directory in directories:
        for path in sorted((ROOT / directory).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            found.append(Source(path, module_name(path), tree))
    return tuple(found)


def executor_sources() -> tuple[Source, ...]:
    """The executors package and the example plug-in: where concrete executors live."""
    return sources("executors", PLUGIN_PROJECT.relative_to(ROOT).as_posix())


def base_name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


@cache
def concrete_executors() -> dict[str, str]:
    """Concrete executor class names, each with the module that defines it.

    A class counts when one of its bases ends in ``Executor``; BaseExecutor
    itself is the interface, not a concrete executor.
    """
    found = {name: "" for name in KNOWN_EXECUTOR_CLASSES}
    for source in executor_sources():
        for node in ast.walk(source.tree):
            if (
                isinstance(node, ast.ClassDef)
                and node.name != "BaseExecutor"
                and any(base_name(base).endswith("Executor") for base in node.bases)
            ):
                found[node.name] = source.module
    return found


@cache
def concrete_executor_modules() -> frozenset[str]:
    """Modules core code must not import: those of concrete executors, and their packages."""
    modules = set(KNOWN_EXECUTOR_MODULES)
    for module in concrete_executors().values():
        if not module:
            continue
        modules.add(module)
        package = module.rpartition(".")[0]
        if package not in ("", "executors"):  # executors/celery/... -> executors.celery
            modules.add(package)
    for source in sources("executors"):
        if source.module.endswith(("_panel", "_worker")):  # one executor's helpers, by convention
            modules.add(source.module)
    return frozenset(modules)


def is_within(module: str, packages: frozenset[str] | set[str]) -> bool:
    return any(module == package or module.startswith(package + ".") for package in packages)


def imported_modules(node: ast.AST) -> Iterator[str]:
    """Absolute module names an import statement brings in (``from a import b`` gives a and a.b)."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        yield node.module
        for alias in node.names:
            yield f"{node.module}.{alias.name}"


def module_level_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Imports executed when the module is imported: not in functions, not under TYPE_CHECKING."""
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        statement = pending.pop(0)
        if isinstance(statement, ast.Import | ast.ImportFrom):
            yield statement
        elif isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        elif isinstance(statement, ast.If) and "TYPE_CHECKING" in ast.unparse(statement.test):
            pending.extend(statement.orelse)
        else:
            for field in ("body", "orelse", "finalbody", "handlers", "cases"):
                for child in getattr(statement, field, []):
                    if isinstance(child, ast.ExceptHandler | ast.match_case):
                        pending.extend(child.body)
                    elif isinstance(child, ast.stmt):
                        pending.append(child)


def report(offences: list[str], rule: str) -> str:
    return f"{rule}:\n" + "\n".join(f"  {offence}" for offence in sorted(set(offences)))


# ---- the scan finds what it guards against --------------------------------------------


def test_the_scan_knows_the_concrete_executors() -> None:
    executors = concrete_executors()
    assert set(executors) >= KNOWN_EXECUTOR_CLASSES
    assert "BaseExecutor" not in executors
    # The plug-in is always present, so discovery is proven on a real file.
    assert executors["ThreadPoolTaskExecutor"] == "execconsole_threads.executor"


def test_the_scan_sees_through_imports_nested_in_blocks() -> None:
    tree = ast.parse(
        "import a\n"
        "try:\n    import b\nexcept ImportError:\n    import c\n"
        "if TYPE_CHECKING:\n    import d\nelse:\n    import e\n"
        "def f():\n    import g\n"
        "class K:\n    import h\n"
    )
    names = [name for node in module_level_imports(tree) for name in imported_modules(node)]
    assert sorted(names) == ["a", "b", "c", "e", "h"]


# ---- AIP-51: core code never names an executor ----------------------------------------


def concrete_references(tree: ast.Module) -> Iterator[tuple[ast.AST, str]]:
    """Every way a module can depend on a concrete executor: (node, what it does)."""
    classes = set(concrete_executors())
    modules = concrete_executor_modules()
    type_checked: set[int] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("isinstance", "issubclass")
            and len(node.args) == 2
        ):
            for inner in ast.walk(node.args[1]):
                if base_name(inner) in classes:
                    type_checked.add(id(inner))
                    yield node, f"{node.func.id}() check against {base_name(inner)}"
    for node in ast.walk(tree):
        for module in imported_modules(node):
            if is_within(module, modules):
                yield node, f"imports concrete executor module {module}"
                break
        if isinstance(node, ast.Name | ast.Attribute) and id(node) not in type_checked:
            if base_name(node) in classes:
                yield node, f"names concrete executor class {base_name(node)}"
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value.strip()
            # "LocalExecutor", "executors.local", "executors.local:LocalExecutor" ...
            if text in classes or is_within(text.partition(":")[0], modules):
                yield node, f"spells concrete executor {text!r} in a string"


def test_core_code_never_names_a_concrete_executor() -> None:
    offences = [
        f"{source.where(node)}: {what}"
        for source in sources(*CORE_DIRS)
        for node, what in concrete_references(source.tree)
    ]
    assert not offences, report(
        offences,
        "console/ and store/ must reach executors only through BaseExecutor's interface "
        "(capability flags, vended CLI groups, panels and key bindings, executors.loader)",
    )


def test_the_concrete_reference_scan_catches_each_form() -> None:
    """The scan itself, on code that breaks the rule in every way it knows."""
    tree = ast.parse(
        "from executors.local import LocalExecutor\n"
        "import executors.celery.executor\n"
        "from executors import sequential\n"
        "def f(executor):\n"
        "    if isinstance(executor, (LocalExecutor, str)):\n"
        "        return type(executor).__name__ == 'CeleryExecutor'\n"
        "    return importlib.import_module('executors.local')\n"
        "EXECUTOR = 'local'  # a short name as a default is fine (AIP-51, coupling 7)\n"
    )
    found = sorted(
        (getattr(node, "lineno", 0), what.split(" ")[0]) for node, what in concrete_references(tree)
    )
    assert found == [
        (1, "imports"),
        (2, "imports"),
        (3, "imports"),
        (5, "isinstance()"),
        (6, "spells"),
        (7, "spells"),
    ]


# ---- dependency direction -----------------------------------------------------------------


def test_executors_and_store_never_import_console() -> None:
    offences = [
        f"{source.where(node)}: imports {module}"
        for source in (*sources(*HEADLESS_DIRS), *executor_sources())
        for node in ast.walk(source.tree)
        for module in imported_modules(node)
        if module == "console" or module.startswith("console.")
    ]
    assert not offences, report(offences, "executors/ and store/ must not import console")


# ---- Textual stays out of headless code ------------------------------------------------------


def textual_allowed(source: Source) -> bool:
    relative = source.path.relative_to(ROOT)
    return any(
        relative.match(pattern) or source.relative.startswith(pattern)
        for pattern in TEXTUAL_ALLOWED
    )


def textual_offences(scanned: Sequence[Source]) -> list[str]:
    """Module-level imports of Textual, or of a panel module, outside the allowed places."""
    panels = {source.module for source in scanned if textual_allowed(source)}
    offences = []
    for source in scanned:
        if textual_allowed(source):
            continue
        for node in module_level_imports(source.tree):
            for module in imported_modules(node):
                if module == "textual" or module.startswith("textual."):
                    offences.append(f"{source.where(node)}: imports {module}")
                    break
                if is_within(module, panels):
                    offences.append(f"{source.where(node)}: imports panel module {module}")
                    break
    return offences


def test_only_console_panels_import_textual_at_module_level() -> None:
    offences = textual_offences((*sources("console", "executors", "store"), *executor_sources()))
    assert not offences, report(
        offences,
        "only console/tui and executor panels may import Textual at module level; "
        "import it inside the function that builds the widget",
    )


def test_the_textual_scan_tells_panels_from_headless_code() -> None:
    def source(path: str, code: str) -> Source:
        return Source(ROOT / path, module_name(ROOT / path), ast.parse(code))

    offences = textual_offences(
        [
            source("console/tui/app.py", "from textual.app import App\n"),
            source("executors/local_panel.py", "import textual\n"),
            source("executors/local.py", "def panel():\n    import textual\n"),
            source("console/cli/main.py", "\nfrom textual.widgets import Static\n"),
            source("console/engine.py", "import executors.local_panel\n"),
        ]
    )
    assert sorted(offences) == [
        "console/cli/main.py:2: imports textual.widgets",
        "console/engine.py:1: imports panel module executors.local_panel",
    ]


def test_headless_modules_import_without_textual() -> None:
    """Import every headless module in a fresh interpreter; Textual must never load."""
    headless = {
        source.module
        for source in (*sources("executors", "store", "console"), *executor_sources())
        # __main__ modules are programs: importing one would run it.
        if not textual_allowed(source) and source.module and not source.module.endswith("__main__")
    }
    # Entry points first: the CLI imports its command modules itself, and some
    # of them are only meant to be imported that way.
    entry_points = [module for module in ENTRY_MODULES if module in headless]
    modules = entry_points + sorted(headless - set(entry_points))
    script = f"""
import importlib, sys
for name in {modules!r}:
    try:
        importlib.import_module(name)
    except ImportError as error:
        if (error.name or "").split(".")[0] in {OPTIONAL_DEPENDENCIES!r}:
            continue
        raise
    if "textual" in sys.modules:
        print(name)
        break
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{PLUGIN_PROJECT}"},
    )
    assert result.returncode == 0, result.stderr
    assert not result.stdout.strip(), f"importing {result.stdout.strip()} loaded textual"
