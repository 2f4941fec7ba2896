"""Gates: ``exact_match >= 0.25`` written in an eval file or on the command line."""

from __future__ import annotations

import difflib
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.metrics.stat import Stat

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq,
}
# A metric name may carry an lm-eval filter: ``exact_match,strict-match >= 0.3``.
_METRIC = r"[A-Za-z_][\w.]*(?:,[\w.\-]+(?:@\d+)*)?"  # lm-eval filters such as maj@64
_GATE = re.compile(rf"^\s*({_METRIC})(?:@(\w+))?\s*(>=|<=|==|>|<)\s*(-?[\d.]+(?:e-?\d+)?)\s*$")
SPLITS = ("train", "valid", "test")  # HELM's split names, the only ones a stat can carry
_FAIL_UNDER = re.compile(rf"^\s*({_METRIC})(?:@(\w+))?\s*=\s*(-?[\d.]+(?:e-?\d+)?)\s*$")

# Metrics where a smaller value is better (costs, failures); the rest are scores, higher is better.
LOWER_IS_BETTER = frozenset({
    "inference_runtime", "inference_denoised_runtime", "inference_idealized_runtime", "batch_request_time",
    "num_prompt_tokens", "num_output_tokens", "num_completion_tokens", "num_bytes", "prompt_truncated",
    "finish_reason_length", "training_co2_cost", "training_energy_cost", "aborted", "lose",
    "violated_request_count",
})


def lower_is_better(metric: str) -> bool:
    """Direction of a metric; game metrics such as 'Violated Request Count' match in any spelling."""
    return metric.strip().lower().replace(" ", "_").replace("-", "_") in LOWER_IS_BETTER


@dataclass(frozen=True)
class Gate:
    """A bound on one metric's mean (on the ``test`` split unless ``metric@split`` says)."""

    metric: str
    op: str
    bound: float
    split: str | None = None

    @classmethod
    def parse(cls, text: str) -> Gate:
        match = _GATE.match(text)
        if not match:
            raise ConfigError(f"gate {text!r} is not '<metric> <op> <number>' (for example 'exact_match >= 0.25')",
                              field="gates")
        metric, split, op, bound = match.groups()
        try:
            value = float(bound)
        except ValueError:  # the pattern admits "0.2.5" and "."
            raise ConfigError(f"gate {text!r}: {bound!r} is not a number", field="gates") from None
        return cls(_unfiltered(metric), op, value, _known_split(split, text))

    @classmethod
    def fail_under(cls, text: str) -> Gate:
        """``--llmeval-fail-under exact_match=0.3``: a floor for scores, a ceiling for costs.

        A full gate (``inference_runtime <= 2``) is accepted as well.
        """
        match = _FAIL_UNDER.match(text)
        if not match:
            return cls.parse(text)
        metric, split, bound = match.groups()
        try:
            value = float(bound)
        except ValueError:
            raise ConfigError(f"gate {text!r}: {bound!r} is not a number", field="gates") from None
        metric = _unfiltered(metric)
        return cls(metric, "<=" if lower_is_better(metric) else ">=", value, _known_split(split, text))

    def check(self, stats: list[Stat]) -> str | None:
        """None when the gate holds, else a message naming metric, value and bound."""
        stat = pick_stat(stats, self.metric, self.split)
        on_other_splits = sorted({str(s.name.split) for s in stats if s.name.name == self.metric} - {self.split})
        if (stat is None or stat.mean is None) and self.split is not None and on_other_splits:
            return (f"gate {self}: metric {self.metric!r} was not computed on split {self.split!r} "
                    f"(only on: {', '.join(on_other_splits)})")
        if stat is None or stat.mean is None:
            available = sorted({s.name.name for s in stats})
            return f"gate {self}: metric {self.metric!r} was not computed (available: {', '.join(available)})"
        if _OPS[self.op](stat.mean, self.bound):
            return None
        return (f"gate failed: {self.metric} = {stat.mean:.4f} on split {stat.name.split} "
                f"(n={stat.count}), required {self.op} {self.bound:g}")

    def __str__(self) -> str:
        split = f"@{self.split}" if self.split else ""
        return f"{self.metric}{split} {self.op} {self.bound:g}"


def _unfiltered(metric: str) -> str:
    """lm-eval's ``acc,none`` is our ``acc``: a stat names a filter only when it is not ``none``."""
    return metric.removesuffix(",none")


def _known_split(split: str | None, text: str) -> str | None:
    if split is None or split in SPLITS:
        return split
    close = difflib.get_close_matches(split, SPLITS, n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    raise ConfigError(f"gate {text!r}: unknown split {split!r} (splits are {', '.join(SPLITS)}){hint}",
                      field="gates")


def pick_stat(stats: list[Stat], metric: str, split: str | None = None) -> Stat | None:
    """The unperturbed stat for ``metric`` on ``split``; by default test, then valid, then any."""
    candidates = [s for s in stats if s.name.name == metric and s.name.perturbation is None]
    if split is not None:
        return next((s for s in candidates if s.name.split == split), None)
    for preferred in ("test", "valid"):
        for stat in candidates:
            if stat.name.split == preferred:
                return stat
    return candidates[0] if candidates else None
