"""Comparing a run with its baseline entry: per-metric tolerance AND a paired significance test.

A run fails the comparison only when a metric moved the bad way by more than its tolerance
and the paired test says the move is unlikely to be chance (p below the chosen level). Every
comparison also lists the per-instance changes, like a snapshot diff.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.gates import lower_is_better
from pytest_llmeval.report.baseline import input_digest
from pytest_llmeval.report.run_records import InstanceRecord, RunRecord
from pytest_llmeval.report.significance import is_binary, mcnemar_exact_p, paired_bootstrap_p

_TOLERANCE = re.compile(r"^\s*([A-Za-z_][\w .]*?)\s*:\s*([+-]?)\s*(\d+(?:\.\d*)?|\.\d+)\s*(%?)\s*$")


@dataclass(frozen=True)
class Tolerance:
    """How far a metric may move the bad way: ``exact_match:-2%`` (relative) or ``exact_match:-0.02``.

    The sign names the bad direction; without one the metric's own direction decides (down for
    accuracy-like metrics, up for runtime and token counts).
    """

    metric: str
    amount: float
    relative: bool
    direction: int  # -1: a drop is bad; +1: a rise is bad

    @classmethod
    def parse(cls, text: str) -> Tolerance:
        match = _TOLERANCE.match(text)
        if not match:
            raise ConfigError(f"{text!r} is not '<metric>:<change>' such as 'exact_match:-2%' or "
                              f"'exact_match:-0.02'", field="--llmeval-compare-fail")
        metric, sign, number, percent = match.groups()
        direction = {"-": -1, "+": 1}.get(sign, 1 if lower_is_better(metric) else -1)
        return cls(metric.strip(), float(number), bool(percent), direction)

    @classmethod
    def default(cls, metric: str) -> Tolerance:
        """No tolerance: any move the bad way counts, if it is also significant."""
        return cls(metric, 0.0, False, 1 if lower_is_better(metric) else -1)

    def allowed(self, baseline_mean: float) -> float:
        return self.amount * abs(baseline_mean) / 100.0 if self.relative else self.amount

    def exceeded(self, baseline_mean: float, delta: float) -> bool:
        return delta * self.direction > self.allowed(baseline_mean) + 1e-12

    def __str__(self) -> str:
        if self.amount == 0:
            return f"{self.metric}: any {'drop' if self.direction < 0 else 'rise'}"
        sign = "-" if self.direction < 0 else "+"
        return f"{self.metric}:{sign}{self.amount:g}{'%' if self.relative else ''}"


def parse_tolerances(texts: list[str]) -> dict[str, Tolerance]:
    tolerances: dict[str, Tolerance] = {}
    for text in texts:
        for part in filter(None, (p.strip() for p in text.split(","))):
            tolerance = Tolerance.parse(part)
            tolerances[tolerance.metric] = tolerance
    return tolerances


@dataclass
class MetricComparison:
    metric: str
    test: str  # "mcnemar" or "bootstrap"
    paired: int
    baseline: float
    current: float
    delta: float
    relative: float | None
    p_value: float
    tolerance: str
    beyond_tolerance: bool
    significant: bool

    @property
    def regression(self) -> bool:
        return self.beyond_tolerance and self.significant

    def describe(self, alpha: float) -> str:
        rel = f", {self.relative:+.1%}" if self.relative is not None else ""
        test = "McNemar exact" if self.test == "mcnemar" else "paired bootstrap"
        relation = "<" if self.significant else ">="
        return (f"{self.metric} {self.baseline:.4f} -> {self.current:.4f} ({self.delta:+.4f}{rel}; tolerance "
                f"{self.tolerance}) on {self.paired} paired instances, {test} p={self.p_value:.4g} "
                f"{relation} {alpha:g}")


@dataclass
class InstanceChange:
    key: str
    id: str
    baseline_output: str
    current_output: str
    baseline_value: float | None
    current_value: float | None


@dataclass
class Comparison:
    """The outcome of comparing one run with one baseline entry."""

    baseline: str  # the baseline file's name
    entry: str | None  # the entry compared with (None: the run is new)
    alpha: float
    metrics: list[MetricComparison] = field(default_factory=list)
    right_to_wrong: list[InstanceChange] = field(default_factory=list)
    wrong_to_right: list[InstanceChange] = field(default_factory=list)
    changed_output: list[InstanceChange] = field(default_factory=list)
    only_in_current: int = 0
    only_in_baseline: int = 0
    note: str = ""

    @property
    def regressions(self) -> list[MetricComparison]:
        return [m for m in self.metrics if m.regression]

    def failure_messages(self) -> list[str]:
        if not self.regressions:
            return []
        flips = f"; {len(self.right_to_wrong)} right->wrong, {len(self.wrong_to_right)} wrong->right"
        return [f"regression against baseline {self.baseline}: {m.describe(self.alpha)}{flips}"
                for m in self.regressions]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["regression"] = bool(self.regressions)
        return data


def _pairs(current: list[InstanceRecord], baseline: list[dict[str, Any]], split: str | None
           ) -> tuple[list[tuple[dict[str, Any], InstanceRecord]], int, int]:
    # Originals only, on the main metric's split: perturbed copies are correlated with their originals.
    base_by_key = {b["key"]: b for b in baseline
                   if (split is None or b.get("split") == split) and not b.get("perturbation")}
    cur = [c for c in current if (split is None or c.split == split) and not c.perturbation]
    # An instance pairs with its baseline only if it asked the same thing (same input digest).
    pairs = [(base_by_key[c.key], c) for c in cur if c.key in base_by_key
             and base_by_key[c.key].get("input_digest", input_digest(c.input)) == input_digest(c.input)]
    paired = {c.key for _, c in pairs}
    return pairs, len(cur) - len(pairs), len([k for k in base_by_key if k not in paired])


def compare_run(record: RunRecord, entry: dict[str, Any] | None, baseline_name: str,
                tolerances: dict[str, Tolerance], alpha: float) -> Comparison:
    """Compare a run record with a baseline entry (``baseline.BaselineEntry`` JSON)."""
    comparison = Comparison(baseline=baseline_name, entry=entry["key"] if entry else None, alpha=alpha)
    if entry is None:
        comparison.note = "not in the baseline (a new run)"
        return comparison
    if entry["key"] != record.key:
        comparison.note = f"compared with baseline entry {entry['key']} (same scenario and model)"
    pairs, comparison.only_in_current, comparison.only_in_baseline = _pairs(
        record.instances, entry.get("instances", []), record.split)
    main = record.main_metric
    for base, cur in pairs:
        change = InstanceChange(cur.key, cur.id, str(base.get("output", "")), cur.output,
                                base.get("metrics", {}).get(main), cur.metrics.get(main))
        before, after = change.baseline_value, change.current_value
        if before == 1.0 and after == 0.0:
            comparison.right_to_wrong.append(change)
        elif before == 0.0 and after == 1.0:
            comparison.wrong_to_right.append(change)
        if change.baseline_output != change.current_output:
            comparison.changed_output.append(change)
    names = [main, *[m for m in tolerances if m != main]]
    for metric in names:
        values = [(b["metrics"][metric], c.metrics[metric]) for b, c in pairs
                  if metric in b.get("metrics", {}) and metric in c.metrics]
        if not values:
            continue
        base_values = [float(v[0]) for v in values]
        cur_values = [float(v[1]) for v in values]
        binary = is_binary(base_values) and is_binary(cur_values)
        if binary:
            r2w = sum(1 for b, c in values if b == 1.0 and c == 0.0)
            w2r = sum(1 for b, c in values if b == 0.0 and c == 1.0)
            p_value = mcnemar_exact_p(r2w, w2r)
        else:
            p_value = paired_bootstrap_p(base_values, cur_values)
        base_mean = sum(base_values) / len(base_values)
        cur_mean = sum(cur_values) / len(cur_values)
        delta = cur_mean - base_mean
        tolerance = tolerances.get(metric, Tolerance.default(metric))
        comparison.metrics.append(MetricComparison(
            metric=metric, test="mcnemar" if binary else "bootstrap", paired=len(values), baseline=base_mean,
            current=cur_mean, delta=delta, relative=delta / base_mean if base_mean else None, p_value=p_value,
            tolerance=str(tolerance), beyond_tolerance=tolerance.exceeded(base_mean, delta),
            significant=p_value < alpha,
        ))
    return comparison
