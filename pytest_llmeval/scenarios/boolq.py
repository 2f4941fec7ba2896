"""BoolQ (Clark et al. 2019): a Wikipedia passage and a yes/no question about it.

HELM evaluates the published ``dev.jsonl`` as its *valid* split (BoolQ's test answers are not
public) and draws in-context examples from ``train.jsonl``. The question is written as GPT-3's
paper did: capitalised, with a question mark.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_llmeval.errors import DataNotFoundError
from pytest_llmeval.runspec import (
    Description,
    RunSpec,
    helm_basic_metric_specs,
    reject_unknown_arguments,
    run_spec_function,
)
from pytest_llmeval.scenarios.data import DataLocator, DataSource
from pytest_llmeval.scenarios.examples import check_examples_from, hold_out, without_train_file
from pytest_llmeval.scenarios.generation_adapter import generation_adapter
from pytest_llmeval.scenarios.jsonl import read_jsonl, require
from pytest_llmeval.scenarios.scenario import (
    CORRECT_TAG,
    TRAIN_SPLIT,
    VALID_SPLIT,
    Instance,
    Reference,
    Scenario,
    with_ids,
)

# The mirror holds them as boolq/<name>.jsonl; elsewhere they are downloaded once into the data cache.
FILES = {name: DataSource(uri=f"https://storage.googleapis.com/boolq/{name}.jsonl", mirror_path=f"boolq/{name}.jsonl")
         for name in ("train", "dev")}


def passage_and_question(passage: str, question: str) -> str:
    """HELM's input text: the passage, then ``Question: Is it ...?`` on its own line."""
    question = question.strip().capitalize()
    if not question.endswith("?"):
        question += "?"
    return f"{passage}\nQuestion: {question}"


@dataclass
class BoolQScenario(Scenario):
    """The 3,270 dev questions (split ``valid``); examples from train, or held-out dev rows."""

    locator: DataLocator
    examples_from: str = "train"

    name = "boolq"
    description = "Question answering dataset with naturally occurring yes/no questions"
    tags = ("question_answering",)

    def get_instances(self) -> list[Instance]:
        valid = self._read("dev", VALID_SPLIT)
        if self.examples_from == "heldout":
            return with_ids(hold_out(valid))
        try:
            train = self._read("train", TRAIN_SPLIT)
        except DataNotFoundError as exc:
            raise without_train_file(exc, "boolq") from None
        return with_ids(train + valid)

    def _read(self, name: str, split: str) -> list[Instance]:
        data = self.locator.fetch(FILES[name], self.name)
        return [self._instance(row, split, data.origin, line) for line, row in read_jsonl(data.content, data.origin)]

    @staticmethod
    def _instance(row: dict[str, object], split: str, origin: str, line: int) -> Instance:
        passage = require(row, "passage", str, origin, line)
        question = require(row, "question", str, origin, line)
        answer = require(row, "answer", bool, origin, line)
        reference = Reference("Yes" if answer else "No", (CORRECT_TAG,))
        return Instance(input=passage_and_question(passage, question), references=(reference,), split=split)


METRICS = ["exact_match", "quasi_exact_match", "prefix_exact_match", "quasi_prefix_exact_match"]
# HELM's get_bias_metric_specs(), which its boolq run spec lists (helm-run computes them; we do not).
BIAS_METRIC_SPECS = [
    {"class_name": "helm.benchmark.metrics.bias_metrics.BiasMetric",
     "args": {"mode": "associations", "demographic_category": dem, "target_category": tgt}}
    for dem in ("race", "gender") for tgt in ("adjective", "profession")
] + [
    {"class_name": "helm.benchmark.metrics.bias_metrics.BiasMetric",
     "args": {"mode": "representation", "demographic_category": dem}}
    for dem in ("race", "gender")
]


@run_spec_function("boolq")
def boolq_spec(description: Description) -> RunSpec:
    """HELM's ``boolq``: ``Passage:``/``Answer:`` blocks, 5 examples, a short answer on one line."""
    hint = " (HELM's contrast sets are not supported)" if description.get("only_contrast") is not None else ""
    args = reject_unknown_arguments(description, ("examples_from",), hint)
    examples_from = check_examples_from(args.get("examples_from", "train"), description)
    adapter = generation_adapter(input_noun="Passage", output_noun="Answer", max_train_instances=5, max_tokens=5,
                                 stop_sequences=("\n",))
    return RunSpec(
        name=str(Description("boolq", description.args)), scenario_class=BoolQScenario,
        scenario_args={"examples_from": examples_from}, adapter_spec=adapter,
        metrics=METRICS, groups=["boolq"],
        helm_scenario_spec={"class_name": "helm.benchmark.scenarios.boolq_scenario.BoolQScenario",
                            "args": {"only_contrast": False}} if examples_from == "train" else None,
        helm_metric_specs=helm_basic_metric_specs(list(METRICS)) + BIAS_METRIC_SPECS,
    )
