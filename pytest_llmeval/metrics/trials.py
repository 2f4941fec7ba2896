"""HELM's aggregation for ``stats.json``: one value per train trial, then the trials merged.

Within a trial the instances' stats are merged, stats derived from them are added (perplexity
per split and perturbation, the worst case over perturbations, which HELM writes even when a run
has no perturbed copies), and each stat is reduced to its mean; those means are merged over the
trials. So a stat's ``count`` is the number of trials, and its min, max and variance are over
trial means. ``num_instances`` (HELM's InstancesPerSplitMetric) is one more such stat per split.

The same pass also pools every instance of every trial (:attr:`Aggregates.pooled`): the
instance-level values the gates, the report and the baselines use.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pytest_llmeval.metrics.stat import MetricName, Stat
from pytest_llmeval.metrics.worst_case import worst_case_stats, worst_names
from pytest_llmeval.perturbations.description import PerturbationDescription
from pytest_llmeval.scenarios.scenario import Instance

Context = tuple[str | None, str | None, PerturbationDescription | None]  # split, sub-split, perturbation
PerInstance = tuple[Instance, int, list[Stat]]  # an instance, its train trial, its stats


@dataclass
class Aggregates:
    """A run's stats both ways: HELM's per-trial means, and every instance pooled."""

    helm: list[Stat]
    pooled: list[Stat]


def merge_into(target: dict[MetricName, Stat], stat: Stat) -> None:
    """HELM's merge_stat: merge ``stat`` into the one of its name, copying it when it is new."""
    have = target.get(stat.name)
    if have is None:
        target[stat.name] = Stat(stat.name, stat.count, stat.sum, stat.sum_squared, stat.min, stat.max)
    else:
        have.merge(stat)


def perplexity_stats(stats: dict[MetricName, Stat]) -> list[Stat]:
    """HELM's compute_perplexity_metrics over one context's merged stats (names without a context)."""
    by_name = {name.name: stat for name, stat in stats.items()}
    logprob = by_name.get("logprob")
    if logprob is None:
        return []
    derived = []
    tokens = by_name.get("num_perplexity_tokens")
    if tokens is not None and tokens.sum > 0:
        derived.append(Stat(MetricName("perplexity")).add(math.e ** (-logprob.sum / tokens.sum)))
    num_bytes = by_name.get("num_bytes")
    if num_bytes is not None and num_bytes.sum > 0:
        derived.append(Stat(MetricName("bits_per_byte")).add(-logprob.sum / num_bytes.sum / math.log(2)))
        derived.append(Stat(MetricName("logprob_per_byte")).add(logprob.sum / num_bytes.sum))
    return derived


def _by_trial(per_instance: Iterable[PerInstance], num_train_trials: int) -> list[list[PerInstance]]:
    trials: list[list[PerInstance]] = [[] for _ in range(num_train_trials)]
    for entry in per_instance:
        if 0 <= entry[1] < num_train_trials:
            trials[entry[1]].append(entry)
    return trials


def aggregate_trials(per_instance: Sequence[PerInstance], num_train_trials: int, *, derive: bool = True,
                     pooled_worst_case: bool = False) -> Aggregates:
    """HELM's ``Metric.evaluate`` over the per-instance stats, and the pooled stats beside it.

    ``derive`` adds perplexity (HELM's generation metric does; its separate multiple-choice metric
    does not). ``pooled_worst_case`` adds the worst case to the pooled stats too (for runs with
    perturbed copies; without them it would repeat every stat).
    """
    helm: dict[MetricName, Stat] = {}
    pooled: dict[MetricName, Stat] = {}
    pooled_worst: dict[MetricName, Stat] = {}
    for trial, entries in enumerate(_by_trial(per_instance, num_train_trials)):
        merged: dict[MetricName, Stat] = {}
        perturbed = False
        several: set[MetricName] = set()  # names some instance has more than one value of
        for _, _, stats in entries:
            if stats and stats[0].name.perturbation is not None:
                perturbed = True
            for stat in stats:
                have = merged.get(stat.name)
                if have is None:
                    merged[stat.name] = Stat(stat.name, stat.count, stat.sum, stat.sum_squared, stat.min, stat.max)
                else:
                    have.merge(stat)
                if stat.count > 1:
                    several.add(stat.name)
        if perturbed:
            worst = worst_case_stats([((instance.id, trial), stats) for instance, trial, stats in entries])
        else:
            worst = _worst_of_originals(merged, several, entries)
        for stat in merged.values():
            merge_into(pooled, stat)
        if derive:
            contexts: dict[Context, dict[MetricName, Stat]] = {}
            for name, stat in merged.items():
                contexts.setdefault((name.split, name.sub_split, name.perturbation), {})[name] = stat
            for (split, sub_split, perturbation), stats_of_context in contexts.items():
                for stat in perplexity_stats(stats_of_context):
                    merge_into(merged, stat.in_context(split, sub_split, perturbation))
        for stat in worst:
            merge_into(merged, stat)
            if pooled_worst_case:
                merge_into(pooled_worst, stat)
        for stat in merged.values():
            merge_into(helm, stat.take_mean())
    return Aggregates(list(helm.values()), list(pooled.values()) + list(pooled_worst.values()))


def _worst_of_originals(merged: dict[MetricName, Stat], several: set[MetricName],
                        entries: list[PerInstance]) -> list[Stat]:
    """:func:`worst_case_stats` of a trial without perturbed copies, from its merged stats: each
    instance is its own worst case, so the worst case of a metric is the Stat of the instances'
    minima, which is the merged Stat itself where every instance has one value."""
    minima = {name: Stat(name) for name in several}
    if minima:
        for _, _, stats in entries:
            for stat in stats:
                target = minima.get(stat.name)
                if target is not None and stat.count:
                    target.add(stat.min)
    worst = []
    for name, stat in merged.items():
        source = minima.get(name, stat)
        if source.count:
            for worst_name in worst_names(name):
                worst.append(Stat(worst_name, source.count, source.sum, source.sum_squared, source.min, source.max))
    return worst


def instances_per_split(instances: Iterable[tuple[Instance, int]], num_train_trials: int) -> list[Stat]:
    """HELM's InstancesPerSplitMetric: per trial, the number of instances of each split (and
    sub-split and perturbation), averaged over the trials."""
    per_trial: list[dict[Context, set[object]]] = [{} for _ in range(num_train_trials)]
    for instance, trial in instances:
        if 0 <= trial < num_train_trials:
            context = (instance.split, instance.sub_split, instance.perturbation)
            key: object = instance  # equal instances count once, as in HELM's set
            try:
                hash(instance)
            except TypeError:  # a perturbation with unhashable settings: the object itself
                key = id(instance)
            per_trial[trial].setdefault(context, set()).add(key)
    totals: dict[MetricName, Stat] = {}
    for contexts in per_trial:
        for (split, sub_split, perturbation), members in contexts.items():
            stat = Stat(MetricName("num_instances", split, sub_split, perturbation)).add(len(members))
            merge_into(totals, stat.take_mean())
    return list(totals.values())
