"""NarrativeQA (Kočiský et al. 2018): questions about books and films, answered from a summary.

HELM's setting is the summaries-only one: the passage is the Wikipedia summary of the story
(``third_party/wikipedia/summaries.csv``), the question one of the story's questions
(``qaps.csv``) and both of its human answers are references. A story has many questions;
HELM keeps one of each story, drawn by one ``random.Random(0)`` over the splits in the order
train, valid, test and the stories in the order of ``qaps.csv``, so the same one is kept here.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.runspec import Description, RunSpec, helm_basic_metric_specs, run_spec_function
from pytest_llmeval.scenarios.data import DataArchive, DataLocator
from pytest_llmeval.scenarios.generation_adapter import generation_adapter
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

# The repository's archive unpacks to narrativeqa-master/; the mirror holds it as narrative_qa/.
ARCHIVE = DataArchive(url="https://github.com/deepmind/narrativeqa/archive/master.zip", local_root="narrative_qa",
                      member_root="narrativeqa-master")
SUMMARIES = "narrative_qa/third_party/wikipedia/summaries.csv"
QUESTIONS = "narrative_qa/qaps.csv"
SPLITS = (TRAIN_SPLIT, VALID_SPLIT, TEST_SPLIT)  # HELM's ALL_SPLITS; the files' "set" column uses the same names
SEED = 0  # HELM's random.seed(0) before the first split


def read_rows(path: Path, columns: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """``(row number, row)`` of a CSV file with a header, each holding ``columns``.

    Read as HELM reads it: UTF-8 with universal newlines, so a ``\\r\\n`` inside a quoted
    summary becomes ``\\n`` in both tools' prompts.
    """
    with path.open(encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise ConfigError(f"the header lacks column(s) {', '.join(missing)} (it has: "
                              f"{', '.join(reader.fieldnames or [])})", file=path, field=missing[0])
        for number, row in enumerate(reader, 1):
            for column in columns:
                if row.get(column) is None:
                    raise ConfigError(f"the row has no {column!r} value (too few columns)", file=path,
                                      entry=f"row {number}", field=column)
            yield number, row


@dataclass
class NarrativeQAScenario(Scenario):
    """One question per story, with its summary as the passage, in train, valid and test."""

    locator: DataLocator

    name = "narrative_qa"
    description = "Question answering using summaries of books and movie scripts (NarrativeQA)"
    tags = ("question_answering",)

    def get_instances(self) -> list[Instance]:
        summaries_file = self.locator.locate(SUMMARIES, ARCHIVE)
        questions_file = self.locator.locate(QUESTIONS, ARCHIVE)
        rng = random.Random(SEED)
        instances: list[Instance] = []
        for split in SPLITS:
            instances += self._split(summaries_file, questions_file, split, rng)
        return with_ids(instances)

    @staticmethod
    def _split(summaries_file: Path, questions_file: Path, split: str, rng: random.Random) -> list[Instance]:
        summaries = {row["document_id"]: row["summary"]
                     for _, row in read_rows(summaries_file, ("document_id", "set", "summary")) if row["set"] == split}
        questions: dict[str, list[tuple[int, dict[str, str]]]] = {}
        for number, row in read_rows(questions_file, ("document_id", "set", "question", "answer1", "answer2")):
            if row["set"] == split:
                questions.setdefault(row["document_id"], []).append((number, row))
        instances = []
        for document, rows in questions.items():
            number, row = rng.choice(rows)
            entry = f"row {number} (document_id {document})"
            if document not in summaries:
                raise ConfigError(f"no summary of this story in {summaries_file} (set {split!r})",
                                  file=questions_file, entry=entry, field="document_id")
            question = row["question"].strip()
            if not question:
                raise ConfigError("the question is empty", file=questions_file, entry=entry, field="question")
            if not question.endswith("?"):
                question += "?"
            # The answers are kept as they are; HELM strips only the summary and the question.
            references = (Reference(row["answer1"], (CORRECT_TAG,)), Reference(row["answer2"], (CORRECT_TAG,)))
            instances.append(Instance(input=f"{summaries[document].strip()}\nQuestion: {question}",
                                      references=references, split=split))
        return instances


METRICS = ["exact_match", "quasi_exact_match", "f1_score", "rouge_l", "bleu_1", "bleu_4"]


@run_spec_function("narrative_qa")
def narrative_qa_spec(description: Description) -> RunSpec:
    """HELM's ``narrative_qa``: ``Passage:``/``Answer:`` blocks, 5 examples, up to 100 tokens on one line."""
    if description.args:
        raise ConfigError(f"unknown argument(s) {', '.join(k for k, _ in description.args)} in {description}; "
                          f"narrative_qa takes none", field=description.args[0][0])
    adapter = generation_adapter(input_noun="Passage", output_noun="Answer", max_train_instances=5, max_tokens=100,
                                 stop_sequences=("\n",))
    return RunSpec(
        name="narrative_qa", scenario_class=NarrativeQAScenario, scenario_args={}, adapter_spec=adapter,
        metrics=list(METRICS), groups=["narrative_qa"], main_metric="f1_score",
        helm_scenario_spec={"class_name": "helm.benchmark.scenarios.narrativeqa_scenario.NarrativeQAScenario",
                            "args": {}},
        helm_metric_specs=helm_basic_metric_specs(list(METRICS)),
    )
