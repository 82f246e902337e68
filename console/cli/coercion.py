"""Fast parameter coercion for the CLI's plain option types.

Typer 0.29 coerces every non-flag parameter (even one left at its default)
through a pydantic ``TypeAdapter``: the first one costs importing pydantic and
building schemas, 100-150 ms on this machine, which is most of what a quick
command such as ``execconsole tasks list --json`` spends. Our parameters are
plain ``str``, ``int``, ``float``, ``Path`` and ``list[str]``, so before
Click parses anything we give each such parameter a coercer that converts the
ordinary inputs directly and hands anything unusual (or invalid) to Typer's
own pydantic coercion, so results and error messages stay exactly Typer's.

This reaches into Typer's private parameter API (``_runtime_param``,
``type_descriptor``; pinned by ``typer>=0.29,<0.30``). If that API is not
there, nothing is installed and Typer works as it always does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_INT = re.compile(r"-?(?:0|[1-9][0-9]{0,17})")
_FLOAT = re.compile(r"-?[0-9]{1,15}(?:\.[0-9]{1,15})?")
_MISSING = object()


def install() -> None:
    """Make Typer build our fast coercer for plain parameters. Idempotent.

    Hooks Typer's lazy ``get_runtime_param`` (called the first time a
    parameter's value is processed), so it covers every command, the help
    option Click adds on the fly, and command groups loaded later.
    """
    try:
        from typer._coercion import RuntimeParam
        from typer.core import _TyperParameter
    except ImportError:  # another Typer: leave it alone
        return
    original = getattr(_TyperParameter, "get_runtime_param", None)
    if original is None or getattr(original, "_execconsole_fast", False):
        return
    fast_class = _fast_param_class(RuntimeParam)

    def get_runtime_param(self: Any) -> Any:
        if getattr(self, "_runtime_param", _MISSING) is None:
            descriptor: Any = getattr(self, "type_descriptor", None)
            kind = _kind(descriptor)
            if kind is not None:
                self._runtime_param = fast_class(
                    parameter_info=descriptor.parameter_info,
                    annotation=descriptor.annotation,
                    kind=kind,
                    descriptor=descriptor,
                )
        return original(self)

    get_runtime_param._execconsole_fast = True  # type: ignore[attr-defined]
    _TyperParameter.get_runtime_param = get_runtime_param  # type: ignore[method-assign]


def _kind(descriptor: Any) -> str | None:
    """Which fast path fits the parameter, or None to leave it to Typer."""
    if descriptor is None or getattr(descriptor, "file_annotation", None) is not None:
        return None
    info = descriptor.parameter_info
    if getattr(info, "parser", None) is not None or getattr(info, "click_type", None) is not None:
        return None
    annotation = descriptor.annotation
    if annotation is bool:
        return "bool"
    if annotation is str:
        return "str"
    if annotation in (int, float):
        if info.min is not None or info.max is not None or info.clamp:
            return None
        return annotation.__name__
    if annotation is Path and info.path_type is None:
        return "path"
    if annotation == list[str]:
        return "list_str"
    return None


def _fast_value(kind: str, value: Any, descriptor: Any, param: Any, ctx: Any) -> Any:
    """The coerced value, or _MISSING when Typer's own coercion must decide."""
    if kind == "bool":
        return value if isinstance(value, bool) else _MISSING
    if kind == "str":
        return value if isinstance(value, str) else _MISSING
    if kind == "int":
        if type(value) is int:  # a default
            return value
        return int(value) if isinstance(value, str) and _INT.fullmatch(value) else _MISSING
    if kind == "float":
        if type(value) in (int, float):  # a default
            return float(value)
        return float(value) if isinstance(value, str) and _FLOAT.fullmatch(value) else _MISSING
    if kind == "list_str":
        if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
            return list(value)
        return _MISSING
    if kind == "path":
        if not isinstance(value, str) or not value:
            return _MISSING
        from typer._param_types import coerce_cli_path

        # Typer's own checks (exists, readable, ...), given a Path so that it
        # never needs pydantic to make one.
        return coerce_cli_path(
            Path(value), descriptor.parameter_info, path_type=Path, param=param, ctx=ctx
        )
    return _MISSING


_classes: dict[type, type] = {}


def _fast_param_class(base: type) -> type:
    cached = _classes.get(base)
    if cached is not None:
        return cached

    @dataclass(frozen=True)
    class FastRuntimeParam(base):  # type: ignore[valid-type,misc]
        kind: str
        descriptor: Any

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            result = _fast_value(self.kind, value, self.descriptor, param, ctx)
            if result is not _MISSING:
                return result
            from typer._coercion import build_runtime_param

            return build_runtime_param(self.descriptor)._coerce_value(value, param=param, ctx=ctx)

    _classes[base] = FastRuntimeParam
    return FastRuntimeParam
