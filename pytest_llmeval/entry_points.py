"""Installed packages extend a session through entry points, one group per kind.

In each group the entry point's object is the thing to register, under the entry point's name:

- ``pytest_llmeval.scenarios``: a run-spec function (``Description -> RunSpec``) named by the
  entry point, or a ``@scenario``-decorated function (registered under its declared name);
- ``pytest_llmeval.metrics``: a matcher ``(gold, prediction) -> float`` named by the entry point;
- ``pytest_llmeval.clients``: a Python client (a ``generate(requests)`` function, or a class
  whose instances have one) selected by ``client_spec.class_name`` equal to the entry point's name;
- ``pytest_llmeval.games``: a module whose folder holds game folders (the entry point's name
  labels the source).

A package that registers several kinds, value expanders or adapters, is a pytest plugin
(``pytest11``) implementing ``pytest_llmeval_register(registries)`` instead.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

from pytest_llmeval.clients.factory import CALLABLE, ClientBackend
from pytest_llmeval.errors import ConfigError
from pytest_llmeval.extensions import Registries
from pytest_llmeval.scenarios.decorator import declarations

SCENARIOS, METRICS, CLIENTS, GAMES = ("pytest_llmeval.scenarios", "pytest_llmeval.metrics",
                                      "pytest_llmeval.clients", "pytest_llmeval.games")
EntryPoints = Callable[[str], Iterable[EntryPoint]]


def installed() -> EntryPoints:
    """The installed packages' entry points by group, read once (each read walks every package's
    metadata, and every pytest process, xdist workers included, reads them at start-up)."""
    found = entry_points()
    return lambda group: found.select(group=group)


def load_entry_points(registries: Registries, points: EntryPoints | None = None) -> Registries:
    """Register what every installed package declares in the four groups; returns ``registries``.
    Scenarios come last: their settings may name a package's metric."""
    points = points if points is not None else installed()
    for point in points(METRICS):
        obj = _load(point, METRICS)
        _check_callable(obj, point, METRICS)
        registries.metrics.add(point.name, obj, _origin(point, METRICS))
    for point in points(CLIENTS):
        obj = _load(point, CLIENTS)
        backend = obj if isinstance(obj, ClientBackend) else ClientBackend(CALLABLE, {}, obj)
        registries.clients.add(point.name, backend, _origin(point, CLIENTS))
    for point in points(GAMES):
        location = getattr(_load(point, GAMES, module_only=True), "__file__", None)
        if location:
            registries.games.add(f"package {point.name}", Path(location).resolve().parent, _origin(point, GAMES))
    for point in points(SCENARIOS):
        obj = _load(point, SCENARIOS)
        found = declarations(obj)
        for declaration in found:
            declaration.register(registries)
        if not found:
            _check_callable(obj, point, SCENARIOS)
            registries.run_spec_function(point.name, obj, _origin(point, SCENARIOS))
    return registries


def _origin(point: EntryPoint, group: str) -> str:
    return f"entry point {point.name} = {point.value} (group {group})"


def _load(point: EntryPoint, group: str, module_only: bool = False) -> Any:
    try:
        return importlib.import_module(point.module) if module_only else point.load()
    except Exception as exc:  # an installed package's import error, reported as one line
        raise ConfigError(f"cannot be loaded: {type(exc).__name__}: {exc}",
                          entry=_origin(point, group)) from None


def _check_callable(obj: Any, point: EntryPoint, group: str) -> None:
    if not callable(obj):
        raise ConfigError(f"{obj!r} is not a function", entry=_origin(point, group))


__all__ = ["CLIENTS", "GAMES", "METRICS", "SCENARIOS", "load_entry_points"]
