"""HELM's Stat: a running count, sum, sum of squares, min and max of one named metric."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

from pytest_llmeval.perturbations.description import PerturbationDescription


@dataclass(frozen=True)
class MetricName:
    """A metric's name and the split (and perturbation) it was computed on.

    The perturbation is part of the name's identity, so stats on perturbed copies (and the
    worst case over them) aggregate apart from the originals'; a plain dict is accepted too.
    """

    name: str
    split: str | None = None
    sub_split: str | None = None
    perturbation: PerturbationDescription | None = None

    def __post_init__(self) -> None:
        if isinstance(self.perturbation, dict):
            object.__setattr__(self, "perturbation", PerturbationDescription.from_json(self.perturbation))

    def __hash__(self) -> int:
        """The fields' hash, computed once: a run looks every stat's name up several times."""
        cached: int | None = self.__dict__.get("_hash")
        if cached is None:
            cached = hash((self.name, self.split, self.sub_split, self.perturbation))
            object.__setattr__(self, "_hash", cached)
        return cached

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without the cached hash (string hashes differ between processes) and JSON."""
        return {k: v for k, v in self.__dict__.items() if k not in ("_hash", "_json")}

    def json_view(self) -> dict[str, Any]:
        """:meth:`to_json`, built once per name and shared: for writers that only encode it."""
        cached: dict[str, Any] | None = self.__dict__.get("_json")
        if cached is None:
            cached = self.to_json()
            object.__setattr__(self, "_json", cached)
        return cached

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name}
        if self.split is not None:
            data["split"] = self.split
        if self.sub_split is not None:
            data["sub_split"] = self.sub_split
        if self.perturbation is not None:
            data["perturbation"] = self.perturbation.to_json()
        return data


@functools.lru_cache(maxsize=4096)
def _shared_name(name: str, split: str | None, sub_split: str | None,
                 perturbation: PerturbationDescription | None) -> MetricName:
    """One frozen name object for each metric of each split: every instance of a run repeats them."""
    return MetricName(name, split, sub_split, perturbation)


def shared_name(name: str, split: str | None = None) -> MetricName:
    """The one name object of a metric on a split (see ``_shared_name``)."""
    return _shared_name(name, split, None, None)


def one_value(name: MetricName, value: float | bool) -> Stat:
    """``Stat(name).add(value)`` for a value that is there, without ``add``'s checks: a run makes
    some twenty of these per instance."""
    number = float(value)
    return Stat(name, 1, number, number * number, number, number)


@dataclass
class Stat:
    """Aggregates values; ``mean``, ``variance`` (population) and ``stddev`` as HELM writes them."""

    name: MetricName
    count: int = 0
    sum: float = 0.0
    sum_squared: float = 0.0
    min: float | None = None
    max: float | None = None

    def add(self, value: float | bool | None) -> Stat:
        if value is None:  # as HELM: a missing value is skipped, not counted
            return self
        value = float(value)
        self.count += 1
        self.sum += value
        self.sum_squared += value * value
        self.min = value if self.min is None else min(self.min, value)
        self.max = value if self.max is None else max(self.max, value)
        return self

    def in_context(self, split: str | None, sub_split: str | None,
                   perturbation: PerturbationDescription | None) -> Stat:
        """A copy named with another split, sub-split and perturbation (HELM's add_context).

        Exactly ``Stat(replace(self.name, ...)).merge(self)`` (hence ``0.0 +``: a merged sum is a
        float), without ``replace``'s cost: a run renames every per-instance stat.
        """
        try:
            name = _shared_name(self.name.name, split, sub_split, perturbation)
        except TypeError:  # a perturbation with unhashable settings: a name of its own
            name = MetricName(self.name.name, split, sub_split, perturbation)
        return Stat(name, 0 + self.count, 0.0 + self.sum, 0.0 + self.sum_squared, self.min, self.max)

    def merge(self, other: Stat) -> Stat:
        self.count += other.count
        self.sum += other.sum
        self.sum_squared += other.sum_squared
        if other.min is not None:
            self.min = other.min if self.min is None else min(self.min, other.min)
        if other.max is not None:
            self.max = other.max if self.max is None else max(self.max, other.max)
        return self

    def take_mean(self) -> Stat:
        """HELM's take_mean: a one-value Stat of this one's mean (an empty Stat stays as it is).

        A train trial's stats become one value each this way, so ``stats.json`` counts trials.
        """
        if not self.count:
            return self
        return Stat(self.name).add(self.sum / self.count)

    @property
    def mean(self) -> float | None:
        return self.sum / self.count if self.count else None

    @property
    def variance(self) -> float | None:
        if not self.count:
            return None
        mean = self.sum / self.count
        return max(0.0, self.sum_squared / self.count - mean * mean)

    @property
    def stddev(self) -> float | None:
        variance = self.variance
        return math.sqrt(variance) if variance is not None else None

    def to_json(self) -> dict[str, Any]:
        """HELM's Stat JSON; ``mean``, ``variance`` and ``stddev`` as the properties give them,
        computed once here (a run writes a hundred thousand of these). As HELM writes it, an empty
        Stat (a value nobody had, such as ``training_co2_cost``) has no min, max, mean or spread.
        The name's part is shared between the stats of one name: read it, do not change it."""
        count = self.count
        name = self.name.json_view()
        if not count:
            return {"name": name, "count": 0, "sum": self.sum, "sum_squared": self.sum_squared}
        mean = self.sum / count
        spread = self.sum_squared / count - mean * mean
        variance = spread if spread > 0.0 else 0.0  # max(0.0, spread), NaN and -0.0 included
        return {"name": name, "count": count, "sum": self.sum,
                "sum_squared": self.sum_squared, "min": self.min, "max": self.max, "mean": mean,
                "variance": variance, "stddev": math.sqrt(variance)}


def aggregate(per_instance: list[list[Stat]]) -> list[Stat]:
    """Merge per-instance stats into one Stat per metric name, in first-seen order."""
    merged: dict[MetricName, Stat] = {}
    for stats in per_instance:
        for stat in stats:
            target = merged.get(stat.name)
            if target is None:
                target = merged[stat.name] = Stat(stat.name)
            target.merge(stat)
    return list(merged.values())
