"""GSM8K (Cobbe et al. 2021): grade-school word problems, answered with a chain of thought.

As HELM does, the worked solution becomes the target with its ``#### 72`` line turned into
``The answer is 72.`` and line breaks turned into spaces, so the in-context examples teach the
model to reason and then state the answer; the last number of the output is what is scored.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_llmeval.errors import ConfigError, DataNotFoundError
from pytest_llmeval.metrics.generation import final_number
from pytest_llmeval.runspec import Description, RunSpec, reject_unknown_arguments, run_spec_function
from pytest_llmeval.scenarios.data import DataLocator, DataSource
from pytest_llmeval.scenarios.examples import check_examples_from, hold_out, without_train_file
from pytest_llmeval.scenarios.generation_adapter import generation_adapter
from pytest_llmeval.scenarios.jsonl import read_jsonl, require
from pytest_llmeval.scenarios.scenario import (
    CORRECT_TAG,
    TEST_SPLIT,
    TRAIN_SPLIT,
    Instance,
    Reference,
    Scenario,
    with_ids,
)

BASE_URL = "https://raw.githubusercontent.com/openai/grade-school-math/master/grade_school_math/data"
# The mirror holds them as gsm8k/<split>.jsonl; elsewhere they are downloaded once into the data cache.
FILES = {split: DataSource(uri=f"{BASE_URL}/{split}.jsonl", mirror_path=f"gsm8k/{split}.jsonl")
         for split in ("train", "test")}
ANSWER_MARK = "####"


def final_answer(solution: str) -> str:
    """The text after the last ``####`` of a GSM8K solution: the answer itself (``1,450,000``)."""
    return solution.rpartition(ANSWER_MARK)[2].strip()


def chain_of_thought_target(solution: str) -> str:
    """HELM's target: ``... 72 clips altogether. The answer is 72.`` on a single line."""
    return solution.replace(ANSWER_MARK, "The answer is").replace("\n", " ") + "."


@dataclass
class GSM8KScenario(Scenario):
    """The 1,319 test problems; examples from the train file, or held-out test rows."""

    locator: DataLocator
    examples_from: str = "train"

    name = "gsm"
    description = "Grade school math word problems (GSM8K), answered with a chain of thought"
    tags = ("reasoning", "math")

    def get_instances(self) -> list[Instance]:
        test = self._read("test", TEST_SPLIT)
        if self.examples_from == "heldout":
            return with_ids(hold_out(test))
        try:
            train = self._read("train", TRAIN_SPLIT)
        except DataNotFoundError as exc:
            raise without_train_file(exc, "gsm") from None
        return with_ids(train + test)

    def _read(self, name: str, split: str) -> list[Instance]:
        data = self.locator.fetch(FILES[name], self.name)
        return [self._instance(row, split, data.origin, line) for line, row in read_jsonl(data.content, data.origin)]

    @staticmethod
    def _instance(row: dict[str, object], split: str, origin: str, line: int) -> Instance:
        question = require(row, "question", str, origin, line)
        solution = require(row, "answer", str, origin, line)
        if ANSWER_MARK not in solution or not final_number(final_answer(solution)):
            raise ConfigError(f"the solution should end with '{ANSWER_MARK} <number>', got "
                              f"{final_answer(solution)[-40:]!r}", file=origin, entry=f"line {line}", field="answer")
        reference = Reference(chain_of_thought_target(solution), (CORRECT_TAG,))
        return Instance(input=question, references=(reference,), split=split)


@run_spec_function("gsm")
def gsm_spec(description: Description) -> RunSpec:
    """HELM's ``gsm``: ``Q:``/``A:`` blocks, 5 examples, up to 400 tokens ending at a blank line."""
    args = reject_unknown_arguments(description, ("examples_from",))
    examples_from = check_examples_from(args.get("examples_from", "train"), description)
    adapter = generation_adapter(input_noun="Q", output_noun="A", max_train_instances=5, max_tokens=400,
                                 stop_sequences=("\n\n",))
    metrics = ["exact_match_indicator", "final_number_exact_match"]
    return RunSpec(
        name=str(Description("gsm", description.args)), scenario_class=GSM8KScenario,
        scenario_args={"examples_from": examples_from}, adapter_spec=adapter,
        metrics=metrics, groups=["gsm"], main_metric="final_number_exact_match",
        # Held-out examples are not HELM's scenario: then run_spec.json names ours.
        helm_scenario_spec={"class_name": "helm.benchmark.scenarios.gsm_scenario.GSM8KScenario", "args": {}}
        if examples_from == "train" else None,
        helm_metric_specs=[
            {"class_name": "helm.benchmark.metrics.basic_metrics.BasicGenerationMetric", "args": {"names": metrics}},
            {"class_name": "helm.benchmark.metrics.basic_metrics.InstancesPerSplitMetric", "args": {}},
        ],
    )
