"""HELM's ``commonsense`` run entries: OpenBookQA, HellaSwag, CommonsenseQA, PIQA and SIQA as
multiple-choice questions, read from the files helm-run downloads and shaped as its scenarios
shape them (``helm/benchmark/scenarios/commonsense_scenario.py``).

OpenBookQA (HELM Lite's entry) evaluates ``Data/Main/test.jsonl`` of the 2018 release, with
examples from ``Data/Main/train.jsonl``: the question stem alone (the Main files carry no
science fact), the four choices in file order. The other four evaluate their published
validation files (their test labels are not public).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.runspec import (
    Description,
    RunSpec,
    helm_basic_metric_specs,
    multiple_choice_joint,
    reject_unknown_arguments,
    run_spec_function,
)
from pytest_llmeval.scenarios.choice_rows import choice_instance, get, label_lines, lettered_choices, texts
from pytest_llmeval.scenarios.data import DataLocator, DataSource
from pytest_llmeval.scenarios.jsonl import read_jsonl
from pytest_llmeval.scenarios.scenario import TEST_SPLIT, TRAIN_SPLIT, VALID_SPLIT, Instance, Scenario, with_ids

# HELM's file split names -> its splits.
SPLITS = {"train": TRAIN_SPLIT, "val": VALID_SPLIT, "test": TEST_SPLIT}
OPENBOOKQA_ZIP = "https://ai2-public-datasets.s3.amazonaws.com/open-book-qa/OpenBookQA-V1-Sep2018.zip"
OPENBOOKQA_ROOT = "OpenBookQA-V1-Sep2018"
SIQA_ZIP = "https://storage.googleapis.com/ai2-mosaic/public/socialiqa/socialiqa-train-dev.zip"
Row = tuple[int, dict[str, Any]]


def _archive_member(url: str, member: str, scenario: str) -> DataSource:
    """A file inside a zip; the mirror holds it at ``<scenario>/<member>``."""
    return DataSource(uri=url, member=member, mirror_path=f"{scenario}/{member}")


@dataclass
class CommonsenseScenario(Scenario):
    """One data set's splits, in HELM's order (train first), numbered ``id0``, ``id1``, ..."""

    locator: DataLocator
    file_splits: ClassVar[tuple[str, ...]] = ("train", "val")
    tags = ("knowledge", "multiple_choice")

    def get_instances(self) -> list[Instance]:
        return with_ids([instance for split in self.file_splits for instance in self.read(split)])

    def read(self, split: str) -> list[Instance]:
        raise NotImplementedError

    def _rows(self, source: DataSource) -> tuple[list[Row], str]:
        data = self.locator.fetch(source, self.name)
        return read_jsonl(data.content, data.origin), data.origin

    def _rows_with_labels(self, rows: DataSource, labels: DataSource) -> tuple[list[Row], list[int], str]:
        """PIQA's and SIQA's answers sit in a ``-labels.lst`` beside the questions, line for line."""
        items, origin = self._rows(rows)
        data = self.locator.fetch(labels, self.name)
        numbers = label_lines(data.content, data.origin)
        if len(numbers) != len(items):
            raise ConfigError(f"{len(numbers)} labels for {len(items)} questions in {origin}", file=data.origin)
        return items, [label for _, label in numbers], origin


class OpenBookQAScenario(CommonsenseScenario):
    name = "openbookqa"
    description = "Benchmark from https://aclanthology.org/D18-1260.pdf."
    file_splits = ("train", "test")

    def read(self, split: str) -> list[Instance]:
        member = f"{OPENBOOKQA_ROOT}/Data/Main/{split}.jsonl"
        rows, origin = self._rows(_archive_member(OPENBOOKQA_ZIP, member, self.name))
        return [_stem_and_choices(row, 4, SPLITS[split], origin, line) for line, row in rows]


class CommonSenseQAScenario(CommonsenseScenario):
    name = "commonsenseqa"
    description = "Benchmark from https://arxiv.org/pdf/1811.00937.pdf."

    def read(self, split: str) -> list[Instance]:
        file = {"train": "train", "val": "dev"}[split]
        source = DataSource(uri=f"https://s3.amazonaws.com/commensenseqa/{file}_rand_split.jsonl",
                            mirror_path=f"{self.name}/{file}_rand_split.jsonl")
        rows, origin = self._rows(source)
        return [_stem_and_choices(row, 5, SPLITS[split], origin, line) for line, row in rows]


class HellaSwagScenario(CommonsenseScenario):
    name = "hellaswag"
    description = "Benchmark from https://arxiv.org/pdf/1905.07830.pdf."

    def read(self, split: str) -> list[Instance]:
        source = DataSource(uri=f"https://raw.githubusercontent.com/rowanz/hellaswag/master/data/hellaswag_{split}.jsonl",
                            mirror_path=f"{self.name}/hellaswag_{split}.jsonl")
        rows, origin = self._rows(source)
        instances = []
        for line, row in rows:
            ctx_b = get(row, "ctx_b", str, origin, line)
            ctx_b = ctx_b[0].upper() + ctx_b[1:] if ctx_b else ""  # HELM capitalises the second part
            activity, ctx_a = get(row, "activity_label", str, origin, line), get(row, "ctx_a", str, origin, line)
            answers = texts(get(row, "endings", list, origin, line), 4, origin, line, "endings")
            correct = _label(row, "label", 0, 4, origin, line)
            instances.append(choice_instance(f"{activity}: {ctx_a} {ctx_b}", answers, correct, SPLITS[split]))
        return instances


class PiqaScenario(CommonsenseScenario):
    name = "piqa"
    description = "Benchmark from https://arxiv.org/pdf/1911.11641.pdf."

    def read(self, split: str) -> list[Instance]:
        file = {"train": "train", "val": "valid"}[split]
        base = "https://yonatanbisk.com/piqa/data"
        items, labels, origin = self._rows_with_labels(
            DataSource(uri=f"{base}/{file}.jsonl", mirror_path=f"{self.name}/{file}.jsonl"),
            DataSource(uri=f"{base}/{file}-labels.lst", mirror_path=f"{self.name}/{file}-labels.lst"))
        instances = []
        for (line, row), label in zip(items, labels):
            if len(row) != 3:  # HELM asserts goal, sol1 and sol2 and nothing else
                raise ConfigError(f"expected the fields goal, sol1, sol2, got {', '.join(row)}", file=origin,
                                  entry=f"line {line}")
            answers = [get(row, "sol1", str, origin, line), get(row, "sol2", str, origin, line)]
            instances.append(choice_instance(get(row, "goal", str, origin, line), answers,
                                             _checked_label(label, 0, 2, origin, line), SPLITS[split]))
        return instances


class SiqaScenario(CommonsenseScenario):
    name = "siqa"
    description = "Benchmark from https://arxiv.org/pdf/1904.09728.pdf."

    def read(self, split: str) -> list[Instance]:
        file = {"train": "train", "val": "dev"}[split]
        items, labels, origin = self._rows_with_labels(
            _archive_member(SIQA_ZIP, f"socialiqa-train-dev/{file}.jsonl", self.name),
            _archive_member(SIQA_ZIP, f"socialiqa-train-dev/{file}-labels.lst", self.name))
        instances = []
        for (line, row), label in zip(items, labels):
            if len(row) != 5:  # HELM asserts context, question, answerA, answerB, answerC
                raise ConfigError(f"expected the fields context, question, answerA, answerB, answerC, got "
                                  f"{', '.join(row)}", file=origin, entry=f"line {line}")
            question = f"{get(row, 'context', str, origin, line)} {get(row, 'question', str, origin, line)}"
            answers = [get(row, f"answer{letter}", str, origin, line) for letter in "ABC"]
            # SIQA's labels count from 1.
            instances.append(choice_instance(question, answers, _checked_label(label - 1, 0, 3, origin, line),
                                             SPLITS[split]))
        return instances


def _stem_and_choices(row: dict[str, Any], count: int, split: str, origin: str, line: int) -> Instance:
    """OpenBookQA's and CommonsenseQA's layout: ``question.stem``, ``question.choices``, ``answerKey``."""
    question = get(row, "question", dict, origin, line)
    stem = get(question, "stem", str, origin, line, field="question.stem")
    answers, correct = lettered_choices(question, get(row, "answerKey", str, origin, line), count, origin, line)
    return choice_instance(stem, answers, correct, split)


def _label(row: dict[str, Any], key: str, low: int, high: int, origin: str, line: int) -> int:
    return _checked_label(get(row, key, int, origin, line), low, high, origin, line, key)


def _checked_label(label: int, low: int, high: int, origin: str, line: int, field: str = "label") -> int:
    if not low <= label < high:
        raise ConfigError(f"the answer index should be in {low}..{high - 1}, got {label}", file=origin,
                          entry=f"line {line}", field=field)
    return label


DATASETS: dict[str, type[CommonsenseScenario]] = {
    cls.name: cls for cls in (HellaSwagScenario, OpenBookQAScenario, CommonSenseQAScenario, SiqaScenario, PiqaScenario)
}
# HELM's class names (OpenBookQA's has no "Scenario" suffix), for run_spec.json.
HELM_CLASSES = {"hellaswag": "HellaSwagScenario", "openbookqa": "OpenBookQA", "commonsenseqa": "CommonSenseQAScenario",
                "siqa": "SiqaScenario", "piqa": "PiqaScenario"}
METRICS = ["exact_match", "quasi_exact_match", "prefix_exact_match", "quasi_prefix_exact_match"]


@run_spec_function("commonsense")
def commonsense_spec(description: Description) -> RunSpec:
    """HELM's ``get_commonsense_spec``: the joint multiple-choice prompt about common sense."""
    args = reject_unknown_arguments(description, ("dataset", "method"))
    dataset = args.get("dataset")
    if dataset not in DATASETS:
        raise ConfigError(f"dataset={dataset!r} in {description}: use one of {', '.join(DATASETS)}", field="dataset")
    method = args.get("method")
    if method != "multiple_choice_joint":
        raise ConfigError(f"method={method!r} in {description}: commonsense supports multiple_choice_joint "
                          f"(give it as HELM's run entries do)", field="method")
    adapter = multiple_choice_joint("The following are multiple choice questions (with answers) about common sense.")
    return RunSpec(
        name=f"commonsense:dataset={dataset},method={method}", scenario_class=DATASETS[dataset],
        scenario_args={}, adapter_spec=adapter, metrics=list(METRICS), groups=[dataset],
        helm_scenario_spec={"class_name": f"helm.benchmark.scenarios.commonsense_scenario.{HELM_CLASSES[dataset]}",
                            "args": {}},
        helm_metric_specs=helm_basic_metric_specs(list(METRICS)),
    )
