"""MedQA (Jin et al. 2020): four-option questions from US medical board exams, read as HELM's
``MedQAScenario`` reads them.

HELM unpacks the MedQA release (a zip on Google Drive) and reads
``data_clean/questions/US/4_options/phrases_no_exclude_{train,dev,test}.jsonl`` as its train,
valid and test splits. Each row's ``options`` (``{"A": ..., "D": ...}``) become the references
in file order; the one whose letter is ``answer_idx`` is correct. A trailing ``"`` and blanks
are cut from each option (some options end in ``\\n"`` in the release).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.runspec import (
    Description,
    RunSpec,
    helm_basic_metric_specs,
    multiple_choice_joint,
    run_spec_function,
)
from pytest_llmeval.scenarios.choice_rows import get
from pytest_llmeval.scenarios.data import DataLocator, DataSource
from pytest_llmeval.scenarios.jsonl import read_jsonl
from pytest_llmeval.scenarios.scenario import (
    CORRECT_TAG,
    TEST_SPLIT,
    TRAIN_SPLIT,
    VALID_SPLIT,
    Instance,
    Reference,
    Scenario,
    with_ids,
)

DOWNLOAD_URL = "https://drive.google.com/uc?export=download&id=1ImYUSLk9JbgHXOemfvyiDiirluZHPeQw&confirm=t"
FOLDER = "data_clean/questions/US/4_options"
# HELM's splits, in its order, and the file each is read from.
FILES = ((TRAIN_SPLIT, "train"), (VALID_SPLIT, "dev"), (TEST_SPLIT, "test"))


def source(file: str) -> DataSource:
    """One split's file inside the release zip; the mirror holds it at ``med_qa/data_clean/...``."""
    member = f"{FOLDER}/phrases_no_exclude_{file}.jsonl"
    return DataSource(uri=DOWNLOAD_URL, member=member, mirror_path=f"med_qa/{member}")


def med_qa_instance(row: dict[str, Any], split: str, origin: str, line: int) -> Instance:
    question = get(row, "question", str, origin, line)
    options = get(row, "options", dict, origin, line)
    if len(options) != 4:
        raise ConfigError(f"expected 4 answer choices, got {len(options)}", file=origin, entry=f"line {line}",
                          field="options")
    answer = get(row, "answer_idx", str, origin, line)
    if answer not in options:
        raise ConfigError(f"answer_idx {answer!r} is not one of the options {', '.join(options)}", file=origin,
                          entry=f"line {line}", field="answer_idx")
    references = []
    for letter, text in options.items():
        if not isinstance(text, str):
            raise ConfigError(f"option {letter} should be text, got {text!r:.60}", file=origin,
                              entry=f"line {line}", field=f"options.{letter}")
        references.append(Reference(text.rstrip('"').rstrip(), (CORRECT_TAG,) if letter == answer else ()))
    return Instance(input=question, references=tuple(references), split=split)


@dataclass
class MedQAScenario(Scenario):
    """The US four-option questions: train (examples), dev (valid) and test, numbered in that order."""

    locator: DataLocator

    name = "med_qa"
    description = "An open domain question answering (QA) dataset collected from professional medical board exams."
    tags = ("question_answering", "biomedical")

    def get_instances(self) -> list[Instance]:
        instances = []
        for split, file in FILES:
            data = self.locator.fetch(source(file), self.name)
            instances += [med_qa_instance(row, split, data.origin, line)
                          for line, row in read_jsonl(data.content, data.origin)]
        return with_ids(instances)


METRICS = ["exact_match", "quasi_exact_match", "prefix_exact_match", "quasi_prefix_exact_match"]


@run_spec_function("med_qa")
def med_qa_spec(description: Description) -> RunSpec:
    """HELM's ``get_med_qa_spec``: the joint multiple-choice prompt about medicine."""
    if description.args:
        key = description.args[0][0]
        raise ConfigError(f"unknown argument {key!r} in {description}; med_qa takes none", field=key)
    adapter = multiple_choice_joint("The following are multiple choice questions (with answers) about medicine.")
    return RunSpec(
        name="med_qa", scenario_class=MedQAScenario, scenario_args={}, adapter_spec=adapter,
        metrics=list(METRICS), groups=["med_qa"], main_metric="quasi_exact_match",
        helm_scenario_spec={"class_name": "helm.benchmark.scenarios.med_qa_scenario.MedQAScenario", "args": {}},
        helm_metric_specs=helm_basic_metric_specs(list(METRICS)),
    )
