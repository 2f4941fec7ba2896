"""WMT14: HELM's shuffled, deduplicated training pairs, the run spec, the prompt, bad input and missing data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from pytest_llmeval.adapters.in_context import adapt
from pytest_llmeval.errors import ConfigError, DataNotFoundError
from pytest_llmeval.runspec import Description, build_run_spec
from pytest_llmeval.scenarios.data import DataLocator
from pytest_llmeval.scenarios.hf_tables import HFTableError, read_split
from pytest_llmeval.scenarios.wmt_14 import WMT14Scenario, shuffled_prefix

SOURCES = Path(__file__).parent / "data" / "helm_sources"
LOCATOR = DataLocator(mirror=SOURCES, cache=None)
# crfm-helm 0.5.16's WMT14Scenario("de", "en").get_instances() over the same rows (its load_dataset
# given a DatasetDict of the fixture's rows): the train instances are these rows of the train split.
HELM_TRAIN_ROWS = [27, 18, 26, 5, 4, 23, 35, 7, 25, 32, 10, 20, 33, 16, 6, 24, 29, 28, 9, 19, 3, 0, 15, 17, 31, 12,
                   21, 11, 14, 34, 2, 1, 13]


def scenario(locator: DataLocator = LOCATOR) -> WMT14Scenario:
    return WMT14Scenario(locator=locator, source_language="de", target_language="en")


def test_instances_are_helms() -> None:
    train_rows = read_split(LOCATOR, "wmt14", "de-en", "train")
    instances = scenario().get_instances()
    train = [i for i in instances if i.split == "train"]
    assert [train_rows.index({"translation": {"de": i.input, "en": i.references[0].output}}) for i in train] \
        == HELM_TRAIN_ROWS
    assert len({i.references[0].output for i in train}) == len(train) < len(train_rows)  # 3 targets repeat
    assert [i.split for i in instances[len(train):]] == ["valid"] * 4 + ["test"] * 8
    assert [i.id for i in instances] == [f"id{n}" for n in range(len(instances))]
    assert all(i.references[0].is_correct for i in instances)


def test_the_shuffle_is_datasets_seeded_permutation() -> None:
    # datasets 3.6.0 (crfm-helm's venv): Dataset.from_list([{"a": i} for i in range(n)]).shuffle(seed=42)[:count]
    assert shuffled_prefix(10, 4, 42) == [5, 6, 0, 7]
    assert shuffled_prefix(3, 20_000, 42) == [2, 1, 0]  # fewer rows than HELM keeps: all of them, shuffled


def test_run_spec_is_helms() -> None:
    spec = build_run_spec(Description.parse("wmt_14:language_pair=de-en"), "local/m", "org/m")
    adapter = spec.adapter_spec
    assert (adapter.method, adapter.input_prefix, adapter.input_suffix, adapter.output_prefix,
            adapter.output_suffix, adapter.instance_prefix) == ("generation", "German: ", "\n", "English: ", "\n", "\n")
    assert (adapter.max_train_instances, adapter.max_tokens, adapter.stop_sequences, adapter.temperature,
            adapter.num_outputs) == (1, 100, ("\n\n",), 0.0, 1)
    assert spec.metrics == ["exact_match", "quasi_exact_match", "f1_score", "rouge_l", "bleu_1", "bleu_4"]
    assert spec.main_metric == "bleu_4" and spec.groups == ["wmt_14"]
    assert spec.name == "wmt_14:language_pair=de-en,model=org_m"
    data = spec.to_json()
    assert data["adapter_spec"]["instructions"] == "Translate the following sentences from German to English."
    assert "instructions_end" not in data["adapter_spec"]
    assert data["scenario_spec"] == {"class_name": "helm.benchmark.scenarios.wmt_14_scenario.WMT14Scenario",
                                     "args": {"source_language": "de", "target_language": "en"}}
    assert [m["class_name"].rpartition(".")[2] for m in data["metric_specs"]] == [
        "BasicGenerationMetric", "BasicReferenceMetric", "InstancesPerSplitMetric"]
    more = build_run_spec(Description.parse("wmt_14:language_pair=de-en,max_train_instances=3"), "local/m", "org/m")
    assert more.adapter_spec.max_train_instances == 3


@pytest.mark.parametrize(("text", "says"), [
    ("wmt_14", "needs language_pair"),
    ("wmt_14:language_pair=de", "only includes"),
    ("wmt_14:language_pair=es-en", "only includes"),
    ("wmt_14:language_pair=de-fr", "one language should be English"),
    ("wmt_14:language_pair=en-en", "one language should be English"),
])
def test_bad_language_pairs_name_the_field(text: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says) as excinfo:
        build_run_spec(Description.parse(text), "local/m", "org/m")
    assert excinfo.value.field == "language_pair"


def test_unknown_arguments_name_the_field() -> None:
    with pytest.raises(ConfigError) as excinfo:
        build_run_spec(Description.parse("wmt_14:language_pair=de-en,subset=x"), "local/m", "org/m")
    assert excinfo.value.field == "subset"


def test_prompt_is_helms() -> None:
    """helm-run's first prompt of ``wmt_14:language_pair=de-en`` on these rows (one in-context example)."""
    spec = build_run_spec(Description.parse("wmt_14:language_pair=de-en"), "local/m", "org/m")
    states = adapt(spec.adapter_spec, scenario().get_instances())
    first = next(s for s in states if s.instance.input == "Die Konferenz endete ohne eine Einigung.")
    assert first.request.prompt == (
        "Translate the following sentences from German to English.\n"
        "German: Die Fluggesellschaft strich wegen des Streiks zahlreiche Flüge.\n"
        "English: The airline cancelled numerous flights because of the strike.\n"
        "\n"
        "German: Die Konferenz endete ohne eine Einigung.\n"
        "English:")
    assert (first.request.max_tokens, first.request.stop_sequences) == (100, ("\n\n",))


def test_bad_rows_are_one_line_naming_the_file(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    shutil.copytree(SOURCES / "hf", mirror / "hf")
    folder = mirror / "hf" / "wmt14" / "de-en" / "validation"
    for path in folder.glob("*.arrow"):
        path.unlink()
    table = pa.Table.from_pylist([{"translation": {"de": "Hallo.", "fr": "Bonjour."}}])
    with pa.ipc.new_stream(str(folder / "data-00000-of-00001.arrow"), table.schema) as writer:
        writer.write_table(table)
    with pytest.raises(HFTableError) as excinfo:
        scenario(DataLocator(mirror=mirror, cache=None)).get_instances()
    message = str(excinfo.value)
    assert "\n" not in message and str(folder) in message and "'de' and 'en'" in message


def test_missing_data_offline_names_the_split_and_where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMEVAL_OFFLINE", "1")
    mirror = tmp_path / "mirror"
    shutil.copytree(SOURCES / "hf", mirror / "hf")
    shutil.rmtree(mirror / "hf" / "wmt14" / "de-en" / "test")
    with pytest.raises(DataNotFoundError) as excinfo:
        scenario(DataLocator(mirror=mirror, cache=tmp_path / "cache")).get_instances()
    message = str(excinfo.value)
    assert "\n" not in message
    assert "wmt14 (de-en, split test)" in message and str(mirror / "hf" / "wmt14" / "de-en" / "test") in message


def test_fixture_is_what_datasets_wrote() -> None:
    """The committed folders are datasets' save_to_disk output (its state and info files)."""
    for split in ("train", "validation", "test"):
        folder = SOURCES / "hf" / "wmt14" / "de-en" / split
        state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
        assert state["_split"] == split and state["_data_files"] == [{"filename": "data-00000-of-00001.arrow"}]
        info = json.loads((folder / "dataset_info.json").read_text(encoding="utf-8"))
        assert info["features"]["translation"] == {"languages": ["de", "en"], "_type": "Translation"}


def test_helm_lites_entry_prompt_is_helms() -> None:
    """helm-run's prompt of HELM Lite's ``wmt_14:language_pair=de-en,follow_format_instructions=instruct``
    for an instruction-following model (SmolLM2-135M-Instruct), on these rows."""
    spec = build_run_spec(Description.parse("wmt_14:language_pair=de-en,follow_format_instructions=instruct"),
                          "local/m", "org/m", model_tags=("INSTRUCTION_FOLLOWING_MODEL_TAG",))
    states = adapt(spec.adapter_spec, scenario().get_instances())
    first = next(s for s in states if s.instance.input == "Die Konferenz endete ohne eine Einigung.")
    assert first.request.prompt == (
        "Here are some input-output examples. Read the examples carefully to figure out the mapping. The output "
        "of the last example is not given, and your job is to figure out what it is.\n"
        "\n"
        "Translate the following sentences from German to English.\n"
        "German: Die Fluggesellschaft strich wegen des Streiks zahlreiche Flüge.\n"
        "English: The airline cancelled numerous flights because of the strike.\n"
        "\n"
        "German: Die Konferenz endete ohne eine Einigung.\n"
        "English:\n"
        "\n"
        "Please provide the output to this last example. It is critical to follow the format of the preceding "
        "outputs!\n"
        "English:")
