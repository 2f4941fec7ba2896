"""Run-spec descriptions (HELM's ``mmlu:subject=anatomy,max_train_instances=0``) and RunSpecs.

A description names a scenario and its arguments; generic keys (``max_train_instances``,
``stop``, ``prompt``, ...) change the run spec whatever the scenario, as HELM's run expanders
do (:mod:`pytest_llmeval.run_expanders`).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_llmeval.adapters.adapter_spec import (
    ADAPT_MULTIPLE_CHOICE_JOINT,
    ADAPT_MULTIPLE_CHOICE_SEPARATE_ORIGINAL,
    AdapterSpec,
)
from pytest_llmeval.errors import ConfigError
from pytest_llmeval.extensions import expander_key
from pytest_llmeval.metrics import MATCHERS
from pytest_llmeval.perturbations import Perturbation, augmenter_spec
from pytest_llmeval.run_expanders import (
    EXPANDER_KEYS,
    apply_run_expanders,
    check_description,
    close_expander_key,
    value_choices,
)
from pytest_llmeval.scenarios.data import DataLocator
from pytest_llmeval.scenarios.scenario import Scenario

if TYPE_CHECKING:
    from pytest_llmeval.extensions import Matcher, Registries
    from pytest_llmeval.harness.outcome import HarnessTask
    from pytest_llmeval.scenarios.helm_scenarios import HelmBridge

# What the decorators below attach to a function, for the session to pick up (nothing global).
RUN_SPEC_MARK = "__llmeval_run_spec__"
VALUE_EXPANDER_MARK = "__llmeval_value_expander__"


@dataclass(frozen=True)
class Description:
    """A parsed description: scenario name and ordered ``key=value`` arguments."""

    scenario: str
    args: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Description:
        text = text.strip()
        name, _, rest = text.partition(":")
        if not name or not name.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"{text!r} does not start with a scenario name (like 'mmlu:subject=anatomy')")
        args: list[tuple[str, str]] = []
        for part in filter(None, (p.strip() for p in rest.split(","))):
            key, sep, value = part.partition("=")
            if not sep or not key.strip():
                raise ConfigError(f"argument {part!r} in {text!r} is not key=value")
            args.append((key.strip(), value.strip()))
        return cls(name.strip(), tuple(args))

    def get(self, key: str) -> str | None:
        return dict(self.args).get(key)

    def without(self, *keys: str) -> Description:
        return Description(self.scenario, tuple((k, v) for k, v in self.args if k not in keys))

    def with_value(self, key: str, value: str) -> Description:
        """``key`` set to ``value``: in place when present, else appended."""
        if key in dict(self.args):
            return Description(self.scenario, tuple((k, value if k == key else v) for k, v in self.args))
        return Description(self.scenario, (*self.args, (key, value)))

    def __str__(self) -> str:
        if not self.args:
            return self.scenario
        return self.scenario + ":" + ",".join(f"{k}={v}" for k, v in self.args)


@dataclass
class RunSpec:
    """Everything one run needs: the scenario to build, the adapter and the metrics."""

    name: str
    scenario_class: type[Scenario]
    scenario_args: dict[str, Any]
    adapter_spec: AdapterSpec
    metrics: list[str]
    groups: list[str] = field(default_factory=list)
    main_metric: str = "exact_match"
    # ``data_augmentation=...``: perturbed copies of the eval instances run alongside them.
    perturbations: list[Perturbation] = field(default_factory=list)
    # The metric functions behind ``metrics``: the session's registry sets them (build_run_spec);
    # a RunSpec built by hand scores with the built-in ones.
    matchers: dict[str, Matcher] = field(default_factory=lambda: dict(MATCHERS))
    # Constructor arguments that are objects (a user scenario's definition): not in run_spec.json.
    scenario_context: dict[str, Any] = field(default_factory=dict)
    # HELM's scenario and metric specs where our scenario is HELM's (``run_spec.json`` names them,
    # so helm-run can re-run the file); None: our own class and metrics are named.
    helm_scenario_spec: dict[str, Any] | None = None
    helm_metric_specs: list[dict[str, Any]] | None = None
    # Set when crfm-helm's own code builds the scenario (scenarios.helm_scenarios): what the
    # adapter and metric steps need of HELM's run spec.
    helm_bridge: HelmBridge | None = None

    # Adapter texts only the scenario's data can give (LegalBench's instructions come from a
    # file it downloads): the run-spec function writes placeholders, and with_late_texts puts the
    # texts in at run time, after the run expanders, so collection never reads data.
    late_texts: Callable[[DataLocator], Mapping[str, str]] | None = None
    # An lm-eval task entry: lm-eval's own code builds, runs and scores it (pytest_llmeval.harness).
    harness: HarnessTask | None = None

    def with_late_texts(self, locator: DataLocator) -> RunSpec:
        """This run spec with each placeholder :attr:`late_texts` names replaced by its text in
        every text field of the adapter spec (where the run expanders may have copied it)."""
        if self.late_texts is None:
            return self
        texts = self.late_texts(locator)
        changes: dict[str, str] = {}
        for name, value in vars(self.adapter_spec).items():
            if isinstance(value, str):
                filled = value
                for placeholder, text in texts.items():
                    filled = filled.replace(placeholder, text)
                if filled != value:
                    changes[name] = filled
        return dataclasses.replace(self, adapter_spec=self.adapter_spec.replace(**changes), late_texts=None)

    def build_scenario(self, locator: DataLocator) -> Scenario:
        return self.scenario_class(**self.scenario_args, **self.scenario_context,  # type: ignore[call-arg]
                                   locator=locator)

    def own_scenario_spec(self) -> dict[str, Any]:
        cls = self.scenario_class
        return {"class_name": f"{cls.__module__}.{cls.__qualname__}", "args": self.scenario_args}

    def to_json(self) -> dict[str, Any]:
        """HELM's RunSpec fields (``annotators`` None, so left out as HELM leaves it out), then
        ``llmeval``: what rebuilds the run here. HELM's readers ignore keys they do not know."""
        metric_specs = self.helm_metric_specs if self.helm_metric_specs is not None else [
            {"class_name": "pytest_llmeval.metrics.basic.reference_stats", "args": {"names": self.metrics}},
            {"class_name": "pytest_llmeval.metrics.basic.efficiency_stats", "args": {}},
        ]
        return {
            "name": self.name,
            "scenario_spec": self.helm_scenario_spec or self.own_scenario_spec(),
            "adapter_spec": self.adapter_spec.to_json(),
            "metric_specs": metric_specs,
            "data_augmenter_spec": augmenter_spec(self.perturbations),
            "groups": self.groups,
            "llmeval": {"scenario_spec": self.own_scenario_spec(), "metrics": self.metrics,
                        "main_metric": self.main_metric,
                        **({"lm_eval": self.harness.to_json()} if self.harness is not None else {})},
        }


def helm_basic_metric_specs(names: list[str]) -> list[dict[str, Any]]:
    """HELM's ``get_basic_metric_specs(names)``: generation, reference and per-split metrics."""
    return [
        {"class_name": "helm.benchmark.metrics.basic_metrics.BasicGenerationMetric", "args": {"names": names}},
        {"class_name": "helm.benchmark.metrics.basic_metrics.BasicReferenceMetric", "args": {}},
        {"class_name": "helm.benchmark.metrics.basic_metrics.InstancesPerSplitMetric", "args": {}},
    ]


RunSpecFunction = Callable[[Description], RunSpec]


def reject_unknown_arguments(description: Description, allowed: Sequence[str], hint: str = "") -> dict[str, str]:
    """A built-in scenario's own arguments (generic keys are removed before it sees them), or
    one line naming the first unknown one and what the scenario takes."""
    args = dict(description.args)
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        takes = ", ".join(allowed[:-1]) + f" and {allowed[-1]}" if len(allowed) > 1 else allowed[0]
        raise ConfigError(f"unknown argument(s) {', '.join(unknown)} in {description}; {description.scenario} "
                          f"takes {takes}{hint}", field=unknown[0])
    return args


def run_spec_function(name: str) -> Callable[[RunSpecFunction], RunSpecFunction]:
    """Mark how a scenario name turns into a RunSpec. The function is returned unchanged; a
    session registers it when it finds it in a conftest file, a plugin or a test module (or
    a plugin registers it itself: ``registries.run_spec_function(name, function)``)."""

    def mark(function: RunSpecFunction) -> RunSpecFunction:
        setattr(function, RUN_SPEC_MARK, name)
        return function

    return mark


# --- run expanders (HELM's generic keys) ------------------------------------------------------

# The keys every description takes whatever the scenario (pytest_llmeval.run_expanders).
GENERIC_KEYS = EXPANDER_KEYS
# The names a user scenario's ``stop:`` setting takes (scenarios.registration).
STOP_NAMES: dict[str, tuple[str, ...]] = {"none": (), "hash": ("###",), "newline": ("\n",), "period": (".",)}


def _builtins() -> Registries:
    from pytest_llmeval.builtins import builtin_registries

    return builtin_registries()


def helm_value(text: str) -> str:
    """A description value as HELM's parser reads it (a number if it is one) and writes it back."""
    for kind in (int, float):
        try:
            return str(kind(text))
        except ValueError:
            pass
    return text


# HELM's run expanders that add ``key=value`` to a run's name (``:`` when the name has no
# arguments yet); temperature changes only the adapter, as HELM's TemperatureRunExpander does.
# The others (add_to_stop, format_prompt, follow_format_instructions, output_format_instructions,
# chatml, increase_max_tokens, increase_temperature, process_output) leave the name as it is.
_NAMED_VALUES = ("max_train_instances", "max_eval_instances", "num_train_trials", "num_outputs", "num_trials",
                 "max_tokens", "eval_split", "tokenizer", "num_prompt_tokens", "num_output_tokens")
_ALWAYS_COMMA = ("instructions", "prompt", "newline", "stop", "global_prefix", "data_augmentation")


def run_name(base: str, description: Description, model: str, deployment: str,
             default_deployment: str | None = None) -> str:
    """The run's name as helm-run writes it: the run-spec function's name, then each run
    expander's ``key=value`` in the description's order, ``model=`` last when the description
    has none (HELM adds ``model=all``). A deployment that is not the model's default adds
    ``model_deployment=`` after the model, as when the description names it, so two
    deployments of one model get two run folders. ``/`` becomes ``_`` (HELM's RunSpec)."""
    parts = [base]

    def add(key: str, value: str, comma: bool = False) -> None:
        parts.append(("," if comma or ":" in "".join(parts) else ":") + f"{key}={value}")

    keys = {key for key, _ in description.args}
    # HELM's ModelRunExpander: the last two parts of the model's name.
    model_part = "/".join(model.split("/")[-2:])
    extra_deployment = default_deployment is not None and deployment != default_deployment \
        and "model_deployment" not in keys

    def add_model() -> None:
        add("model", model_part)
        if extra_deployment:
            add("model_deployment", deployment)

    for key, value in description.args:
        if key in _NAMED_VALUES:
            add(key, helm_value(value))
        elif key in _ALWAYS_COMMA:
            add(key, value, comma=True)
        elif key == "model":
            add_model()
        elif key == "model_deployment":
            add(key, deployment)
    if "model" not in keys:
        add_model()
    return "".join(parts).replace("/", "_")


def build_run_spec(description: Description, deployment: str, model: str,
                   registries: Registries | None = None, *, groups: Sequence[str] | None = None,
                   model_tags: Collection[str] = (), default_deployment: str | None = None,
                   locator: DataLocator | None = None) -> RunSpec:
    """The RunSpec for a description on one model deployment, from the session's ``registries``
    (default: a fresh set of the built-ins): the scenario's run-spec function, then HELM's run
    expanders (``model_tags``: the model's metadata tags, which some consult), then the run
    entry's ``groups`` after the scenario's, as helm-run adds them. ``default_deployment`` is the
    model's default deployment (HELM's rule); a run on another one says which in its name.

    A scenario no registry has is HELM's when crfm-helm has a run spec of that name: crfm-helm's
    own code builds it (:mod:`pytest_llmeval.scenarios.helm_scenarios`), its data under ``locator``."""
    from pytest_llmeval.scenarios import helm_scenarios

    registries = registries if registries is not None else _builtins()
    function = registries.scenarios.get(description.scenario)
    if function is None or description.scenario in helm_scenarios.forced():
        function = helm_scenarios.helm_run_spec_function(description.scenario, locator)
    if function is None:
        known = ", ".join(sorted(registries.scenarios))
        raise ConfigError(f"unknown scenario {description.scenario!r} in {description}; known: {known}")
    check_description(description)
    try:
        spec = function(description.without(*GENERIC_KEYS))
    except ConfigError as exc:
        raise _with_key_hint(exc) from None
    spec.matchers = registries.matchers(spec.metrics, description)
    spec.adapter_spec = spec.adapter_spec.replace(model_deployment=deployment, model=model)
    spec = apply_run_expanders(spec, description, model_tags)
    unsupported = spec.adapter_spec.unsupported() if spec.helm_bridge is None or spec.helm_bridge.adapter_spec is None \
        else []  # HELM's adapter applies every field
    if unsupported:
        raise ConfigError(f"{description}: the adapter option(s) {', '.join(unsupported)} are not supported",
                          field=unsupported[0])
    if groups is not None:
        spec.groups = [*spec.groups, *groups]
    spec.name = run_name(spec.name, description, model, deployment, default_deployment)
    return spec


def _with_key_hint(error: ConfigError) -> ConfigError:
    """A scenario's unknown-argument error, with the run-expander key it is likely a typo of."""
    close = close_expander_key(error.field) if error.field else None
    if close is None:
        return error
    return ConfigError(f"{error.message} (did you mean {close}?)", file=error.file, entry=error.entry,
                       field=error.field)


def multiple_choice_joint(instructions: str, **overrides: Any) -> AdapterSpec:
    """HELM's multiple-choice-joint adapter: lettered options, a one-token answer (HELM's
    ``num_outputs=5``, which its joint adapter does not use: one completion per request)."""
    spec = AdapterSpec(
        method=ADAPT_MULTIPLE_CHOICE_JOINT, instructions=instructions, input_prefix="Question: ",
        input_suffix="\n", output_prefix="Answer: ", output_suffix="\n", instance_prefix="\n",
        max_train_instances=5, num_outputs=5, max_tokens=1, temperature=0.0, stop_sequences=("\n",),
    )
    return spec.replace(**overrides) if overrides else spec


def multiple_choice_separate(**overrides: Any) -> AdapterSpec:
    """HELM's separate multiple-choice adapter: ``<question> <option>`` scored per option, no
    instructions and no in-context examples."""
    spec = AdapterSpec(
        method=ADAPT_MULTIPLE_CHOICE_SEPARATE_ORIGINAL, instructions="", input_prefix="", input_suffix="",
        output_prefix=" ", output_suffix="", max_train_instances=0, num_outputs=1, max_tokens=0, temperature=0.0,
    )
    return spec.replace(**overrides) if overrides else spec


# --- run expanders: one entry, several runs -------------------------------------------------------

ValueExpander = Callable[[], Sequence[str]]


def value_expander(scenario: str, key: str, value: str) -> Callable[[ValueExpander], ValueExpander]:
    """Mark a value that stands for several (``mmlu:subject=all`` -> one run per subject); the
    session picks the function up as it does a :func:`run_spec_function`."""

    def mark(function: ValueExpander) -> ValueExpander:
        setattr(function, VALUE_EXPANDER_MARK, (scenario, key, value))
        return function

    return mark


def expand_description(description: Description, lists: Mapping[str, Sequence[Any]] | None = None,
                       registries: Registries | None = None) -> list[Description]:
    """Every run an entry stands for: each combination of the ``lists`` values (an eval file's
    ``expand:``), then each value an expander in ``registries`` stands for (``subject=all``), or
    one of HELM's named values (``max_train_instances=all``, ``max_eval_instances=default``)."""
    expanders = (registries if registries is not None else _builtins()).expanders
    descriptions = [description]
    for key, values in (lists or {}).items():
        if not isinstance(key, str) or not key.replace("_", "").isalnum():
            raise ConfigError(f"{key!r} is not an argument name", field=f"expand.{key}")
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise ConfigError(f"expand.{key} must be a non-empty list of values, like [0, 5]", field=f"expand.{key}")
        texts = []
        for value in values:
            text = str(value).lower() if isinstance(value, bool) else str(value)
            if isinstance(value, (dict, list)) or "," in text:
                raise ConfigError(f"expand.{key}: {value!r} is not a single value (no lists, mappings or commas)",
                                  field=f"expand.{key}")
            texts.append(text)
        descriptions = [d.with_value(key, text) for d in descriptions for text in texts]
    expanded: list[Description] = []
    for current in descriptions:
        choices = []
        for key, value in current.args:
            expander = expanders.get(expander_key(current.scenario, key, value))
            values = expander() if expander else value_choices(key, value) or (value,)
            choices.append([(key, v) for v in values])
        expanded.extend(Description(current.scenario, tuple(args)) for args in itertools.product(*choices))
    return expanded
