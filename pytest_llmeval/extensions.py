"""The session's registries: every named thing a run entry, an eval file or a deployment can refer to.

One :class:`Registries` belongs to one pytest session (``LLMEvalSession.registries``, kept in
``config.stash``); an xdist worker builds its own. It is filled at session start, in this order:
the built-ins (:func:`pytest_llmeval.builtins.register_builtins`), installed packages through
entry points (:mod:`pytest_llmeval.entry_points`), plugins and ``conftest.py`` files through the
``pytest_llmeval_register(registries)`` hook (:mod:`pytest_llmeval.hookspecs`), then decorated
functions (``@scenario``, ``@run_spec_function``, ``@value_expander``) found in conftest files,
plugins and test modules, and the ``scenarios:`` sections of the eval files being collected.
Nothing registers at import time, so two sessions in one process never see each other's names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pytest_llmeval.errors import ConfigError

if TYPE_CHECKING:
    from pytest_llmeval.adapters.adapter_spec import AdapterSpec
    from pytest_llmeval.clients.factory import ClientBackend
    from pytest_llmeval.runspec import Description, RunSpec

T = TypeVar("T")
BUILTIN = "built-in"

RunSpecFunction = Callable[["Description"], "RunSpec"]
ValueExpander = Callable[[], Sequence[str]]
Matcher = Callable[[str, str], float]
AdapterFactory = Callable[[], "AdapterSpec"]


class NameTable(Mapping[str, T], Generic[T]):
    """Things of one kind by name, each with where it was declared (``built-in``, a package, a file).

    Read like a mapping; :meth:`add` refuses a name another origin already declared, so a user's
    scenario cannot silently replace a built-in one or another file's.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._origins: dict[str, str] = {}

    def add(self, name: str, item: T, origin: str = BUILTIN) -> None:
        """Declare ``name``; declaring the same thing again, or from the same origin, is fine."""
        existing = self._items.get(name)
        if existing is not None and existing is not item and self._origins[name] != origin:
            if self._origins[name] == BUILTIN:
                raise ConfigError(f"{self.kind} name {name!r} is taken by a built-in {self.kind}; choose another "
                                  f"name", field="name")
            raise ConfigError(f"{self.kind} {name!r} is already declared in {self._origins[name]}; choose another "
                              f"name", field="name")
        self._items[name] = item
        self._origins[name] = origin

    def origin(self, name: str) -> str | None:
        return self._origins.get(name)

    def __getitem__(self, name: str) -> T:
        return self._items[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"NameTable({self.kind!r}, {sorted(self._items)})"


def expander_key(scenario: str, key: str, value: str) -> str:
    """How a value expander is named: the description it expands (``mmlu:subject=all``)."""
    return f"{scenario}:{key}={value}"


@dataclass
class Registries:
    """The session's registries, one :class:`NameTable` per kind.

    - ``scenarios``: run-spec functions (``Description -> RunSpec``) by scenario name;
    - ``expanders``: value expanders (``() -> values``) by ``scenario:key=value``;
    - ``metrics``: reference matchers (``(gold, prediction) -> float``) by metric name;
    - ``adapters``: base adapter specs for a user scenario's ``adapter:`` setting, by name;
    - ``games``: folders holding clembench game folders, by source (``built-in``, ``package x``);
    - ``clients``: client backends by the ``client_spec.class_name`` that selects them.
    """

    scenarios: NameTable[RunSpecFunction] = field(default_factory=lambda: NameTable("scenario"))
    expanders: NameTable[ValueExpander] = field(default_factory=lambda: NameTable("value expander"))
    metrics: NameTable[Matcher] = field(default_factory=lambda: NameTable("metric"))
    adapters: NameTable[AdapterFactory] = field(default_factory=lambda: NameTable("adapter"))
    games: NameTable[Path] = field(default_factory=lambda: NameTable("game source"))
    clients: NameTable[ClientBackend] = field(default_factory=lambda: NameTable("client class"))

    def run_spec_function(self, name: str, function: RunSpecFunction, origin: str = BUILTIN) -> None:
        self.scenarios.add(name, function, origin)

    def value_expander(self, scenario: str, key: str, value: str, function: ValueExpander,
                       origin: str = BUILTIN) -> None:
        self.expanders.add(expander_key(scenario, key, value), function, origin)

    def matchers(self, names: Sequence[str], where: Any = None) -> dict[str, Matcher]:
        """The matchers for ``names``; an unknown name says which metrics exist."""
        unknown = [name for name in names if name not in self.metrics]
        if unknown:
            raise ConfigError(f"unknown metric {unknown[0]!r}{f' in {where}' if where else ''}; use any of: "
                              f"{', '.join(sorted(self.metrics))}", field="metrics")
        return {name: self.metrics[name] for name in names}


__all__ = ["BUILTIN", "AdapterFactory", "Matcher", "NameTable", "Registries", "RunSpecFunction", "ValueExpander",
           "expander_key"]
