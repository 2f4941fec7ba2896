"""NarrativeQA: HELM's reading of summaries.csv and qaps.csv (one seeded question per story,
both answers as references), bad files, missing data, the run spec and the prompt."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

from pytest_llmeval.adapters.in_context import adapt
from pytest_llmeval.errors import ConfigError, DataNotFoundError
from pytest_llmeval.runspec import Description, build_run_spec
from pytest_llmeval.scenarios.data import DataLocator
from pytest_llmeval.scenarios.narrative_qa import QUESTIONS, SUMMARIES, NarrativeQAScenario

SOURCES = Path(__file__).parent / "data" / "helm_sources"
SUMMARY_HEADER = ["document_id", "set", "summary", "summary_tokenized"]
QUESTION_HEADER = ["document_id", "set", "question", "answer1", "answer2", "question_tokenized",
                   "answer1_tokenized", "answer2_tokenized"]


def read(relative: str) -> list[dict[str, str]]:
    with (SOURCES / relative).open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def write_mirror(folder: Path, summaries: list[list[str]], questions: list[list[str]]) -> DataLocator:
    for relative, header, rows in ((SUMMARIES, SUMMARY_HEADER, summaries), (QUESTIONS, QUESTION_HEADER, questions)):
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)
    return DataLocator(mirror=folder, cache=folder.parent / "cache")


def scenario(locator: DataLocator | None = None) -> NarrativeQAScenario:
    return NarrativeQAScenario(locator=locator or DataLocator(mirror=SOURCES, cache=None))


def test_one_question_per_story_drawn_as_helm_draws_it() -> None:
    summaries = {(r["set"], r["document_id"]): r["summary"] for r in read(SUMMARIES)}
    questions = read(QUESTIONS)
    rng = random.Random(0)
    expected = []
    for split in ("train", "valid", "test"):
        stories: dict[str, list[dict[str, str]]] = {}
        for row in questions:
            if row["set"] == split:
                stories.setdefault(row["document_id"], []).append(row)
        for document, rows in stories.items():
            row = rng.choice(rows)
            expected.append((split, summaries[(split, document)].strip(), row["answer1"], row["answer2"]))
    instances = scenario().get_instances()
    assert [(i.split, i.input.rpartition("\nQuestion: ")[0], i.references[0].output, i.references[1].output)
            for i in instances] == expected
    assert [i.id for i in instances] == [f"id{n}" for n in range(len(instances))]
    assert all(r.is_correct for i in instances for r in i.references)
    # A story with several questions exists, and a story whose summary has no questions is left out.
    assert len({r["document_id"] for r in questions}) < len(questions)
    assert len(instances) == len({(r["set"], r["document_id"]) for r in questions}) < len(summaries)


def test_question_and_summary_are_stripped_and_the_answers_kept(tmp_path: Path) -> None:
    locator = write_mirror(tmp_path / "mirror", [["d1", "test", "  Line one.\r\nLine two.  ", ""]],
                           [["d1", "test", "  who is it ", " Ann ", "Ann.", "", "", ""]])
    [instance] = scenario(locator).get_instances()
    assert instance.input == "Line one.\nLine two.\nQuestion: who is it?"  # "\r\n" read as HELM reads it
    assert [r.output for r in instance.references] == [" Ann ", "Ann."]


def test_a_question_of_a_story_without_summary_names_the_row(tmp_path: Path) -> None:
    locator = write_mirror(tmp_path / "mirror", [["d1", "train", "S.", ""]],
                           [["d1", "train", "Q?", "a", "b", "", "", ""], ["d2", "train", "Q?", "a", "b", "", "", ""]])
    with pytest.raises(ConfigError) as excinfo:
        scenario(locator).get_instances()
    error = excinfo.value
    assert error.file is not None and error.file.endswith("qaps.csv")
    assert (error.entry, error.field) == ("row 2 (document_id d2)", "document_id")
    assert "\n" not in str(error)


@pytest.mark.parametrize(("questions", "field", "says"), [
    ([["d1", "train", " ", "a", "b", "", "", ""]], "question", "empty"),
    ([["d1", "train", "Q?"]], "answer1", "too few columns"),
])
def test_bad_rows_name_file_row_and_field(tmp_path: Path, questions: list[list[str]], field: str, says: str) -> None:
    locator = write_mirror(tmp_path / "mirror", [["d1", "train", "S.", ""]], questions)
    with pytest.raises(ConfigError) as excinfo:
        scenario(locator).get_instances()
    assert (excinfo.value.field, excinfo.value.entry is not None) == (field, True)
    assert says in excinfo.value.message and str(excinfo.value.file).endswith("qaps.csv")


def test_a_header_without_a_column_is_refused(tmp_path: Path) -> None:
    locator = write_mirror(tmp_path / "mirror", [["d1", "train", "S.", ""]], [])
    (tmp_path / "mirror" / SUMMARIES).write_text("document_id,set,text\nd1,train,S.\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="lacks column") as excinfo:
        scenario(locator).get_instances()
    assert excinfo.value.field == "summary" and str(excinfo.value.file).endswith("summaries.csv")


def test_missing_files_offline_say_where_they_were_expected(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMEVAL_OFFLINE", "1")
    (tmp_path / "mirror").mkdir()
    locator = DataLocator(mirror=tmp_path / "mirror", cache=tmp_path / "cache")
    with pytest.raises(DataNotFoundError) as excinfo:
        scenario(locator).get_instances()
    message = str(excinfo.value)
    assert str(tmp_path / "mirror" / SUMMARIES) in message and "LLMEVAL_OFFLINE" in message
    assert "\n" not in message


def test_run_spec_is_helms() -> None:
    spec = build_run_spec(Description.parse("narrative_qa"), "local/m", "org/m")
    adapter = spec.adapter_spec
    assert (adapter.input_prefix, adapter.output_prefix, adapter.max_train_instances, adapter.max_tokens,
            adapter.stop_sequences) == ("Passage: ", "Answer: ", 5, 100, ("\n",))
    assert spec.metrics == ["exact_match", "quasi_exact_match", "f1_score", "rouge_l", "bleu_1", "bleu_4"]
    assert (spec.name, spec.groups, spec.main_metric) == ("narrative_qa:model=org_m", ["narrative_qa"], "f1_score")
    assert spec.to_json()["scenario_spec"]["class_name"] == (
        "helm.benchmark.scenarios.narrativeqa_scenario.NarrativeQAScenario")
    with pytest.raises(ConfigError) as excinfo:
        build_run_spec(Description.parse("narrative_qa:mode=x"), "local/m", "org/m")
    assert excinfo.value.field == "mode"


def test_prompt_is_helms_passage_format(tmp_path: Path) -> None:
    locator = write_mirror(tmp_path / "mirror", [["d1", "train", "Ann rows.", ""], ["d2", "test", "Bo sails.", ""]],
                           [["d1", "train", "Who rows", "Ann", "A girl", "", "", ""],
                            ["d2", "test", "Who sails?", "Bo", "A boy", "", "", ""]])
    spec = build_run_spec(Description.parse("narrative_qa"), "local/m", "org/m")
    [state] = adapt(spec.adapter_spec, scenario(locator).get_instances())
    assert state.request.prompt == (
        "Passage: Ann rows.\nQuestion: Who rows?\nAnswer: Ann\n\nPassage: Bo sails.\nQuestion: Who sails?\nAnswer:")


def test_a_long_prompt_is_not_padded_into_a_batch_of_short_ones() -> None:
    """NarrativeQA's long summaries: on CPU a batch's attention scores are bounded, so the
    7,800-token prompt runs alone instead of padding four short ones to its width."""
    from pytest_llmeval.clients.hf_planning import batches

    encoded = [[0] * n for n in (1200, 1250, 1300, 1350, 7800)]
    assert batches(list(range(5)), encoded, 8, 1.0, prefix_len=300) == [[0, 1, 2, 3, 4]]
    assert batches(list(range(5)), encoded, 8, 1.0, prefix_len=300, max_cells=30_000_000) == [[0, 1, 2, 3], [4]]
    assert batches([4], encoded, 8, 1.0, prefix_len=300, max_cells=1) == [[4]]  # one row always runs
