"""Where in-context examples come from: HELM's train file, or rows held out of the evaluated file.

HELM samples GSM8K's and BoolQ's examples from their official train files. A machine that can
neither download them nor find them in the data mirror can still run these scenarios with
``examples_from=heldout``: the first rows of the evaluated file become the examples and are not
evaluated. The choice is part of the run name, so runs of the two kinds are never confused.
"""

from __future__ import annotations

import dataclasses

from pytest_llmeval.errors import ConfigError, DataNotFoundError
from pytest_llmeval.scenarios.scenario import TRAIN_SPLIT, Instance

EXAMPLES_FROM = ("train", "heldout")
# Enough for ten trials of five examples; few enough to leave the evaluated set nearly whole.
HELDOUT_EXAMPLES = 50


def check_examples_from(value: str, description: object) -> str:
    if value not in EXAMPLES_FROM:
        raise ConfigError(f"examples_from={value!r} in {description}: use train (HELM's train file) or "
                          f"heldout (the first {HELDOUT_EXAMPLES} rows of the evaluated file)",
                          field="examples_from")
    return value


def hold_out(instances: list[Instance], count: int = HELDOUT_EXAMPLES) -> list[Instance]:
    """The first ``count`` instances become training examples; the rest keep their split."""
    return [dataclasses.replace(i, split=TRAIN_SPLIT) for i in instances[:count]] + instances[count:]


def without_train_file(error: DataNotFoundError, scenario: str) -> DataNotFoundError:
    """The missing-file message, plus the way to run without the train file."""
    return DataNotFoundError(f"{error} Or take the in-context examples from held-out rows of the evaluated "
                             f"file: {scenario}:examples_from=heldout.")
