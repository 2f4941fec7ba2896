"""Metrics and HELM's Stat aggregation."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from pytest_llmeval.metrics.basic import EXACT_MATCHERS, efficiency_stats, normalize_text, prediction, reference_stats
from pytest_llmeval.metrics.generation import GENERATION_MATCHERS
from pytest_llmeval.metrics.stat import MetricName, Stat, aggregate

# The built-in reference metrics by name (read-only); a session's metrics registry starts with these.
MATCHERS: Mapping[str, Callable[[str, str], float]] = MappingProxyType({**EXACT_MATCHERS, **GENERATION_MATCHERS})

__all__ = [
    "MATCHERS", "MetricName", "Stat", "aggregate", "efficiency_stats", "normalize_text", "prediction",
    "reference_stats",
]
