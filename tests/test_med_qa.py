"""MedQA: HELM's splits (train, dev as valid, test) from the release's US four-option files,
options as references, bad rows, missing data, the run spec and the prompt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_llmeval.adapters.in_context import adapt
from pytest_llmeval.errors import ConfigError, DataNotFoundError
from pytest_llmeval.runspec import Description, build_run_spec
from pytest_llmeval.scenarios.data import DataLocator
from pytest_llmeval.scenarios.med_qa import MedQAScenario

SOURCES = Path(__file__).parent / "data" / "helm_sources"
FOLDER = "med_qa/data_clean/questions/US/4_options"
ROW = {"question": "Which vitamin?", "answer": "Thiamine", "options": {"A": "B12", "B": "Niacin", "C": "Thiamine",
                                                                       "D": "Folate"}, "meta_info": "step1",
       "answer_idx": "C"}


def mirror_with(tmp_path: Path, **files: list[dict[str, object]]) -> DataLocator:
    folder = tmp_path / "mirror" / FOLDER
    folder.mkdir(parents=True)
    for name, rows in files.items():
        (folder / f"phrases_no_exclude_{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows),
                                                                 encoding="utf-8")
    return DataLocator(mirror=tmp_path / "mirror", cache=tmp_path / "cache")


def test_release_files_become_train_valid_and_test() -> None:
    rows = [json.loads(line) for name in ("train", "dev", "test")
            for line in (SOURCES / FOLDER / f"phrases_no_exclude_{name}.jsonl").read_text().splitlines()]
    instances = MedQAScenario(DataLocator(mirror=SOURCES, cache=None)).get_instances()
    assert [i.split for i in instances] == ["train"] * 6 + ["valid"] * 4 + ["test"] * 10
    assert [i.id for i in instances] == [f"id{n}" for n in range(20)]
    for row, instance in zip(rows, instances):
        assert instance.input == row["question"]
        assert [r.is_correct for r in instance.references] == [k == row["answer_idx"] for k in row["options"]]
    # An option ending in a newline and a stray quote, as some in the release do, is cut back.
    assert instances[6].references[2].output == "Pheochromocytoma"


def test_only_the_answer_letter_is_correct_even_when_texts_repeat(tmp_path: Path) -> None:
    twice = {**ROW, "options": {"A": "Thiamine", "B": "Niacin", "C": "Thiamine", "D": "Folate"}}
    locator = mirror_with(tmp_path, train=[twice], dev=[], test=[ROW])
    first, _ = MedQAScenario(locator).get_instances()
    assert [r.is_correct for r in first.references] == [False, False, True, False]


def test_prompt_is_helms_joint_format(tmp_path: Path) -> None:
    locator = mirror_with(tmp_path, train=[ROW], dev=[], test=[{**ROW, "question": "Which again?"}])
    spec = build_run_spec(Description.parse("med_qa"), "local/m", "org/m")
    [state] = adapt(spec.adapter_spec, MedQAScenario(locator).get_instances())
    assert state.request.prompt == (
        "The following are multiple choice questions (with answers) about medicine.\n\n"
        "Question: Which vitamin?\nA. B12\nB. Niacin\nC. Thiamine\nD. Folate\nAnswer: C\n\n"
        "Question: Which again?\nA. B12\nB. Niacin\nC. Thiamine\nD. Folate\nAnswer:")


def test_run_spec_is_helms() -> None:
    spec = build_run_spec(Description.parse("med_qa"), "local/m", "org/m")
    assert (spec.name, spec.groups) == ("med_qa:model=org_m", ["med_qa"])
    assert spec.to_json()["scenario_spec"] == {"class_name": "helm.benchmark.scenarios.med_qa_scenario.MedQAScenario",
                                               "args": {}}
    with pytest.raises(ConfigError) as excinfo:
        build_run_spec(Description.parse("med_qa:subset=US"), "local/m", "org/m")
    assert excinfo.value.field == "subset"


@pytest.mark.parametrize(("row", "field", "says"), [
    ({**ROW, "options": {"A": "x", "B": "y", "C": "z"}, "answer_idx": "A"}, "options", "expected 4 answer choices"),
    ({**ROW, "answer_idx": "E"}, "answer_idx", "not one of the options"),
    ({**ROW, "options": {**ROW["options"], "B": 3}}, "options.B", "should be text"),  # type: ignore[dict-item]
    ({k: v for k, v in ROW.items() if k != "question"}, "question", "'question' is missing"),
])
def test_bad_rows_name_file_line_and_field(tmp_path: Path, row: dict[str, object], field: str, says: str) -> None:
    locator = mirror_with(tmp_path, train=[ROW, row], dev=[], test=[])
    with pytest.raises(ConfigError) as excinfo:
        MedQAScenario(locator).get_instances()
    error = excinfo.value
    assert error.file is not None and error.file.endswith("phrases_no_exclude_train.jsonl")
    assert (error.entry, error.field) == ("line 2", field) and says in error.message


def test_missing_data_offline_names_the_file_and_where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMEVAL_OFFLINE", "1")
    locator = mirror_with(tmp_path, train=[ROW])
    with pytest.raises(DataNotFoundError) as excinfo:
        MedQAScenario(locator).get_instances()
    message = str(excinfo.value)
    assert f"{FOLDER}/phrases_no_exclude_dev.jsonl" in message and str(tmp_path / "mirror") in message
    assert "drive.google.com" in message and "\n" not in message
