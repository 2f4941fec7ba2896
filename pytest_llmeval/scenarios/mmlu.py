"""MMLU (Hendrycks et al.): four-option questions in 57 subjects, read as HELM reads them."""

from __future__ import annotations

import csv
from dataclasses import dataclass

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.scenarios.data import DataArchive, DataLocator
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

SUBJECTS = (
    "abstract_algebra", "anatomy", "astronomy", "business_ethics", "clinical_knowledge", "college_biology",
    "college_chemistry", "college_computer_science", "college_mathematics", "college_medicine",
    "college_physics", "computer_security", "conceptual_physics", "econometrics", "electrical_engineering",
    "elementary_mathematics", "formal_logic", "global_facts", "high_school_biology", "high_school_chemistry",
    "high_school_computer_science", "high_school_european_history", "high_school_geography",
    "high_school_government_and_politics", "high_school_macroeconomics", "high_school_mathematics",
    "high_school_microeconomics", "high_school_physics", "high_school_psychology", "high_school_statistics",
    "high_school_us_history", "high_school_world_history", "human_aging", "human_sexuality", "international_law",
    "jurisprudence", "logical_fallacies", "machine_learning", "management", "marketing", "medical_genetics",
    "miscellaneous", "moral_disputes", "moral_scenarios", "nutrition", "philosophy", "prehistory",
    "professional_accounting", "professional_law", "professional_medicine", "professional_psychology",
    "public_relations", "security_studies", "sociology", "us_foreign_policy", "virology", "world_religions",
)

ARCHIVE = DataArchive(url="https://people.eecs.berkeley.edu/~hendrycks/data.tar", local_root="mmlu",
                      member_root="data")
# File folder -> HELM split; ``dev`` supplies the in-context examples.
FILE_SPLITS = (("dev", TRAIN_SPLIT), ("val", VALID_SPLIT), ("test", TEST_SPLIT))


@dataclass
class MMLUScenario(Scenario):
    """One subject; ``dev`` rows are training examples, ``val`` and ``test`` are evaluated."""

    subject: str
    locator: DataLocator

    name = "mmlu"
    description = "Massive Multitask Language Understanding: multiple-choice questions in 57 subjects"
    tags = ("knowledge", "multiple_choice")

    def __post_init__(self) -> None:
        if self.subject not in SUBJECTS:
            raise ConfigError(f"unknown MMLU subject {self.subject!r}; use one of: {', '.join(SUBJECTS)}",
                              field="subject")

    def get_instances(self) -> list[Instance]:
        instances: list[Instance] = []
        for folder, split in FILE_SPLITS:
            path = self.locator.locate(f"mmlu/{folder}/{self.subject}_{folder}.csv", ARCHIVE)
            # Universal newlines, as HELM reads the files: a "\r\n" inside a quoted question
            # becomes "\n", so prompts match HELM's byte for byte.
            with path.open(encoding="utf-8") as handle:
                for row_number, row in enumerate(csv.reader(handle), 1):
                    if len(row) != 6 or row[5] not in ("A", "B", "C", "D"):
                        raise ConfigError("expected 6 columns (question, A, B, C, D, answer letter)",
                                          file=path, entry=f"row {row_number}")
                    question, *options, answer = row
                    correct_text = options["ABCD".index(answer)]
                    # HELM tags every option whose text equals the correct one (duplicates exist).
                    references = tuple(
                        Reference(option, (CORRECT_TAG,) if option == correct_text else ()) for option in options
                    )
                    instances.append(Instance(input=question, references=references, split=split))
        return with_ids(instances)
