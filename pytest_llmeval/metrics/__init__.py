"""Metrics and HELM's Stat aggregation."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from pytest_llmeval.metrics.basic import (
    EXACT_MATCHERS,
    general_stats,
    generation_stats,
    language_modeling_stats,
    normalize_text,
    prediction,
    reference_stats,
)
from pytest_llmeval.metrics.generation import GENERATION_MATCHERS
from pytest_llmeval.metrics.math_equiv import MATH_MATCHERS
from pytest_llmeval.metrics.open_ended import OPEN_ENDED_MATCHERS
from pytest_llmeval.metrics.stat import MetricName, Stat, aggregate
from pytest_llmeval.metrics.trials import Aggregates, aggregate_trials, instances_per_split

# The built-in reference metrics by name (read-only); a session's metrics registry starts with these.
MATCHERS: Mapping[str, Callable[[str, str], float]] = MappingProxyType(
    {**EXACT_MATCHERS, **GENERATION_MATCHERS, **OPEN_ENDED_MATCHERS, **MATH_MATCHERS}
)

__all__ = [
    "MATCHERS", "Aggregates", "MetricName", "Stat", "aggregate", "aggregate_trials", "general_stats",
    "generation_stats", "instances_per_split", "language_modeling_stats", "normalize_text", "prediction",
    "reference_stats",
]
