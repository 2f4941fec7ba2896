"""HELM's commonsense entries: OpenBookQA from its release files (question stem, four choices),
the other four data sets' layouts, bad rows, missing data, the run spec and the prompt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_llmeval.adapters.in_context import adapt
from pytest_llmeval.errors import ConfigError, DataNotFoundError
from pytest_llmeval.runspec import Description, build_run_spec
from pytest_llmeval.scenarios.commonsense import (
    CommonSenseQAScenario,
    HellaSwagScenario,
    OpenBookQAScenario,
    PiqaScenario,
    SiqaScenario,
)
from pytest_llmeval.scenarios.data import DataLocator

SOURCES = Path(__file__).parent / "data" / "helm_sources"
MAIN = SOURCES / "openbookqa" / "OpenBookQA-V1-Sep2018" / "Data" / "Main"
ENTRY = "commonsense:dataset=openbookqa,method=multiple_choice_joint"


def mirror_with(tmp_path: Path, files: dict[str, str]) -> DataLocator:
    for relative, text in files.items():
        path = tmp_path / "mirror" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return DataLocator(mirror=tmp_path / "mirror", cache=tmp_path / "cache")


def obqa(stem: str, texts: list[str], key: str, labels: str = "ABCD") -> dict[str, object]:
    choices = [{"text": t, "label": lab} for t, lab in zip(texts, labels)]
    return {"id": "1", "question": {"stem": stem, "choices": choices}, "answerKey": key}


def lines(*rows: dict[str, object]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def test_openbookqa_reads_main_train_and_test_in_order() -> None:
    rows = [json.loads(line) for name in ("train", "test")
            for line in (MAIN / f"{name}.jsonl").read_text().splitlines()]
    instances = OpenBookQAScenario(DataLocator(mirror=SOURCES, cache=None)).get_instances()
    assert [i.split for i in instances] == ["train"] * 12 + ["test"] * 20
    assert [i.id for i in instances] == [f"id{n}" for n in range(32)]
    for row, instance in zip(rows, instances):
        assert instance.input == row["question"]["stem"]  # the stem alone: no fact in the Main files
        assert [r.output for r in instance.references] == [c["text"] for c in row["question"]["choices"]]
        assert [r.is_correct for r in instance.references] == [c["label"] == row["answerKey"]
                                                               for c in row["question"]["choices"]]


def test_openbookqa_prompt_is_helms_joint_format(tmp_path: Path) -> None:
    main = "openbookqa/OpenBookQA-V1-Sep2018/Data/Main"
    locator = mirror_with(tmp_path, {
        f"{main}/train.jsonl": lines(obqa("Sun is a", ["star", "moon", "rock", "gas"], "A")),
        f"{main}/test.jsonl": lines(obqa("Ice is", ["hot", "cold", "loud", "red"], "B")),
    })
    spec = build_run_spec(Description.parse(ENTRY), "local/m", "org/m")
    [state] = adapt(spec.adapter_spec, OpenBookQAScenario(locator).get_instances())
    assert state.request.prompt == (
        "The following are multiple choice questions (with answers) about common sense.\n\n"
        "Question: Sun is a\nA. star\nB. moon\nC. rock\nD. gas\nAnswer: A\n\n"
        "Question: Ice is\nA. hot\nB. cold\nC. loud\nD. red\nAnswer:")


def test_run_spec_is_helms() -> None:
    spec = build_run_spec(Description.parse(ENTRY), "local/m", "org/m")
    assert spec.name == f"{ENTRY},model=org_m"
    assert spec.groups == ["openbookqa"]
    assert spec.metrics == ["exact_match", "quasi_exact_match", "prefix_exact_match", "quasi_prefix_exact_match"]
    data = spec.to_json()
    assert data["scenario_spec"] == {"class_name": "helm.benchmark.scenarios.commonsense_scenario.OpenBookQA",
                                     "args": {}}
    assert (data["adapter_spec"]["max_tokens"], data["adapter_spec"]["num_outputs"]) == (1, 5)
    assert build_run_spec(Description.parse("commonsense:dataset=piqa,method=multiple_choice_joint"), "local/m",
                          "org/m").to_json()["scenario_spec"]["class_name"].endswith(".PiqaScenario")


@pytest.mark.parametrize(("entry", "field", "says"), [
    ("commonsense:dataset=winogrande,method=multiple_choice_joint", "dataset", "hellaswag, openbookqa"),
    ("commonsense:dataset=openbookqa", "method", "multiple_choice_joint"),
    ("commonsense:dataset=openbookqa,method=multiple_choice_joint,subject=x", "subject", "dataset and method"),
])
def test_bad_arguments_name_the_field(entry: str, field: str, says: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        build_run_spec(Description.parse(entry), "local/m", "org/m")
    assert excinfo.value.field == field and says in excinfo.value.message


def test_hellaswag_joins_activity_and_contexts_capitalising_the_second(tmp_path: Path) -> None:
    row = {"activity_label": "Baking", "ctx_a": "A man mixes flour.", "ctx_b": "then he",
           "endings": ["a", "b", "c", "d"], "label": 2}
    empty = {**row, "ctx_b": "", "label": 0}
    locator = mirror_with(tmp_path, {"hellaswag/hellaswag_train.jsonl": lines(row),
                                     "hellaswag/hellaswag_val.jsonl": lines(empty)})
    train, valid = HellaSwagScenario(locator).get_instances()
    assert (train.input, train.split, [r.is_correct for r in train.references]) == (
        "Baking: A man mixes flour. Then he", "train", [False, False, True, False])
    assert (valid.input, valid.split) == ("Baking: A man mixes flour. ", "valid")


def test_commonsenseqa_has_five_choices_from_the_dev_file(tmp_path: Path) -> None:
    row = obqa("Where are books?", ["library", "sea", "sky", "oven", "moon"], "A", "ABCDE")
    locator = mirror_with(tmp_path, {"commonsenseqa/train_rand_split.jsonl": lines(row),
                                     "commonsenseqa/dev_rand_split.jsonl": lines(row)})
    instances = CommonSenseQAScenario(locator).get_instances()
    assert [(i.split, len(i.references)) for i in instances] == [("train", 5), ("valid", 5)]


def test_piqa_and_siqa_take_their_answers_from_the_labels_files(tmp_path: Path) -> None:
    goal = {"goal": "Open a jar", "sol1": "twist the lid", "sol2": "freeze it"}
    social = {"context": "Tracy gave a gift.", "question": "How does Tracy feel?", "answerA": "kind", "answerB": "sad",
              "answerC": "bored"}
    locator = mirror_with(tmp_path, {
        "piqa/train.jsonl": lines(goal), "piqa/train-labels.lst": "0\n",
        "piqa/valid.jsonl": lines(goal, goal), "piqa/valid-labels.lst": "1\n0\n",
        "siqa/socialiqa-train-dev/train.jsonl": lines(social), "siqa/socialiqa-train-dev/train-labels.lst": "1\n",
        "siqa/socialiqa-train-dev/dev.jsonl": lines(social), "siqa/socialiqa-train-dev/dev-labels.lst": "3\n",
    })
    piqa = PiqaScenario(locator).get_instances()
    assert [[r.is_correct for r in i.references] for i in piqa] == [[True, False], [False, True], [True, False]]
    siqa = SiqaScenario(locator).get_instances()
    assert siqa[0].input == "Tracy gave a gift. How does Tracy feel?"
    assert [[r.is_correct for r in i.references] for i in siqa] == [[True, False, False], [False, False, True]]


@pytest.mark.parametrize(("row", "line", "field", "says"), [
    (obqa("q", ["a", "b", "c", "d"], "C", "ABDC"), "line 2", "question.choices.label", "labelled 'D'"),
    (obqa("q", ["a", "b", "c"], "B"), "line 2", "question.choices", "expected 4 answer choices"),
    (obqa("q", ["a", "b", "c", "d"], "E"), "line 2", "answerKey", "one of A, B, C, D"),
    ({"question": {"choices": []}, "answerKey": "A"}, "line 2", "question.stem", "'question.stem' is missing"),
])
def test_bad_rows_name_file_line_and_field(tmp_path: Path, row: dict[str, object], line: str, field: str,
                                           says: str) -> None:
    good = obqa("q", ["a", "b", "c", "d"], "A")
    locator = mirror_with(tmp_path, {"openbookqa/OpenBookQA-V1-Sep2018/Data/Main/train.jsonl": lines(good, row)})
    with pytest.raises(ConfigError) as excinfo:
        OpenBookQAScenario(locator).get_instances()
    error = excinfo.value
    assert error.file is not None and error.file.endswith("Data/Main/train.jsonl")
    assert (error.entry, error.field) == (line, field) and says in error.message


def test_labels_that_do_not_match_the_questions(tmp_path: Path) -> None:
    goal = {"goal": "g", "sol1": "a", "sol2": "b"}
    locator = mirror_with(tmp_path, {"piqa/train.jsonl": lines(goal, goal), "piqa/train-labels.lst": "0\n"})
    with pytest.raises(ConfigError, match=r"train-labels.lst: 1 labels for 2 questions"):
        PiqaScenario(locator).get_instances()
    locator = mirror_with(tmp_path / "2", {"piqa/train.jsonl": lines(goal), "piqa/train-labels.lst": "yes\n"})
    with pytest.raises(ConfigError, match=r"train-labels.lst, entry line 1: expected an integer label"):
        PiqaScenario(locator).get_instances()


def test_missing_data_offline_names_the_file_and_where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMEVAL_OFFLINE", "1")
    (tmp_path / "mirror").mkdir()
    locator = DataLocator(mirror=tmp_path / "mirror", cache=tmp_path / "cache")
    with pytest.raises(DataNotFoundError) as excinfo:
        OpenBookQAScenario(locator).get_instances()
    message = str(excinfo.value)
    assert "openbookqa/OpenBookQA-V1-Sep2018/Data/Main/train.jsonl" in message
    assert str(tmp_path / "mirror" / "openbookqa") in message and "LLMEVAL_OFFLINE" in message
    assert "\n" not in message
