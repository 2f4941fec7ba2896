"""Scenarios written in Python: a function that returns instances, declared under a name.

```python
from pytest_llmeval import scenario

@scenario("arith", max_tokens=3, metrics=["exact_match"])
def arith(top: int = 5):
    return [{"input": f"{a}+{a}=", "references": [str(2 * a)]} for a in range(top)]
```

The decorator only marks the function (nothing is registered at import time); each pytest
session registers the marked functions it finds in its ``conftest.py`` files, plugins and test
modules, so run entries say ``arith`` or ``arith:top=9,max_train_instances=0``. Records are dicts (``input`` plus
``references``, or ``choices`` and ``answer``; optional ``split`` and ``id``) or
:class:`~pytest_llmeval.Instance` objects. Entry arguments arrive as keyword arguments,
converted to the type of the parameter's default; a parameter named ``locator`` receives the
session's :class:`~pytest_llmeval.scenarios.data.DataLocator` to fetch data by URI.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, overload

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.runspec import Description, RunSpec
from pytest_llmeval.scenarios.data import DataLocator
from pytest_llmeval.scenarios.registration import (
    SETTING_FIELDS,
    ScenarioSettings,
    check_name,
    reject_arguments,
    run_spec_for,
)
from pytest_llmeval.scenarios.row_instances import ANSWER_FORMATS, RecordError, instance_from_record
from pytest_llmeval.scenarios.scenario import Instance, Scenario, with_ids

if TYPE_CHECKING:
    from pytest_llmeval.extensions import Registries

SCENARIO_MARK = "__llmeval_scenarios__"  # the declarations a decorated function carries
LOCATOR_PARAMETER = "locator"
Record = Instance | Mapping[str, Any]
InstancesFunction = Callable[..., Iterable[Record]]
F = TypeVar("F", bound=InstancesFunction)


@dataclass(frozen=True)
class FunctionScenarioDefinition:
    """A registered Python scenario: the function, its settings and the arguments it takes."""

    name: str
    function: InstancesFunction
    settings: ScenarioSettings
    answer_format: str = "auto"

    @property
    def origin(self) -> str:
        return f"{self.function.__module__}:{self.function.__qualname__}"

    @property
    def source_file(self) -> str | None:
        try:
            return inspect.getsourcefile(self.function)
        except TypeError:
            return None

    def error(self, message: str, field: str | None = None) -> ConfigError:
        return ConfigError(message, file=self.source_file, entry=f"scenario {self.name!r} ({self.origin})",
                           field=field)

    @property
    def parameters(self) -> dict[str, inspect.Parameter]:
        """The parameters a run entry may set (all but ``locator``)."""
        signature = inspect.signature(self.function)
        return {name: p for name, p in signature.parameters.items()
                if name != LOCATOR_PARAMETER and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}

    def run_spec(self, description: Description) -> RunSpec:
        parameters = self.parameters
        takes_any = any(p.kind == p.VAR_KEYWORD for p in inspect.signature(self.function).parameters.values())
        if not takes_any:
            reject_arguments(description, tuple(parameters))
        args = dict(description.args)
        for name, parameter in parameters.items():
            if parameter.default is parameter.empty and name not in args:
                raise ConfigError(f"{description} needs {name}=<value> ({self.name}:{name}=...)", field=name)
        return run_spec_for(self.name, self.settings, FunctionScenario, {"scenario": self.name, "args": args},
                            description, self)

    def call(self, args: Mapping[str, str], locator: DataLocator) -> list[Instance]:
        parameters = self.parameters
        kwargs: dict[str, Any] = {key: _convert(value, parameters.get(key), key) for key, value in args.items()}
        if LOCATOR_PARAMETER in inspect.signature(self.function).parameters:
            kwargs[LOCATOR_PARAMETER] = locator
        records = self.function(**kwargs)
        if records is None or isinstance(records, (str, bytes, Mapping)) or not isinstance(records, Iterable):
            raise self.error(f"must return a list of instances or dicts, not {type(records).__name__}")
        instances = []
        for number, record in enumerate(records):
            try:
                instance = instance_from_record(record, self.answer_format)
            except RecordError as exc:
                raise self.error(f"instance #{number}: {exc.message}", exc.field) from None
            if self.settings.multiple_choice and len(instance.references) < 2:
                raise self.error(f"instance #{number}: multiple_choice_joint needs choices and an answer",
                                 "choices")
            instances.append(instance)
        if not instances:
            raise self.error("returned no instances")
        numbered = with_ids(instances)
        seen: set[str] = set()
        for instance in numbered:
            if instance.id in seen:
                raise self.error(f"two instances have the id {instance.id!r}", "id")
            seen.add(instance.id)
        return numbered


def _convert(value: str, parameter: inspect.Parameter | None, name: str) -> Any:
    """Entry arguments are text; a parameter with an int, float or bool default gets that type."""
    default = parameter.default if parameter is not None else inspect.Parameter.empty
    try:
        if isinstance(default, bool):
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("true", "1", "yes")
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a {type(default).__name__}", field=name) from None
    return value


class FunctionScenario(Scenario):
    """The instances of a Python scenario: the registered function's records."""

    tags = ("user_defined",)

    def __init__(self, scenario: str, args: dict[str, str], locator: DataLocator,
                 definition: FunctionScenarioDefinition) -> None:
        self.scenario = scenario
        self.args = args
        self.locator = locator
        self.definition = definition

    def get_instances(self) -> list[Instance]:
        return self.definition.call(self.args, self.locator)

    def to_json(self) -> dict[str, Any]:
        settings = self.definition.settings
        doc = inspect.getdoc(self.definition.function) or ""
        return {"name": self.scenario, "description": settings.description or doc.split("\n\n")[0],
                "tags": [*self.tags, *settings.tags], "definition_path": self.definition.origin}


@dataclass(frozen=True)
class ScenarioDeclaration:
    """What :func:`scenario` and :func:`register_scenario` record: a name, a function and its
    settings, checked against a session's registries (adapters, metrics) when it registers them."""

    name: str
    function: InstancesFunction
    settings: Mapping[str, Any]
    answer_format: str = "auto"

    @property
    def where(self) -> str:
        return (f"{getattr(self.function, '__module__', '?')}:"
                f"{getattr(self.function, '__qualname__', repr(self.function))}")

    def register(self, registries: Registries) -> FunctionScenarioDefinition:
        """Make the scenario usable in the run entries of the session owning ``registries``."""
        try:
            definition = FunctionScenarioDefinition(
                self.name, self.function, ScenarioSettings.parse(self.settings, registries=registries),
                self.answer_format)
            registries.run_spec_function(self.name, definition.run_spec, definition.origin)
        except ConfigError as exc:
            raise exc.located(entry=f"scenario {self.name!r} ({self.where})") from None
        return definition


def declarations(obj: Any) -> tuple[ScenarioDeclaration, ...]:
    """The scenario declarations ``obj`` is or carries (a decorated function); none for others."""
    if isinstance(obj, ScenarioDeclaration):
        return (obj,)
    if not callable(obj):
        return ()
    marked = getattr(obj, "__dict__", {}).get(SCENARIO_MARK, ())
    return tuple(d for d in marked if isinstance(d, ScenarioDeclaration))


def register_scenario(name: str, function: InstancesFunction, *, answer_format: str = "auto",
                      **settings: Any) -> ScenarioDeclaration:
    """Declare ``function`` as scenario ``name`` (what :func:`scenario` does, without decorating).

    ``settings`` are the YAML scenario settings: ``adapter`` (``generation`` or
    ``multiple_choice_joint``), ``instructions``, ``input_prefix``, ``output_prefix``, ...,
    ``max_train_instances``, ``max_tokens``, ``stop``, ``metrics``, ``main_metric``.

    The function is marked, so a session finds it where it finds decorated functions (a module
    attribute of a conftest file, plugin or test module); the declaration is returned for a
    ``pytest_llmeval_register`` hook or a test to register itself (``declaration.register(registries)``).
    """
    where = f"{getattr(function, '__module__', '?')}:{getattr(function, '__qualname__', repr(function))}"
    try:
        check_name(name)
        if not callable(function):
            raise ConfigError(f"{function!r} is not callable")
        if answer_format not in ANSWER_FORMATS:
            raise ConfigError(f"{answer_format!r}: use one of {', '.join(ANSWER_FORMATS)}", field="answer_format")
        unknown = sorted(set(settings) - set(SETTING_FIELDS))
        if unknown:
            raise ConfigError(f"unknown setting {unknown[0]!r}; settings are: {', '.join(SETTING_FIELDS)}",
                              field=unknown[0])
    except ConfigError as exc:
        raise exc.located(entry=f"scenario {name!r} ({where})") from None
    declaration = ScenarioDeclaration(name, function, dict(settings), answer_format)
    with contextlib.suppress(AttributeError, TypeError):  # a bound method: only the returned declaration knows
        setattr(function, SCENARIO_MARK, (*declarations(function), declaration))
    return declaration


@overload
def scenario(name: F, /) -> F: ...


@overload
def scenario(name: str | None = None, /, *, answer_format: str = "auto", **settings: Any) -> Callable[[F], F]: ...


def scenario(name: Any = None, /, *, answer_format: str = "auto", **settings: Any) -> Any:
    """Decorator: the function returns the scenario's instances; the scenario is named ``name``
    (default: the function's name). The function itself is returned, marked for the session."""
    if callable(name):  # bare @scenario
        register_scenario(name.__name__, name)
        return name

    def decorate(function: F) -> F:
        register_scenario(name or function.__name__, function, answer_format=answer_format, **settings)
        return function

    return decorate
