"""BoolQ: HELM's passage/question input and Yes/No references from the real dev file, where the
examples come from, bad rows, the run spec and the prompt."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pytest_llmeval.adapters.in_context import adapt
from pytest_llmeval.errors import ConfigError, DataNotFoundError
from pytest_llmeval.runspec import Description, build_run_spec
from pytest_llmeval.scenarios.boolq import BoolQScenario, passage_and_question
from pytest_llmeval.scenarios.data import DATA_DIR_ENV, DataLocator
from pytest_llmeval.scenarios.examples import HELDOUT_EXAMPLES

DATA_DIR = Path(os.environ.get(DATA_DIR_ENV) or Path(__file__).resolve().parents[2] / "shared" / "data")
DEV_FILE = DATA_DIR / "boolq" / "dev.jsonl"
needs_data = pytest.mark.skipif(not DEV_FILE.is_file(), reason=f"no BoolQ mirror at {DATA_DIR}")

EPSOM = {"question": "can you use oyster card at epsom station", "answer": True,
         "passage": "Epsom railway station serves the town of Epsom in Surrey."}
TEA = {"question": "is tea older than coffee", "answer": False, "passage": "Tea was first drunk in China."}


def mirror_with(tmp_path: Path, **files: list[dict[str, object]] | str) -> DataLocator:
    folder = tmp_path / "mirror" / "boolq"
    folder.mkdir(parents=True)
    for name, rows in files.items():
        text = rows if isinstance(rows, str) else "".join(json.dumps(r) + "\n" for r in rows)
        (folder / f"{name}.jsonl").write_text(text, encoding="utf-8")
    return DataLocator(mirror=tmp_path / "mirror", cache=tmp_path / "cache")


def test_question_is_capitalised_with_a_question_mark() -> None:
    assert passage_and_question("P.", " can you use oyster card at epsom station ") == (
        "P.\nQuestion: Can you use oyster card at epsom station?")
    assert passage_and_question("P.", "is it?") == "P.\nQuestion: Is it?"


@needs_data
def test_dev_file_is_helms_valid_split() -> None:
    rows = [json.loads(line) for line in DEV_FILE.read_text(encoding="utf-8").splitlines()]
    instances = BoolQScenario(DataLocator(mirror=DATA_DIR, cache=None), examples_from="heldout").get_instances()
    assert len(instances) == len(rows) == 3270
    assert [i.split for i in instances] == ["train"] * HELDOUT_EXAMPLES + ["valid"] * (3270 - HELDOUT_EXAMPLES)
    assert [i.id for i in instances] == [f"id{n}" for n in range(3270)]
    for row, instance in zip(rows, instances):
        [reference] = instance.references
        assert reference.is_correct and reference.output == ("Yes" if row["answer"] else "No")
        assert instance.input.startswith(row["passage"] + "\nQuestion: ") and instance.input.endswith("?")
    first = instances[0]
    assert first.input.endswith("\nQuestion: Does ethanol take more energy make that produces?")
    assert first.references[0].output == "No"


def test_train_file_rows_are_the_examples(tmp_path: Path) -> None:
    locator = mirror_with(tmp_path, train=[EPSOM, TEA], dev=[TEA])
    assert [(i.split, i.id) for i in BoolQScenario(locator).get_instances()] == [
        ("train", "id0"), ("train", "id1"), ("valid", "id2")]


def test_missing_train_file_says_how_to_run_without_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMEVAL_OFFLINE", "1")
    locator = mirror_with(tmp_path, dev=[TEA])
    with pytest.raises(DataNotFoundError, match=r"boolq/train.jsonl.*boolq:examples_from=heldout"):
        BoolQScenario(locator).get_instances()


@pytest.mark.parametrize(("row", "field", "says"), [
    ({"question": "q", "passage": "p", "answer": "yes"}, "answer", "should be bool"),
    ({"question": "q", "passage": "p"}, "answer", "'answer' is missing"),
    ({"question": "q", "passage": " ", "answer": True}, "passage", "non-empty text"),
])
def test_bad_rows_name_file_line_and_field(tmp_path: Path, row: dict[str, object], field: str, says: str) -> None:
    locator = mirror_with(tmp_path, dev=[TEA, row])
    with pytest.raises(ConfigError) as excinfo:
        BoolQScenario(locator, examples_from="heldout").get_instances()
    error = excinfo.value
    assert error.file is not None and error.file.endswith("boolq/dev.jsonl")
    assert (error.entry, error.field) == ("line 2", field)
    assert says in error.message


def test_run_spec_is_helms() -> None:
    spec = build_run_spec(Description.parse("boolq"), "local/m", "org/m")
    adapter = spec.adapter_spec
    assert (adapter.method, adapter.input_prefix, adapter.output_prefix, adapter.output_suffix,
            adapter.instance_prefix) == ("generation", "Passage: ", "Answer: ", "\n", "\n")
    assert (adapter.max_train_instances, adapter.max_tokens, adapter.stop_sequences, adapter.temperature) == (
        5, 5, ("\n",), 0.0)
    assert spec.metrics == ["exact_match", "quasi_exact_match", "prefix_exact_match", "quasi_prefix_exact_match"]
    assert spec.main_metric == "exact_match" and spec.name == "boolq:model=org_m"
    data = spec.to_json()
    assert data["scenario_spec"] == {"class_name": "helm.benchmark.scenarios.boolq_scenario.BoolQScenario",
                                     "args": {"only_contrast": False}}
    # HELM's boolq lists its bias metrics too (helm-run computes them when it re-runs the file).
    assert [m["class_name"].rpartition(".")[2] for m in data["metric_specs"]] == [
        "BasicGenerationMetric", "BasicReferenceMetric", "InstancesPerSplitMetric"] + ["BiasMetric"] * 6


def test_contrast_sets_are_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="contrast sets are not supported") as excinfo:
        build_run_spec(Description.parse("boolq:only_contrast=True"), "local/m", "org/m")
    assert excinfo.value.field == "only_contrast"


def test_prompt_is_helms_passage_format(tmp_path: Path) -> None:
    locator = mirror_with(tmp_path, train=[EPSOM], dev=[TEA])
    spec = build_run_spec(Description.parse("boolq"), "local/m", "org/m")
    [state] = adapt(spec.adapter_spec, BoolQScenario(locator).get_instances())
    assert state.request.prompt == (
        "Passage: Epsom railway station serves the town of Epsom in Surrey.\n"
        "Question: Can you use oyster card at epsom station?\n"
        "Answer: Yes\n"
        "\n"
        "Passage: Tea was first drunk in China.\n"
        "Question: Is tea older than coffee?\n"
        "Answer:")
