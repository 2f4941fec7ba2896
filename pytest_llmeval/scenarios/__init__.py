"""Scenarios: where instances come from."""

from __future__ import annotations

from pytest_llmeval.scenarios.data import DataLocator
from pytest_llmeval.scenarios.mmlu import MMLUScenario
from pytest_llmeval.scenarios.scenario import (
    CORRECT_TAG,
    EVAL_SPLITS,
    TEST_SPLIT,
    TRAIN_SPLIT,
    VALID_SPLIT,
    Instance,
    Reference,
    Scenario,
)

__all__ = [
    "CORRECT_TAG", "EVAL_SPLITS", "TEST_SPLIT", "TRAIN_SPLIT", "VALID_SPLIT", "DataLocator", "Instance",
    "MMLUScenario", "Reference", "Scenario",
]
