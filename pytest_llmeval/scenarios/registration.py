"""How a user-defined scenario (YAML or Python) becomes a RunSpec, and the names it is known by.

Both kinds take the same settings: an adapter (``generation`` or ``multiple_choice_joint``),
HELM's adapter fields (instructions, prefixes, few-shot count, ...) and metric names from
the session's metrics registry. A user scenario goes into the session's scenario registry beside
the built-in ones, so a run entry ``my_quiz:max_train_instances=2`` works like ``mmlu:subject=anatomy``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_llmeval.adapters.adapter_spec import ADAPT_GENERATION, ADAPT_MULTIPLE_CHOICE_JOINT, AdapterSpec
from pytest_llmeval.errors import ConfigError
from pytest_llmeval.runspec import STOP_NAMES, Description, RunSpec, multiple_choice_joint
from pytest_llmeval.validation.eval_schemas import SETTINGS
from pytest_llmeval.validation.validator import check

if TYPE_CHECKING:
    from pytest_llmeval.extensions import Registries

_TEXT_FIELDS = ("instructions", "global_prefix", "global_suffix", "input_prefix", "input_suffix", "output_prefix",
                "output_suffix", "instance_prefix", "reference_prefix", "reference_suffix")
_COUNT_FIELDS = ("max_train_instances", "num_outputs", "num_train_trials", "max_tokens")
ADAPTER_FIELDS = (*_TEXT_FIELDS, *_COUNT_FIELDS, "temperature", "stop", "sample_train")
SETTING_FIELDS = ("adapter", "metrics", "main_metric", "description", "tags", *ADAPTER_FIELDS)
DEFAULT_METRICS = ("exact_match", "quasi_exact_match", "prefix_exact_match", "quasi_prefix_exact_match")
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def joint_choice_adapter() -> AdapterSpec:
    """The ``multiple_choice_joint`` base of a user scenario: HELM's joint adapter, no instructions."""
    return multiple_choice_joint("")


def question_answer_adapter() -> AdapterSpec:
    """HELM's ``get_generation_adapter_spec`` with the nouns Question/Answer: 5 shots, 5 tokens, stop at newline."""
    return AdapterSpec(method=ADAPT_GENERATION, input_prefix="Question: ", input_suffix="\n",
                       output_prefix="Answer: ", output_suffix="\n", instance_prefix="\n", max_train_instances=5,
                       num_outputs=1, max_tokens=5, temperature=0.0, stop_sequences=("\n",))


@dataclass(frozen=True)
class ScenarioSettings:
    """The validated prompt and scoring choices of a user scenario."""

    adapter_spec: AdapterSpec
    metrics: tuple[str, ...] = DEFAULT_METRICS
    main_metric: str = "exact_match"
    description: str = ""
    tags: tuple[str, ...] = ()

    @property
    def multiple_choice(self) -> bool:
        return self.adapter_spec.method == ADAPT_MULTIPLE_CHOICE_JOINT

    @classmethod
    def parse(cls, raw: Mapping[str, Any], default_adapter: str = ADAPT_GENERATION, *,
              registries: Registries) -> ScenarioSettings:
        """Settings from a YAML mapping or decorator keywords; a bad value names its field.
        Adapter and metric names are those of the session's ``registries``."""
        unknown = sorted(set(raw) - set(SETTING_FIELDS))
        if unknown:
            raise ConfigError(f"unknown setting {unknown[0]!r}; settings are: {', '.join(SETTING_FIELDS)}",
                              field=unknown[0])
        # Types by schema (decorator keywords may be tuples); the names below need the plugin's tables.
        check({k: list(v) if isinstance(v, tuple) else v for k, v in raw.items()}, SETTINGS, None)
        adapter = raw.get("adapter", default_adapter)
        if not isinstance(adapter, str) or adapter not in registries.adapters:
            raise ConfigError(f"{adapter!r} is not an adapter; use one of: {', '.join(registries.adapters)}",
                              field="adapter")
        base = registries.adapters[adapter]()
        changes: dict[str, Any] = {key: raw[key] for key in (*_TEXT_FIELDS, *_COUNT_FIELDS, "sample_train")
                                   if key in raw}
        if "temperature" in raw:
            changes["temperature"] = float(raw["temperature"])
        if "stop" in raw:
            changes["stop_sequences"] = _stop(raw["stop"])
        metrics = _names(raw.get("metrics", list(DEFAULT_METRICS)), "metrics")
        for metric in metrics:
            if metric not in registries.metrics:
                raise ConfigError(f"unknown metric {metric!r}; use any of: {', '.join(sorted(registries.metrics))}",
                                  field="metrics")
        if not metrics:
            raise ConfigError("needs at least one metric", field="metrics")
        main_metric = raw.get("main_metric", metrics[0])
        if main_metric not in metrics:
            raise ConfigError(f"{main_metric!r} is not one of this scenario's metrics ({', '.join(metrics)})",
                              field="main_metric")
        description = raw.get("description", "")
        tags = _names(raw.get("tags", []), "tags")
        return cls(base.replace(**changes), metrics, main_metric, description, tags)


def _names(value: Any, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{value!r} is not a list of names", field=key)
    return tuple(value)


def _stop(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) and value in STOP_NAMES:
        return STOP_NAMES[value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise ConfigError(f"{value!r}: use one of {', '.join(STOP_NAMES)} or a list of strings", field="stop")


def check_name(name: Any) -> str:
    """A scenario name must be usable in a run entry (``name:key=value``)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"{name!r} is not a scenario name (letters, digits, '_' and '-')", field="name")
    return name


def run_spec_for(name: str, settings: ScenarioSettings, scenario_class: type, scenario_args: dict[str, Any],
                 description: Description, definition: Any) -> RunSpec:
    """The RunSpec of a user scenario; generic keys and the model are added by ``build_run_spec``.
    The scenario object gets its ``definition`` from the run spec, not from a lookup."""
    return RunSpec(name=str(description), scenario_class=scenario_class, scenario_args=scenario_args,
                   adapter_spec=settings.adapter_spec, metrics=list(settings.metrics), groups=[name],
                   main_metric=settings.main_metric, scenario_context={"definition": definition})


def reject_arguments(description: Description, allowed: tuple[str, ...] = ()) -> None:
    """A user scenario takes the generic keys, plus ``allowed`` ones of its own."""
    unknown = [key for key, _ in description.args if key not in allowed]
    if unknown:
        own = f"its own arguments are {', '.join(allowed)}" if allowed else "it takes no arguments of its own"
        raise ConfigError(f"unknown argument {unknown[0]!r} in {description}; {own} (generic ones such as "
                          f"max_train_instances, max_tokens, eval_split work everywhere)", field=unknown[0])
