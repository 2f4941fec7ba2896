"""Every HELM scenario that is not built in, run by crfm-helm's own code (the optional ``helm`` extra).

A run entry whose scenario no registry of the session has is HELM's when crfm-helm registers a
run-spec function of that name. Then:

- HELM's run-spec function builds the run spec from the entry's own arguments (strings, as
  ``helm-run`` passes them); our run expanders and the model come after it, as for any entry,
  and the run is named as ``helm-run`` names its folder;
- HELM's ``Scenario`` class makes the instances (:class:`HelmScenario`), converted to ours with
  their ids, splits, sub-splits and perturbations; HELM's own instance rides along in
  ``Instance.extra`` so HELM's metrics see every field it had;
- our adapters build the requests when the method is one we implement and every adapter field
  is one they apply (:func:`our_adapter_spec`), else HELM's adapter does
  (:mod:`pytest_llmeval.adapters.helm_adapter`); either way the requests go through our clients;
- our metrics score what we have (HELM's basic, per-split and bias metrics), HELM's own metric
  classes the rest (:mod:`pytest_llmeval.metrics.helm_metrics`).

HELM's data lives in HELM's layout, one folder per scenario: ``<mirror>/helm/scenarios/<name>/``
when the data mirror has that folder, else ``<data cache>/helm/scenarios/<name>/``, where HELM
downloads as it always does (a file already there is not downloaded again).

Without crfm-helm an entry naming one of HELM's run specs fails when it runs, saying which
extra brings it; a name HELM does not know either is an unknown scenario.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_llmeval.adapters.adapter_spec import (
    ADAPT_GENERATION,
    ADAPT_MULTIPLE_CHOICE_JOINT,
    ADAPT_MULTIPLE_CHOICE_SEPARATE_ORIGINAL,
    AdapterSpec,
)
from pytest_llmeval.errors import ConfigError, DataNotFoundError
from pytest_llmeval.perturbations.description import PerturbationDescription
from pytest_llmeval.scenarios.data import DataLocator
from pytest_llmeval.scenarios.helm_names import HELM_RUN_SPEC_NAMES, MODULE_OF
from pytest_llmeval.scenarios.scenario import Instance, Reference, Scenario, with_ids

if TYPE_CHECKING:
    from pytest_llmeval.runspec import Description, RunSpec

NEEDS_HELM = "pip install 'pytest-llmeval[helm]' brings it (crfm-helm)"
FORCE_ENV = "LLMEVAL_HELM_SCENARIOS"
"""Built-in scenario names to run through crfm-helm instead (comma-separated): for comparing the two."""
HELM_INSTANCE = "helm_instance"
"""The ``Instance.extra`` key holding HELM's own instance."""
OUR_METHODS = (ADAPT_GENERATION, ADAPT_MULTIPLE_CHOICE_JOINT, ADAPT_MULTIPLE_CHOICE_SEPARATE_ORIGINAL)
# HELM's AdapterSpec fields that ours has too (``instructions_end`` is how ours ends HELM's text).
_OUR_FIELDS = tuple(f.name for f in dataclasses.fields(AdapterSpec) if f.name != "instructions_end")
_HELM_STATE = threading.Lock()  # HELM's benchmark output path is process-global


def helm_installed() -> bool:
    try:
        return importlib.util.find_spec("helm.benchmark.run_spec") is not None
    except ImportError:  # a parent package is missing
        return False


def forced() -> frozenset[str]:
    """The built-in scenarios :data:`FORCE_ENV` sends through crfm-helm."""
    return frozenset(filter(None, (n.strip() for n in os.environ.get(FORCE_ENV, "").split(","))))


def helm_function(name: str) -> Any:
    """HELM's run-spec function of that name, or None when HELM has none; without crfm-helm a
    name HELM has is one clear error. The one module known to define it is imported first;
    HELM's full discovery (every run-spec module, a second or more) only for other names."""
    if not helm_installed():
        if name in HELM_RUN_SPEC_NAMES:
            raise ConfigError(f"scenario {name!r} is HELM's and not built in: {NEEDS_HELM}")
        return None
    import contextlib
    import importlib

    from helm.benchmark import run_spec

    module = MODULE_OF.get(name)
    if module is not None:
        with contextlib.suppress(ImportError):  # a crfm-helm that moved it: the full discovery finds it
            importlib.import_module(f"helm.benchmark.run_specs.{module}")
    return run_spec._REGISTERED_RUN_SPEC_FUNCTIONS.get(name) or run_spec.get_run_spec_function(name)


def data_root(locator: DataLocator | None, scenario: str) -> Path:
    """Where HELM's ``benchmark_output`` stands for a scenario's data: the mirror's ``helm/``
    folder when it holds ``scenarios/<scenario>/``, else the data cache's."""
    mirror = locator.mirror if locator is not None else None
    if mirror is not None and (mirror / "helm" / "scenarios" / scenario).is_dir():
        return mirror / "helm"
    base = locator.cache if locator is not None else None
    if base is None:
        base = DataLocator.from_settings(None).cache
    assert base is not None
    return base / "helm"


# --- the run spec -----------------------------------------------------------------------------


@dataclass
class HelmBridge:
    """What a run through crfm-helm keeps of HELM's run spec, for the steps after the run spec.

    ``adapter_spec``: HELM's (None when our adapter builds the requests; then ``RunSpec.adapter_spec``
    is the whole truth); ``helm_metric_specs``: the metrics HELM's classes compute; ``basic``:
    our basic metrics apply (HELM's spec lists BasicGenerationMetric / BasicReferenceMetric).
    """

    adapter_spec: Any
    helm_metric_specs: list[Any]
    basic: bool
    data_root: Path | None = None
    per_split: bool = True
    # HELM's request states of the run, in our states' order, when HELM's adapter built them.
    adapted_states: list[Any] = field(default_factory=list, repr=False)
    # The deployment run on and its tokenizer's (end of text, prefix) tokens: set by the session,
    # put into HELM's registries for the window services HELM's adapters and metrics build.
    deployment: Any = None
    special_tokens: tuple[str | None, str | None] = (None, None)

    def _register(self) -> None:
        if self.deployment is not None:
            from pytest_llmeval.clients.helm_services import register_for_helm

            register_for_helm(self.deployment, *self.special_tokens)

    def tokenizer_service(self, window: Any) -> Any:
        from pytest_llmeval.clients.helm_services import helm_tokenizer_service

        self._register()
        return helm_tokenizer_service(window)

    def metric_service(self, window: Any) -> Any:
        from pytest_llmeval.clients.helm_services import helm_metric_service

        self._register()
        return helm_metric_service(window)

    def helm_adapter_spec(self, ours: AdapterSpec) -> Any:
        """HELM's adapter spec with every field ours has (run expanders changed ours)."""
        from helm.benchmark.adaptation.adapter_spec import Substitution

        values = {name: getattr(ours, name) for name in _OUR_FIELDS}
        values["instructions"] = ours.instructions + ours.instructions_end if ours.instructions else ""
        values["substitutions"] = [Substitution(source=s, target=t) for s, t in ours.substitutions]
        for key in ("stop_sequences", "reference_prefix_characters", "eval_splits"):
            if values[key] is not None:
                values[key] = list(values[key])
        base = self.adapter_spec
        if base is None:
            from helm.benchmark.adaptation.adapter_spec import AdapterSpec as HelmAdapterSpec

            base = HelmAdapterSpec()
        return dataclasses.replace(base, **values)


def our_adapter_spec(helm_spec: Any) -> tuple[AdapterSpec, bool]:
    """Ours for HELM's adapter spec, and whether our adapters can build its requests. HELM's
    instructions carry their own ending newline (its common specs add it, its translation spec
    does not): ours keep it in ``instructions_end``."""
    from helm.benchmark.adaptation.adapter_spec import AdapterSpec as HelmAdapterSpec

    values: dict[str, Any] = {name: getattr(helm_spec, name) for name in _OUR_FIELDS}
    instructions = str(helm_spec.instructions)
    newline = not instructions or instructions.endswith("\n")
    values["instructions"] = instructions[:-1] if instructions.endswith("\n") else instructions
    values["instructions_end"] = "\n" if newline else ""
    values["substitutions"] = tuple((s.source, s.target) for s in helm_spec.substitutions)
    for key in ("stop_sequences", "reference_prefix_characters", "eval_splits"):
        if values[key] is not None:
            values[key] = tuple(values[key])
    ours = AdapterSpec(**values)
    defaults = HelmAdapterSpec()
    # HELM fields ours does not have (images, re-evaluation, ...) left at HELM's defaults.
    foreign = [f.name for f in dataclasses.fields(HelmAdapterSpec)
               if f.name not in _OUR_FIELDS and getattr(helm_spec, f.name) != getattr(defaults, f.name)]
    ours_adapt = helm_spec.method in OUR_METHODS and not foreign and not ours.unsupported()
    return ours, ours_adapt


def helm_run_spec_function(name: str, locator: DataLocator | None) -> Any:
    """A run-spec function (``Description -> RunSpec``) for HELM's run spec ``name``, or None
    when HELM has none."""
    function = helm_function(name)
    if function is None:
        return None

    def build(description: Description) -> RunSpec:
        return helm_run_spec(function, description, locator)

    return build


def helm_run_spec(function: Any, description: Description, locator: DataLocator | None) -> RunSpec:
    """Our RunSpec for what HELM's run-spec function makes of the entry's own arguments."""
    from helm.benchmark import runner
    from helm.benchmark.metrics.metric import MetricSpec

    from pytest_llmeval.metrics.helm_metrics import lists_per_split, split_metric_specs
    from pytest_llmeval.runspec import RunSpec

    root = data_root(locator, description.scenario)
    with _HELM_STATE:  # some run-spec functions read data (RAFT's instructions) from HELM's output path
        before = runner.get_benchmark_output_path()
        runner.set_benchmark_output_path(str(root))
        try:
            helm_spec = function(**dict(description.args))
        except TypeError as exc:
            raise ConfigError(f"{description}: HELM's run spec {description.scenario!r} does not take these "
                              f"arguments ({exc})", field=description.args[0][0] if description.args else None) \
                from None
        except (OSError, ValueError, KeyError, AssertionError) as exc:
            raise ConfigError(f"{description}: HELM's run spec {description.scenario!r} failed: "
                              f"{type(exc).__name__}: {exc}") from None
        finally:
            runner.set_benchmark_output_path(before)
    adapter, ours_adapt = our_adapter_spec(helm_spec.adapter_spec)
    names, basic, helm_metrics = split_metric_specs(helm_spec.metric_specs)
    if helm_spec.data_augmenter_spec.perturbation_specs:
        raise ConfigError(f"{description}: HELM's run spec sets perturbations; give them as data_augmentation=")
    scenario_spec = {"class_name": helm_spec.scenario_spec.class_name, "args": dict(helm_spec.scenario_spec.args)}
    return RunSpec(
        name=helm_spec.name, scenario_class=HelmScenario, scenario_args={"helm_spec": scenario_spec},
        adapter_spec=adapter, metrics=names, groups=list(helm_spec.groups),
        main_metric=names[0] if names else _first_stat(helm_metrics),
        helm_scenario_spec=scenario_spec,
        helm_metric_specs=[{"class_name": m.class_name, "args": dict(m.args)} for m in helm_spec.metric_specs
                           if isinstance(m, MetricSpec)],
        helm_bridge=HelmBridge(None if ours_adapt else helm_spec.adapter_spec, helm_metrics, basic, root,
                               per_split=lists_per_split(helm_spec.metric_specs)),
    )


def _first_stat(metric_specs: list[Any]) -> str:
    """A main metric for a run HELM's classes score alone (the first one's usual stat)."""
    known = {"LanguageModelingMetric": "bits_per_byte", "ClassificationMetric": "classification_macro_f1",
             "BBQMetric": "bbq_accuracy"}
    for spec in metric_specs:
        short = spec.class_name.rpartition(".")[2]
        if short in known:
            return known[short]
    return "exact_match"


# --- the scenario -----------------------------------------------------------------------------


def perturbation_of(helm_perturbation: Any) -> PerturbationDescription | None:
    if helm_perturbation is None:
        return None
    return PerturbationDescription.from_json({k: v for k, v in dataclasses.asdict(helm_perturbation).items()
                                              if v is not None})


def from_helm_instance(helm_instance: Any) -> Instance:
    """Ours for HELM's instance: input text, references (output text and tags), split, sub-split,
    id and perturbation; HELM's own instance in ``extra`` for HELM's metrics."""
    references = tuple(Reference(str(r.output.text), tuple(r.tags)) for r in helm_instance.references)
    return Instance(input=str(helm_instance.input.text), references=references, split=str(helm_instance.split),
                    id=helm_instance.id or "", sub_split=helm_instance.sub_split,
                    extra={HELM_INSTANCE: helm_instance}, perturbation=perturbation_of(helm_instance.perturbation))


def to_helm_instance(instance: Instance) -> Any:
    """HELM's instance for ours: HELM's own one (its input text replaced when a perturbation
    changed it), with our id and perturbation; one built from our fields when there is none."""
    from helm.benchmark.augmentations.perturbation_description import PerturbationDescription as HelmPerturbation
    from helm.benchmark.scenarios.scenario import Input, Output
    from helm.benchmark.scenarios.scenario import Instance as HelmInstance
    from helm.benchmark.scenarios.scenario import Reference as HelmReference

    perturbation = None
    if instance.perturbation is not None:
        p = instance.perturbation
        perturbation = HelmPerturbation(name=p.name, robustness=p.robustness, fairness=p.fairness,
                                        computed_on=p.computed_on, seed=p.seed)
    base = instance.extra.get(HELM_INSTANCE)
    if base is None:
        base = HelmInstance(input=Input(text=instance.input), split=instance.split, sub_split=instance.sub_split,
                            references=[HelmReference(Output(text=r.output), tags=list(r.tags))
                                        for r in instance.references])
    elif base.input.text != instance.input:
        base = dataclasses.replace(base, input=Input(text=instance.input))
    return dataclasses.replace(base, id=instance.id or None, perturbation=perturbation)


@dataclass
class HelmScenario(Scenario):
    """HELM's scenario class, built by HELM from its spec; its instances read from (or downloaded
    into) the scenario's folder in HELM's layout (:func:`data_root`)."""

    helm_spec: dict[str, Any]
    locator: DataLocator | None = None
    _helm: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        from helm.benchmark.scenarios.scenario import ScenarioSpec, create_scenario

        self._helm = create_scenario(ScenarioSpec(class_name=self.helm_spec["class_name"],
                                                  args=dict(self.helm_spec["args"])))
        self.name = str(self._helm.name)  # type: ignore[misc]
        self.description = str(getattr(self._helm, "description", ""))  # type: ignore[misc]
        self.tags = tuple(getattr(self._helm, "tags", ()))  # type: ignore[misc]

    @property
    def folder(self) -> Path:
        return data_root(self.locator, self.name) / "scenarios" / self.name

    def get_instances(self) -> list[Instance]:
        folder = self.folder
        folder.mkdir(parents=True, exist_ok=True)
        try:
            instances = self._helm.get_instances(str(folder))
        except FileNotFoundError as exc:
            raise DataNotFoundError(f"HELM's {self.name} scenario found no data file {exc.filename or exc} "
                                    f"(its folder: {folder}; put HELM's files there, or a copy under the data "
                                    f"mirror's helm/scenarios/{self.name}/)") from None
        except OSError as exc:  # HELM's download failed (offline, say)
            raise DataNotFoundError(f"HELM's {self.name} scenario could not read or download its data into "
                                    f"{folder}: {exc}") from None
        except (ValueError, KeyError, IndexError, TypeError) as exc:  # a file HELM's reader cannot parse
            raise ConfigError(f"HELM's {self.name} scenario could not read its data: {type(exc).__name__}: {exc}",
                              file=folder) from None
        return with_ids([from_helm_instance(i) for i in instances])

    def to_json(self) -> dict[str, Any]:
        cls = type(self._helm)
        return {"name": self.name, "description": self.description, "tags": list(self.tags),
                "definition_path": f"{cls.__module__}.{cls.__qualname__}"}
