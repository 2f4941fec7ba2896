"""Finding the scenarios users declare in Python: ``@scenario``, ``@run_spec_function`` and
``@value_expander`` only mark a function; the session registers the marked functions it finds.

They are found among the attributes of every plugin module and ``conftest.py`` pytest registers,
and of every test module (and class) pytest collects, so a scenario declared in a test module
is there before that module's tests run, in each xdist worker as in a single process.
"""

from __future__ import annotations

import types
from collections.abc import Iterable
from typing import Any

import pytest

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.extensions import Registries
from pytest_llmeval.runspec import RUN_SPEC_MARK, VALUE_EXPANDER_MARK
from pytest_llmeval.scenarios.decorator import declarations


def _origin(function: Any) -> str:
    return f"{getattr(function, '__module__', '?')}:{getattr(function, '__qualname__', '?')}"


def register_declared(registries: Registries, objects: Iterable[Any]) -> None:
    """Register every marked function and scenario declaration among ``objects``."""
    for obj in objects:
        for declaration in declarations(obj):
            declaration.register(registries)
        if not callable(obj):
            continue
        marks = getattr(obj, "__dict__", {})
        if isinstance(marks.get(RUN_SPEC_MARK), str):
            try:
                registries.run_spec_function(marks[RUN_SPEC_MARK], obj, _origin(obj))
            except ConfigError as exc:
                raise exc.located(entry=f"run-spec function {_origin(obj)}") from None
        if isinstance(marks.get(VALUE_EXPANDER_MARK), tuple):
            scenario, key, value = marks[VALUE_EXPANDER_MARK]
            try:
                registries.value_expander(scenario, key, value, obj, _origin(obj))
            except ConfigError as exc:
                raise exc.located(entry=f"value expander {_origin(obj)}") from None


class DeclaredScenarios:
    """A pytest plugin object per session: it registers what plugins, conftest files and test
    modules declare into that session's registries."""

    def __init__(self, registries: Registries) -> None:
        self.registries = registries

    def pytest_plugin_registered(self, plugin: Any) -> None:
        """Historic: called for the plugins registered before this one too."""
        if isinstance(plugin, types.ModuleType):
            try:
                register_declared(self.registries, list(vars(plugin).values()))
            except ConfigError as exc:
                raise pytest.UsageError(f"pytest-llmeval: {exc}") from None

    def pytest_pycollect_makeitem(self, collector: pytest.Collector, name: str, obj: Any) -> None:
        """Each attribute of a test module or class; the item itself is made by pytest as usual."""
        try:
            register_declared(self.registries, [obj])
        except ConfigError as exc:
            raise collector.CollectError(str(exc)) from None


__all__ = ["DeclaredScenarios", "register_declared"]
