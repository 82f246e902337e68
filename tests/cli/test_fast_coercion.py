"""The CLI's fast parameter coercion gives exactly what Typer's own coercion gives."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer._click.exceptions import BadParameter
from typer._coercion import RuntimeParam, build_runtime_param

from console.cli import coercion
from console.cli.main import BUILTIN_COMMANDS, app, build_builtin
from tests.helpers import REPO

SAMPLES: dict[str, list[Any]] = {
    "bool": [True, False],
    "str": ["abc", "", " spaced ", "dag/task/run#2"],
    "int": ["12", "0", "-3", "0012", " 12", "+5", "1_000", "1e3", "x", "", 5, 0],
    "float": ["1.5", "2", "-0.25", "1e3", "inf", "x", "", 3, 2.5],
    "list_str": [("a", "b"), (), ["x"], ("--", "echo")],
}


def _params() -> list[Any]:
    found: list[Any] = []

    def walk(command: Any) -> None:
        found.extend(p for p in command.params if hasattr(p, "type_descriptor"))
        for sub in getattr(command, "commands", {}).values():
            walk(sub)

    walk(typer.main.get_command(app))
    for name in BUILTIN_COMMANDS:  # built lazily, so not in the tree above
        walk(build_builtin(name))
    walk(typer.main.get_command(_every_kind))
    return found


# One parameter of each kind the fast path handles, so that each stays checked
# against Typer's own coercion even while no built-in command has one (the CLI
# reads durations as text since console/durations.py: no float option is left).
_every_kind = typer.Typer()


@_every_kind.command()
def _sample(number: float = 1.0, count: int = 1, name: str = "", flag: bool = False) -> None:
    """Never run: only its parameters are looked at."""


def _outcome(runtime_param: Any, sample: Any, param: Any) -> tuple[str, Any]:
    try:
        value = runtime_param._coerce_value(sample, param, None)
    except BadParameter as error:
        return "error", error.format_message()
    return "value", (type(value), value)


def _fast(param: Any, kind: str) -> Any:
    descriptor = param.type_descriptor
    cls = coercion._fast_param_class(RuntimeParam)
    return cls(
        parameter_info=descriptor.parameter_info,
        annotation=descriptor.annotation,
        kind=kind,
        descriptor=descriptor,
    )


def test_every_plain_parameter_gets_the_fast_path() -> None:
    kinds = {coercion._kind(p.type_descriptor) for p in _params()}
    assert None not in kinds, "a parameter type the fast path does not know: extend it"


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_fast_coercion_matches_typer(kind: str) -> None:
    params = [p for p in _params() if coercion._kind(p.type_descriptor) == kind]
    assert params, kind
    for param in params:
        fast = _fast(param, kind)
        slow = build_runtime_param(param.type_descriptor)
        for sample in SAMPLES[kind]:
            got, want = _outcome(fast, sample, param), _outcome(slow, sample, param)
            assert got == want, (param.name, sample)


def test_fast_path_coercion_matches_typer(tmp_path: Path) -> None:
    unreadable = tmp_path / "locked.db"
    unreadable.write_text("")
    unreadable.chmod(0)
    samples = [str(tmp_path), str(tmp_path / "new.db"), str(unreadable), "", "relative/x.toml"]
    params = [p for p in _params() if coercion._kind(p.type_descriptor) == "path"]
    assert params
    try:
        for param in params:
            fast = _fast(param, "path")
            slow = build_runtime_param(param.type_descriptor)
            for sample in samples:
                got, want = _outcome(fast, sample, param), _outcome(slow, sample, param)
                assert got == want, (param.name, sample)
    finally:
        unreadable.chmod(0o600)


def test_quick_commands_do_not_import_pydantic(tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "from console.cli.main import main\n"
        "code = main(sys.argv[1:])\n"
        "assert 'pydantic' not in sys.modules, 'pydantic was imported'\n"
        "sys.exit(code)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECCONSOLE")}
    env["EXECCONSOLE_HOME"] = str(tmp_path / "home")
    for args in (
        ["tasks", "list", "--json", "--state", "running", "--limit", "10"],
        ["--store", str(tmp_path / "other.db"), "tasks", "list"],
    ):
        result = subprocess.run(
            [sys.executable, "-c", probe, *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
