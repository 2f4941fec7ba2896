"""One run, start to end: run spec -> instances -> requests -> results (through the cache and the
client) -> per-instance stats -> aggregated stats -> one :class:`RunResult`, which the HELM files
are written from and which the caller hands on to the report.

A run that fails after sending requests (some requests failed, a metric raised, the client
gave up part-way) still yields what it had done: its HELM files are written with the results
and stats computed so far, and :class:`RunFailed` carries the partial result.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from pytest_llmeval.adapters.adapter_spec import ADAPT_MULTIPLE_CHOICE_SEPARATE_ORIGINAL, RequestState
from pytest_llmeval.adapters.context_window import ContextWindow
from pytest_llmeval.adapters.in_context import adapt
from pytest_llmeval.clients.protocol import Client, stream
from pytest_llmeval.errors import ClientError
from pytest_llmeval.legacy_random import LegacyNumpyRandom
from pytest_llmeval.metrics.basic import general_stats, generation_stats
from pytest_llmeval.metrics.bias import bias_metrics, bias_stats
from pytest_llmeval.metrics.multiple_choice import separate_stats
from pytest_llmeval.metrics.stat import Stat
from pytest_llmeval.metrics.trials import aggregate_trials, instances_per_split
from pytest_llmeval.perturbations.augment import augment
from pytest_llmeval.report.helm_output import run_dir, write_run
from pytest_llmeval.run_result import InstanceResult, RunFailed, RunResult
from pytest_llmeval.runspec import RunSpec
from pytest_llmeval.scenarios.data import DataLocator
from pytest_llmeval.scenarios.scenario import TRAIN_SPLIT, Instance, Scenario

log = logging.getLogger("pytest_llmeval.run")

Progress = Callable[[int, int], None]


def downsample(instances: list[Instance], eval_splits: tuple[str, ...], limit: int | None) -> list[Instance]:
    """Every training instance and at most ``limit`` eval instances, picked by ``helm-run``'s rule in
    its order: ``np.random.seed(0); np.random.choice(evaluated, limit, replace=False)``."""
    train = [i for i in instances if i.split == TRAIN_SPLIT]
    evaluated = [i for i in instances if i.split in eval_splits]
    if limit is not None and len(evaluated) > limit:
        evaluated = [evaluated[n] for n in LegacyNumpyRandom(0).sample(len(evaluated), limit)]
    return train + evaluated


def group_states(states: list[RequestState]) -> list[list[RequestState]]:
    """The request states of each (instance, perturbation, trial), in first-seen order."""
    groups: dict[tuple[object, ...], list[RequestState]] = {}
    for state in states:
        key = (state.instance.id, state.instance.perturbation, state.train_trial_index)
        groups.setdefault(key, []).append(state)
    return list(groups.values())


def with_context(stat: Stat, instance: Instance) -> Stat:
    """The stat named with its instance's split, sub-split and perturbation (HELM's add_context);
    a new stat already named so (the usual case) is taken as it is."""
    name = stat.name
    if (name.split == instance.split and name.sub_split is None and name.perturbation is None
            and instance.sub_split is None and instance.perturbation is None):
        return stat
    return stat.in_context(instance.split, instance.sub_split, instance.perturbation)


def instance_stats(group: list[RequestState], run_spec: RunSpec, window: ContextWindow | None) -> list[Stat]:
    """Per-instance stats as HELM's basic metrics list them: general stats, reference metrics,
    log-probabilities (see :mod:`pytest_llmeval.metrics.basic`)."""
    spec = run_spec.adapter_spec

    def prompt_tokens(state: RequestState) -> int | None:
        return window.count(state.request.prompt) if window is not None else None

    if spec.method == ADAPT_MULTIPLE_CHOICE_SEPARATE_ORIGINAL:
        merged: dict[object, Stat] = {}
        for state in group:  # as HELM: one record of general stats per option, merged
            for stat in general_stats(state, spec.num_train_trials, prompt_tokens(state)):
                merged.setdefault(stat.name, Stat(stat.name)).merge(stat)
        stats = list(merged.values()) + separate_stats(group)
    else:
        [state] = group
        stats = generation_stats(state, run_spec.metrics, run_spec.matchers, spec.num_outputs,
                                 spec.num_train_trials, prompt_tokens(state))
    return [with_context(stat, group[0].instance) for stat in stats]


def build_requests(run_spec: RunSpec, scenario: Scenario, max_eval_instances: int | None,
                   window: ContextWindow | None) -> list[RequestState]:
    """Instances (a seeded sample, perturbed copies added) -> request states, their prompts
    fitted into the deployment's context window when there is one."""
    spec = run_spec.adapter_spec
    if spec.max_eval_instances is None and max_eval_instances is not None:  # a description's own limit wins
        spec = spec.replace(max_eval_instances=max_eval_instances)
        run_spec.adapter_spec = spec
    instances = downsample(scenario.get_instances(), spec.evaluated_splits, spec.max_eval_instances)
    if run_spec.perturbations:
        before = len(instances)
        instances = augment(instances, run_spec.perturbations, spec.evaluated_splits)
        log.info("%s: %d perturbed copies added", run_spec.name, len(instances) - before)
    bridge = run_spec.helm_bridge
    if bridge is not None and bridge.adapter_spec is not None:  # a method only HELM's adapter has
        from pytest_llmeval.adapters.helm_adapter import helm_adapt

        states = helm_adapt(run_spec, bridge, instances, window)
    else:
        states = adapt(spec, instances, window)
    if window is not None:
        window.prime([s.request.prompt for s in states])  # HELM's num_prompt_tokens, counted in bulk
    log.info("%s: %d requests", run_spec.name, len(states))
    return states


def answer(client: Client, result: RunResult, progress: Progress | None) -> None:
    """Every request's result, through the cache and the client; the result's request and cache
    counts grow as answers arrive, so they are right even when the client fails part-way."""
    states = result.states
    hits = 0
    for indices, answers in stream(client, [s.request for s in states]):
        for i, reply in zip(indices, answers):
            states[i].result = reply
            hits += int(reply.cached)
        result.requests += len(indices)
        result.cache_hits = hits
        if progress is not None:
            progress(result.requests, len(states))
    result.failures = [f"{s.instance.id}: {s.result.error}" for s in states
                       if s.result is not None and not s.result.success]


def score(result: RunResult, window: ContextWindow | None) -> None:
    """Per-instance stats for every instance whose requests all succeeded, then their aggregates:
    pooled over every instance (``result.stats``) and HELM's per-trial means (``result.helm_stats``).

    The instances get their stats only once all are computed: a metric that raises leaves none.
    """
    run_spec = result.run_spec
    bridge = run_spec.helm_bridge
    ours = bridge is None or bridge.basic  # HELM's basic metrics, computed here
    per_instance = [
        instance_stats(i.states, run_spec, window) if ours and all(s.result and s.result.success for s in i.states)
        else [] for i in result.instances
    ]
    helm_scores = None
    if bridge is not None and bridge.helm_metric_specs and not result.failures:  # HELM's own classes, the rest
        from pytest_llmeval.metrics.helm_metrics import evaluate_helm_metrics

        helm_scores = evaluate_helm_metrics(result, bridge, bridge.metric_service(window))
    trials = run_spec.adapter_spec.num_train_trials
    aggregates = aggregate_trials(
        [(i.head.instance, i.head.train_trial_index, stats) for i, stats in zip(result.instances, per_instance)],
        trials, derive=run_spec.adapter_spec.method != ADAPT_MULTIPLE_CHOICE_SEPARATE_ORIGINAL,
        pooled_worst_case=bool(run_spec.perturbations))
    for instance, stats in zip(result.instances, per_instance):  # HELM's aggregated its own: after ours
        instance.stats = stats + helm_scores.for_instance(instance.head) if helm_scores else stats
    per_split = instances_per_split(((i.head.instance, i.head.train_trial_index) for i in result.instances), trials) \
        if bridge is None or bridge.per_split else []
    result.stats = aggregates.pooled + (helm_scores.aggregated if helm_scores else [])
    result.helm_stats = aggregates.helm + per_split + bias_stats(
        bias_metrics(run_spec.helm_metric_specs or []), result.states, trials) + (
        helm_scores.aggregated if helm_scores else [])


def execute(run_spec: RunSpec, client: Client, locator: DataLocator, output_path: Path, suite: str,
            max_eval_instances: int | None = None, progress: Progress | None = None,
            window: ContextWindow | None = None) -> RunResult:
    """Run one RunSpec and write its HELM files. ``window`` (the deployment's tokenizer and limits)
    fits prompts into the context window and counts prompt tokens; without one, prompts go as built.

    Raises :class:`RunFailed` (carrying the partial result, whose files are written too) when a
    request failed, the client gave up or a metric raised.
    """
    started = time.perf_counter()
    run_spec = run_spec.with_late_texts(locator)
    scenario = run_spec.build_scenario(locator)
    states = build_requests(run_spec, scenario, max_eval_instances, window)
    instances = [InstanceResult(group) for group in group_states(states)]
    result = RunResult(run_spec, scenario, states, instances, [], run_dir(output_path, suite, run_spec.name), 0.0)
    try:
        answer(client, result, progress)
        score(result, window)
    except Exception as exc:  # what was done is kept: the cache has the answers, the files what was scored
        write_run(result)
        result.seconds = time.perf_counter() - started
        raise RunFailed(exc, result) from exc
    write_run(result)
    result.seconds = time.perf_counter() - started
    if result.failures:
        raise RunFailed(ClientError(
            f"{len(result.failures)} of {len(states)} requests failed (results that succeeded are cached and "
            f"written to {result.output_dir}); first: {result.failures[0]}"), result)
    return result
