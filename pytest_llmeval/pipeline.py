"""One run, start to end: scenario -> (perturbations) -> adapter -> client -> metrics -> HELM files."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pytest_llmeval.adapters.adapter_spec import ADAPT_MULTIPLE_CHOICE_SEPARATE_ORIGINAL, RequestState
from pytest_llmeval.adapters.context_window import ContextWindow
from pytest_llmeval.adapters.in_context import adapt
from pytest_llmeval.clients.protocol import Client, stream
from pytest_llmeval.errors import ClientError, LLMEvalError
from pytest_llmeval.gates import pick_stat
from pytest_llmeval.legacy_random import LegacyNumpyRandom
from pytest_llmeval.metrics.basic import efficiency_stats, max_prob_stats, reference_stats
from pytest_llmeval.metrics.multiple_choice import separate_stats
from pytest_llmeval.metrics.stat import Stat, aggregate
from pytest_llmeval.metrics.worst_case import worst_case_stats
from pytest_llmeval.perturbations.augment import augment
from pytest_llmeval.report.helm_output import run_dir, write_run
from pytest_llmeval.runspec import RunSpec
from pytest_llmeval.scenarios.data import DataLocator
from pytest_llmeval.scenarios.scenario import TRAIN_SPLIT, Instance

log = logging.getLogger("pytest_llmeval.run")

Progress = Callable[[int, int], None]


@dataclass
class RunResult:
    """What a run produced, kept in memory for gates and the terminal summary."""

    run_spec: RunSpec
    states: list[RequestState]
    stats: list[Stat]
    output_dir: Path
    seconds: float
    cache_hits: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def main_stat(self) -> Stat | None:
        return pick_stat(self.stats, self.run_spec.main_metric)


def downsample(instances: list[Instance], eval_splits: tuple[str, ...], limit: int | None) -> list[Instance]:
    """Every training instance and at most ``limit`` eval instances, the ones ``helm-run`` picks in
    the order it picks them: ``np.random.seed(0); np.random.choice(evaluated, limit, replace=False)``."""
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
    """The stat named with its instance's split, sub-split and perturbation (HELM's add_context)."""
    return stat.in_context(instance.split, instance.sub_split, instance.perturbation)


def instance_stats(group: list[RequestState], run_spec: RunSpec, window: ContextWindow | None) -> list[Stat]:
    """Per-instance stats: the metrics, max_prob and what the requests cost."""
    def cost(state: RequestState) -> list[Stat]:
        prompt_tokens = window.count(state.request.prompt) if window is not None else None
        return efficiency_stats(state, prompt_tokens)

    if run_spec.adapter_spec.method == ADAPT_MULTIPLE_CHOICE_SEPARATE_ORIGINAL:
        merged: dict[object, Stat] = {}
        for state in group:  # as HELM: one cost record per option, merged
            for stat in cost(state):
                merged.setdefault(stat.name, Stat(stat.name)).merge(stat)
        stats = list(merged.values()) + separate_stats(group)
    else:
        [state] = group
        stats = max_prob_stats(state) + reference_stats(state, run_spec.metrics, run_spec.matchers) + cost(state)
    return [with_context(stat, group[0].instance) for stat in stats]


def execute(run_spec: RunSpec, client: Client, locator: DataLocator, output_path: Path, suite: str,
            max_eval_instances: int | None = None, progress: Progress | None = None,
            window: ContextWindow | None = None) -> RunResult:
    """Run one RunSpec. ``window`` (the deployment's tokenizer and limits) fits prompts into the
    context window and counts prompt tokens; without one, prompts go as built."""
    started = time.perf_counter()
    scenario = run_spec.build_scenario(locator)
    spec = run_spec.adapter_spec
    if spec.max_eval_instances is None and max_eval_instances is not None:  # a description's own limit wins
        spec = spec.replace(max_eval_instances=max_eval_instances)
        run_spec.adapter_spec = spec
    instances = downsample(scenario.get_instances(), spec.eval_splits, spec.max_eval_instances)
    if run_spec.perturbations:
        before = len(instances)
        instances = augment(instances, run_spec.perturbations, spec.eval_splits)
        log.info("%s: %d perturbed copies added", run_spec.name, len(instances) - before)
    states = adapt(spec, instances, window)
    if window is not None:
        window.prime([s.request.prompt for s in states])  # HELM's num_prompt_tokens, counted in bulk
    log.info("%s: %d requests", run_spec.name, len(states))
    hits = done = 0
    for indices, answers in stream(client, [s.request for s in states]):
        for i, answer in zip(indices, answers):
            states[i].result = answer
            hits += int(answer.cached)
        done += len(indices)
        if progress is not None:
            progress(done, len(states))
    failures = [f"{s.instance.id}: {s.result.error}" for s in states if s.result is not None and not s.result.success]
    groups = group_states(states)
    directory = run_dir(output_path, suite, run_spec.name)
    heads = [group[0] for group in groups]
    try:
        per_instance = [
            instance_stats(group, run_spec, window) if all(s.result and s.result.success for s in group) else []
            for group in groups
        ]
    except LLMEvalError:
        write_run(directory, run_spec, scenario, states, [[] for _ in groups], [], instance_states=heads)
        raise
    stats = aggregate(per_instance)
    if run_spec.perturbations:
        keyed = [((g[0].instance.id, g[0].train_trial_index), s) for g, s in zip(groups, per_instance)]
        stats += worst_case_stats(keyed)
    write_run(directory, run_spec, scenario, states, per_instance, stats, instance_states=heads)
    result = RunResult(run_spec, states, stats, directory, time.perf_counter() - started, hits, failures)
    if failures:
        raise ClientError(
            f"{len(failures)} of {len(states)} requests failed (results that succeeded are cached and written "
            f"to {directory}); first: {failures[0]}")
    return result
