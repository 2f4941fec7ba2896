"""HELM's own metric classes, for the metrics of a HELM run spec that ours do not compute.

Ours compute HELM's basic metrics (``BasicGenerationMetric`` whose names are all built-in
matchers, ``BasicReferenceMetric``, ``InstancesPerSplitMetric``) and ``BiasMetric``; any other
metric spec (``ClassificationMetric``, ``BBQMetric``, ``LanguageModelingMetric``, ...) is built by
HELM's ``create_metric`` and evaluated on the run's request states, converted back into HELM's
dataclasses, exactly as ``helm-run`` evaluates them. Its per-instance stats join ours; its
aggregated stats join ``stats.json``.

Metrics that ask HELM's services for more than a tokenizer (a model judging the output, a
remote API) fail with one line naming the metric.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.metrics import MATCHERS
from pytest_llmeval.metrics.stat import MetricName, Stat

if TYPE_CHECKING:
    from pytest_llmeval.adapters.adapter_spec import RequestState
    from pytest_llmeval.run_result import RunResult
    from pytest_llmeval.scenarios.helm_scenarios import HelmBridge

_BASIC = "helm.benchmark.metrics.basic_metrics."
GENERATION = _BASIC + "BasicGenerationMetric"
REFERENCE = _BASIC + "BasicReferenceMetric"
PER_SPLIT = _BASIC + "InstancesPerSplitMetric"
BIAS = "helm.benchmark.metrics.bias_metrics.BiasMetric"


def split_metric_specs(metric_specs: Sequence[Any]) -> tuple[list[str], bool, list[Any]]:
    """HELM's metric specs split into ours and HELM's: the matcher names of its
    ``BasicGenerationMetric``, whether our basic metrics apply, and the specs HELM computes.

    Our basic metrics stand in for HELM's generation and reference metrics together (they are
    one computation here), so when a generation metric names a matcher we lack, both go to HELM.
    """
    classes = [spec.class_name for spec in metric_specs]
    names: list[str] = []
    for spec in metric_specs:
        if spec.class_name == GENERATION:
            names.extend(n for n in spec.args.get("names", []) if n not in names)
    ours_basic = all(n in MATCHERS for n in names) and (GENERATION in classes or REFERENCE in classes)
    ours = {BIAS, PER_SPLIT} | ({GENERATION, REFERENCE} if ours_basic else set())
    helm = [spec for spec in metric_specs if spec.class_name not in ours]
    return (names if ours_basic else []), ours_basic, helm


def lists_per_split(metric_specs: Sequence[Any]) -> bool:
    return any(spec.class_name == PER_SPLIT for spec in metric_specs)


# --- our request states -> HELM's -------------------------------------------------------------


def to_helm_request(state: RequestState) -> Any:
    from helm.common.request import Request as HelmRequest

    request = state.request
    return HelmRequest(
        model_deployment=request.model_deployment, model=request.model, prompt=request.prompt,
        temperature=request.temperature, num_completions=request.num_completions,
        top_k_per_token=request.top_k_per_token, max_tokens=request.max_tokens,
        stop_sequences=list(request.stop_sequences), echo_prompt=request.echo_prompt, top_p=request.top_p,
        messages=None if request.messages is None else [m.to_dict() for m in request.messages],
    )


def to_helm_result(state: RequestState) -> Any:
    from helm.common.request import GeneratedOutput
    from helm.common.request import RequestResult as HelmResult
    from helm.common.request import Token as HelmToken

    result = state.result
    assert result is not None
    completions = [GeneratedOutput(text=c.text, logprob=c.logprob,
                                   tokens=[HelmToken(text=t.text, logprob=t.logprob) for t in c.tokens],
                                   finish_reason=c.finish_reason) for c in result.completions]
    return HelmResult(success=result.success, embedding=list(result.embedding), completions=completions,
                      cached=result.cached, request_time=result.request_time,
                      request_datetime=result.request_datetime, error=result.error)


def to_helm_state(state: RequestState) -> Any:
    """HELM's RequestState for ours (HELM's instance from :func:`to_helm_instance`)."""
    from helm.benchmark.adaptation.request_state import RequestState as HelmState

    from pytest_llmeval.scenarios.helm_scenarios import to_helm_instance

    return HelmState(instance=to_helm_instance(state.instance), reference_index=state.reference_index,
                     request_mode=state.request_mode, train_trial_index=state.train_trial_index,
                     output_mapping=state.output_mapping, request=to_helm_request(state),
                     result=to_helm_result(state) if state.result is not None else None,
                     num_train_instances=state.num_train_instances, prompt_truncated=state.prompt_truncated)


# --- HELM's stats -> ours ---------------------------------------------------------------------


def from_helm_stat(stat: Any) -> Stat:
    from pytest_llmeval.scenarios.helm_scenarios import perturbation_of

    name = stat.name
    ours = MetricName(str(name.name), name.split, name.sub_split, perturbation_of(name.perturbation))
    return Stat(ours, int(stat.count), float(stat.sum), float(stat.sum_squared), stat.min, stat.max)


def _instance_key(instance_id: str, perturbation: Any, trial: int) -> tuple[str, str, int]:
    from pytest_llmeval.scenarios.helm_scenarios import perturbation_of

    ours = perturbation_of(perturbation) if perturbation is not None and not isinstance(perturbation, dict) \
        else perturbation
    return instance_id, repr(ours), trial


@dataclasses.dataclass
class HelmScores:
    """What HELM's metric classes computed: stats per (instance id, perturbation, trial), and in all."""

    per_instance: dict[tuple[str, str, int], list[Stat]]
    aggregated: list[Stat]

    def for_instance(self, state: RequestState) -> list[Stat]:
        return self.per_instance.get(_instance_key(state.instance.id, state.instance.perturbation,
                                                   state.train_trial_index), [])


def evaluate_helm_metrics(result: RunResult, bridge: HelmBridge, metric_service: Any = None) -> HelmScores:
    """Evaluate each of ``bridge.helm_metric_specs`` with HELM's class on the run's request states
    (HELM's ``Runner.run_one``, its metrics step); ``metric_service``: HELM's MetricService, for
    metrics that count tokens."""
    from helm.benchmark.adaptation.scenario_state import ScenarioState
    from helm.benchmark.metrics.metric import create_metric

    adapted = bridge.adapted_states  # HELM's own request states, when HELM's adapter built them
    if len(adapted) == len(result.states):
        helm_states = [dataclasses.replace(h, result=to_helm_result(s) if s.result is not None else None)
                       for h, s in zip(adapted, result.states)]
    else:
        helm_states = [to_helm_state(s) for s in result.states]
    scenario_state = ScenarioState(adapter_spec=bridge.helm_adapter_spec(result.run_spec.adapter_spec),
                                   request_states=helm_states)
    eval_cache = Path(result.output_dir).parent / "eval_cache"
    eval_cache.mkdir(parents=True, exist_ok=True)
    per_instance: dict[tuple[str, str, int], list[Stat]] = {}
    aggregated: list[Stat] = []
    for spec in bridge.helm_metric_specs:
        try:
            metric = create_metric(spec)
        except (ImportError, AttributeError, TypeError) as exc:
            raise ConfigError(f"crfm-helm cannot build the metric {spec.class_name}: {exc}") from None
        try:
            outcome = metric.evaluate(scenario_state, metric_service, str(eval_cache), 1)
        except NotImplementedError as exc:
            raise ConfigError(f"HELM's metric {spec.class_name} needs a service this run cannot give it "
                              f"({exc or 'not implemented'})") from None
        aggregated.extend(from_helm_stat(stat) for stat in outcome.aggregated_stats)
        for entry in outcome.per_instance_stats:
            key = _instance_key(entry.instance_id, entry.perturbation, entry.train_trial_index)
            per_instance.setdefault(key, []).extend(from_helm_stat(stat) for stat in entry.stats)
    return HelmScores(per_instance, aggregated)
