"""HELM's worst-case stats over an instance and its perturbed copies.

For every metric and instance (copies share their original's id) the worst value over the
original and its copies is taken, per perturbation and over all robustness and all fairness
perturbations together (``computed_on: worst``); for each single perturbation the originals'
values are recorded as well (``computed_on: original``). Worst means lowest, as in HELM.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import defaultdict

from pytest_llmeval.metrics.stat import MetricName, Stat
from pytest_llmeval.perturbations.description import ORIGINAL, WORST, PerturbationDescription

InstanceKey = tuple[str, int]  # (instance id, train trial)


_ROBUSTNESS_WORST = PerturbationDescription("robustness", robustness=True, computed_on=WORST)
_FAIRNESS_WORST = PerturbationDescription("fairness", fairness=True, computed_on=WORST)


@functools.lru_cache(maxsize=4096)
def worst_names(name: MetricName) -> tuple[MetricName, MetricName]:
    """The names of a stat's worst case over all robustness and over all fairness perturbations."""
    return (dataclasses.replace(name, perturbation=_ROBUSTNESS_WORST),
            dataclasses.replace(name, perturbation=_FAIRNESS_WORST))


def _unperturbed(per_instance: list[tuple[InstanceKey, list[Stat]]]) -> list[Stat]:
    """The same stats when no instance has perturbed copies: each original is its own worst case."""
    derived: dict[MetricName, Stat] = {}
    for _, stats in per_instance:
        for stat in stats:
            if not stat.count:
                continue
            for name in worst_names(stat.name):
                target = derived.get(name)
                if target is None:
                    target = derived[name] = Stat(name)
                target.add(stat.min)
    return list(derived.values())


def worst_case_stats(per_instance: list[tuple[InstanceKey, list[Stat]]]) -> list[Stat]:
    """Worst-case stats from per-instance stats (each stat named with its perturbation)."""
    if not any(stat.name.perturbation is not None for _, stats in per_instance for stat in stats[:1]):
        return _unperturbed(per_instance)
    grouped: dict[tuple[MetricName, InstanceKey], list[Stat]] = defaultdict(list)
    for key, stats in per_instance:
        for stat in stats:
            grouped[(dataclasses.replace(stat.name, perturbation=None), key)].append(stat)

    derived: dict[MetricName, Stat] = {}

    def merge(stat: Stat) -> None:
        target = derived.setdefault(stat.name, Stat(stat.name))
        target.merge(stat)

    for (name, _), stats in grouped.items():
        original: Stat | None = None
        robustness = Stat(dataclasses.replace(name, perturbation=PerturbationDescription("robustness",
                                                                                          robustness=True)))
        fairness = Stat(dataclasses.replace(name, perturbation=PerturbationDescription("fairness", fairness=True)))
        single: dict[PerturbationDescription, Stat] = {}
        for stat in stats:
            perturbation = stat.name.perturbation
            if perturbation is None:
                original = stat
                continue
            if perturbation.robustness:
                robustness.merge(stat)
            if perturbation.fairness:
                fairness.merge(stat)
            single.setdefault(perturbation, Stat(stat.name)).merge(stat)
        for stat in (robustness, fairness, *single.values()):
            perturbation = stat.name.perturbation
            assert perturbation is not None
            if original is not None:
                stat.merge(original)
                if perturbation.name not in ("robustness", "fairness"):
                    before = perturbation.with_computed_on(ORIGINAL)
                    merge(Stat(dataclasses.replace(stat.name, perturbation=before)).merge(original))
            if stat.count and stat.min is not None:
                merge(Stat(dataclasses.replace(stat.name, perturbation=perturbation.with_computed_on(WORST)))
                      .add(stat.min))
    return list(derived.values())
