"""The built-in executors' options as the config knows them match what the executors read."""

from __future__ import annotations

import pytest

from executors.loader import BUILTIN_OPTIONS, builtin_option_defaults, load_executor_class


@pytest.mark.parametrize("name", sorted(BUILTIN_OPTIONS))
def test_the_configs_declarations_are_the_executor_classes_own(name: str) -> None:
    executor_class = load_executor_class(name)
    declared = {key: option for key, (option, _) in BUILTIN_OPTIONS[name].items()}
    assert declared == dict(executor_class.option_specs or {})


@pytest.mark.parametrize("name", sorted(BUILTIN_OPTIONS))
def test_the_defaults_shown_are_the_ones_an_executor_built_without_options_uses(
    name: str,
) -> None:
    executor = load_executor_class(name)(2, name=name, options={})
    for key, default in builtin_option_defaults(name).items():
        assert getattr(executor, key) == default, key
