"""LegalBench: the prompt settings file, the subsets' TSV files (from the mirror or the data
archive), the adapter texts filled in when the run starts, bad files and missing data."""

from __future__ import annotations

import http.server
import shutil
import tarfile
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from pytest_llmeval.adapters.in_context import adapt
from pytest_llmeval.errors import ConfigError, DataNotFoundError
from pytest_llmeval.runspec import Description, build_run_spec
from pytest_llmeval.scenarios import legalbench
from pytest_llmeval.scenarios.data import DataLocator
from pytest_llmeval.scenarios.legalbench import (
    INSTRUCTIONS_PLACEHOLDER,
    LegalBenchScenario,
    parse_prompt_settings,
    read_tsv,
)

SOURCES = Path(__file__).parent / "data" / "helm_sources"
SETTINGS = SOURCES / "legalbench" / "helm_prompt_settings.jsonl"
ABERCROMBIE = ("A mark is generic if it is the common name for the product. A mark is descriptive if it describes "
               "a purpose, nature, or attribute of the product. A mark is suggestive if it suggests or implies a "
               "quality or characteristic of the product. A mark is arbitrary if it is a real English word that has "
               "no relation to the product. A mark is fanciful if it is an invented word. Label the type of mark for "
               "the following products.")


def mirror_with(tmp_path: Path, files: dict[str, str], settings: str | None = None) -> DataLocator:
    """A mirror with the real prompt settings (or ``settings``) and the given TSV files."""
    root = tmp_path / "mirror" / "legalbench"
    root.mkdir(parents=True)
    (root / "helm_prompt_settings.jsonl").write_text(
        settings if settings is not None else SETTINGS.read_text(encoding="utf-8"), encoding="utf-8")
    for relative, text in files.items():
        path = root / "data" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return DataLocator(mirror=tmp_path / "mirror", cache=tmp_path / "cache")


def test_prompt_settings_of_a_subset() -> None:
    settings = parse_prompt_settings(SETTINGS.read_bytes(), str(SETTINGS), "abercrombie")
    assert settings.fields == (("Description", "text"),)
    assert (settings.instructions, settings.label_key, settings.output_noun) == (ABERCROMBIE, "answer", "Type")
    lobbying = parse_prompt_settings(SETTINGS.read_bytes(), str(SETTINGS), "corporate_lobbying")
    assert [label for label, _ in lobbying.fields] == ["Official title of bill", "Official summary of bill",
                                                      "Company name", "Company business description"]


def test_subset_files_become_train_and_test_instances() -> None:
    instances = LegalBenchScenario("abercrombie", DataLocator(mirror=SOURCES, cache=None)).get_instances()
    assert [i.split for i in instances] == ["train"] * 5 + ["test"] * 25
    assert [i.id for i in instances] == [f"id{n}" for n in range(30)]
    first = instances[0]
    # The train file quotes its texts ("The mark ""Ivory"" ..."): read unquoted, as the loader reads them.
    assert first.input == 'Description: The mark "Ivory" for a product made of elephant tusks.'
    assert [(r.output, r.is_correct) for r in first.references] == [("generic", True)]
    proa = LegalBenchScenario("proa", DataLocator(mirror=SOURCES, cache=None)).get_instances()
    texts = [i.input for i in proa]
    assert "Statute: Any  owner  or  tenant  of  residential  real property  shall  have" in "\n".join(texts)
    assert any(t.startswith("Statute: Each section of the petition") and t.endswith("same time.") for t in texts)


def test_run_spec_reads_no_data_and_fills_the_adapter_texts_when_the_run_starts(tmp_path: Path) -> None:
    spec = build_run_spec(Description.parse("legalbench:subset=abercrombie"), "local/m", "org/m")
    assert (spec.name, spec.groups) == ("legalbench:subset=abercrombie,model=org_m", ["legalbench"])
    assert spec.adapter_spec.instructions == INSTRUCTIONS_PLACEHOLDER  # nothing read yet
    assert spec.to_json()["scenario_spec"] == {
        "class_name": "helm.benchmark.scenarios.legalbench_scenario.LegalBenchScenario",
        "args": {"subset": "abercrombie"}}
    locator = DataLocator(mirror=SOURCES, cache=None)
    spec = spec.with_late_texts(locator)
    adapter = spec.adapter_spec
    assert (adapter.instructions, adapter.input_prefix, adapter.output_prefix) == (ABERCROMBIE, "", "Type: ")
    assert (adapter.max_tokens, adapter.max_train_instances, adapter.stop_sequences) == (30, 5, ("\n",))
    assert spec.to_json()["adapter_spec"]["instructions"] == ABERCROMBIE + "\n"  # as HELM's run_spec.json
    states = adapt(adapter, spec.build_scenario(locator).get_instances()[:6])
    assert states[0].request.prompt.startswith(ABERCROMBIE + "\n\nDescription: ")
    assert states[0].request.prompt.endswith('\nType: generic\n\nDescription: The mark “Salt” for packages of '
                                             'sodium chloride.\nType:')


def test_run_expanders_see_the_texts_that_are_filled_in_later() -> None:
    entry = "legalbench:subset=proa,follow_format_instructions=all"
    spec = build_run_spec(Description.parse(entry), "local/m", "org/m")
    spec = spec.with_late_texts(DataLocator(mirror=SOURCES, cache=None))
    assert spec.adapter_spec.global_suffix.endswith("\nAnswer:")
    assert "<legalbench" not in repr(spec.adapter_spec)


@pytest.mark.parametrize(("entry", "field"), [("legalbench:subset=rule_qa", "subset"), ("legalbench", "subset"),
                                              ("legalbench:subset=proa,task=x", "task")])
def test_bad_arguments_name_the_field(entry: str, field: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        build_run_spec(Description.parse(entry), "local/m", "org/m")
    assert excinfo.value.field == field


def test_bad_prompt_settings_name_the_file_line_and_subset(tmp_path: Path) -> None:
    lines = SETTINGS.read_text(encoding="utf-8").strip().split("\n")
    locator = mirror_with(tmp_path / "short", {}, settings="\n".join(lines[:4]) + "\n")
    with pytest.raises(ConfigError, match=r"helm_prompt_settings.jsonl: expected 5 JSON lines"):
        LegalBenchScenario("proa", locator).get_instances()
    without_proa = [*lines[:3], '{"abercrombie": "Type"}', *lines[4:]]
    locator = mirror_with(tmp_path / "noun", {}, settings="\n".join(without_proa) + "\n")
    with pytest.raises(ConfigError) as excinfo:
        LegalBenchScenario("proa", locator).get_instances()
    error = excinfo.value
    assert error.file is not None and error.file.endswith("helm_prompt_settings.jsonl")
    assert (error.entry, error.field) == ("line 4", "proa") and "output nouns" in error.message


def test_bad_tsv_rows_name_the_file_row_and_column(tmp_path: Path) -> None:
    locator = mirror_with(tmp_path, {"proa/train.tsv": "index\tanswer\ttext\n0\tYes\tA statute.\n1\tNo\n"})
    with pytest.raises(ConfigError, match=r"proa/train.tsv, entry row 2: expected 3 tab-separated columns"):
        LegalBenchScenario("proa", locator).get_instances()
    locator = mirror_with(tmp_path / "2", {"proa/train.tsv": "index\tlabel\ttext\n0\tYes\tA statute.\n"})
    with pytest.raises(ConfigError) as excinfo:
        LegalBenchScenario("proa", locator).get_instances()
    assert (excinfo.value.entry, excinfo.value.field) == ("row 1", "answer")


def test_tsv_rows_keep_text_as_it_is() -> None:
    rows = read_tsv(b'a\tb\n1\t"x ""y"" z"\n\n2\t  two  spaces\n', "t.tsv")
    assert rows == [(1, {"a": "1", "b": 'x "y" z'}), (3, {"a": "2", "b": "  two  spaces"})]


def test_missing_data_offline_names_the_file_and_where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMEVAL_OFFLINE", "1")
    (tmp_path / "mirror").mkdir()
    empty = DataLocator(mirror=tmp_path / "mirror", cache=tmp_path / "cache")
    spec = build_run_spec(Description.parse("legalbench:subset=proa"), "local/m", "org/m")
    with pytest.raises(DataNotFoundError, match=r"legalbench/helm_prompt_settings.jsonl .*not found: expected "):
        spec.with_late_texts(empty)
    locator = mirror_with(tmp_path / "settings_only", {})
    with pytest.raises(DataNotFoundError) as excinfo:
        LegalBenchScenario("proa", locator).get_instances()
    message = str(excinfo.value)
    assert "legalbench/data/proa/train.tsv" in message and "nguha/legalbench" in message and "\n" not in message


@pytest.fixture
def served_folder(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A loopback HTTP server over a folder."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", folder
    finally:
        server.shutdown()
        server.server_close()


def test_subset_files_come_from_the_data_archive(tmp_path: Path, served_folder: tuple[str, Path],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a mirror copy, ``data/<subset>/{train,test}.tsv`` is read from ``data.tar.gz``."""
    base, folder = served_folder
    staging = tmp_path / "staging"
    shutil.copytree(SOURCES / "legalbench" / "data", staging / "data")
    with tarfile.open(folder / "data.tar.gz", "w:gz") as tar:
        tar.add(staging / "data", arcname="data")
    monkeypatch.delenv("LLMEVAL_OFFLINE", raising=False)
    monkeypatch.setattr(legalbench, "DATA_URL", f"{base}/data.tar.gz")
    locator = mirror_with(tmp_path, {})  # the prompt settings only
    instances = LegalBenchScenario("abercrombie", locator).get_instances()
    assert [i.split for i in instances] == ["train"] * 5 + ["test"] * 25
    assert instances == LegalBenchScenario("abercrombie", DataLocator(mirror=SOURCES, cache=None)).get_instances()
