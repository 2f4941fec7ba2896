"""Hugging Face tables (scenarios/hf_tables.py): save_to_disk folders, cached parquet files, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pytest_llmeval.errors import DataNotFoundError
from pytest_llmeval.scenarios.data import DataLocator
from pytest_llmeval.scenarios.hf_tables import HFTableError, locate_split, read_split
from tests.data_servers import FileServer

FIXTURE = Path(__file__).parent / "data" / "helm_sources"
ROWS = [{"translation": {"de": f"Satz {i}.", "en": f"Sentence {i}."}} for i in range(25)]


def write_save_to_disk(folder: Path, rows: list[dict[str, Any]], shards: int = 1) -> None:
    """A folder as ``datasets``' ``save_to_disk`` writes it: Arrow stream shards named in state.json."""
    folder.mkdir(parents=True)
    table = pa.Table.from_pylist(rows)
    size = -(-len(rows) // shards)
    names = []
    for shard in range(shards):
        name = f"data-{shard:05d}-of-{shards:05d}.arrow"
        with pa.ipc.new_stream(str(folder / name), table.schema) as writer:
            writer.write_table(table.slice(shard * size, size), max_chunksize=4)
        names.append({"filename": name})
    (folder / "state.json").write_text(json.dumps({"_data_files": names, "_split": folder.name}))
    (folder / "dataset_info.json").write_text("{}")


def test_a_datasets_save_to_disk_folder_is_read_in_order() -> None:
    """The committed fixture was written by ``datasets`` itself."""
    rows = read_split(DataLocator(mirror=FIXTURE, cache=None), "wmt14", "de-en", "validation")
    assert len(rows) == 4
    assert rows[0] == {"translation": {"de": "Die Minister treffen sich am Montag in Brüssel.",
                                       "en": "The ministers will meet in Brussels on Monday."}}


def test_rows_by_position_across_shards_and_batches(tmp_path: Path) -> None:
    write_save_to_disk(tmp_path / "hf" / "wmt14" / "de-en" / "train", ROWS, shards=3)
    split = locate_split(DataLocator(mirror=tmp_path, cache=None), "wmt14", "de-en", "train")
    assert split.num_rows() == 25
    assert split.rows() == ROWS
    assert split.rows([24, 0, 13, 9, 13]) == [ROWS[24], ROWS[0], ROWS[13], ROWS[9], ROWS[13]]
    with pytest.raises(HFTableError, match="no row 25"):
        split.rows([3, 25])


def test_cached_parquet_files_are_read_without_the_network(tmp_path: Path) -> None:
    folder = tmp_path / "cache" / "hf" / "wmt14" / "de-en" / "train"
    folder.mkdir(parents=True)
    table = pa.Table.from_pylist(ROWS)
    pq.write_table(table.slice(0, 10), folder / "train-00000-of-00002.parquet", row_group_size=3)
    pq.write_table(table.slice(10), folder / "train-00001-of-00002.parquet", row_group_size=4)
    (folder / "files.json").write_text(json.dumps(["train-00000-of-00002.parquet", "train-00001-of-00002.parquet"]))
    split = locate_split(DataLocator(mirror=None, cache=tmp_path / "cache"), "wmt14", "de-en", "train")
    assert split.format == "parquet"
    assert split.num_rows() == 25
    assert split.rows([11, 2, 24]) == [ROWS[11], ROWS[2], ROWS[24]]
    assert split.rows() == ROWS


def test_a_file_that_is_not_arrow_is_one_line_naming_it(tmp_path: Path) -> None:
    folder = tmp_path / "hf" / "wmt14" / "de-en" / "test"
    write_save_to_disk(folder, ROWS)
    (folder / "data-00000-of-00001.arrow").write_bytes(b"not arrow at all")
    with pytest.raises(HFTableError) as error:
        read_split(DataLocator(mirror=tmp_path, cache=None), "wmt14", "de-en", "test")
    message = str(error.value)
    assert "\n" not in message
    assert str(folder / "data-00000-of-00001.arrow") in message and "not an Arrow stream" in message


def test_a_broken_state_file_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "hf" / "wmt14" / "de-en" / "test"
    write_save_to_disk(folder, ROWS)
    (folder / "state.json").write_text('{"_data_files": 3}')
    with pytest.raises(HFTableError, match=r"state\.json: not a datasets save_to_disk state file") as error:
        read_split(DataLocator(mirror=tmp_path, cache=None), "wmt14", "de-en", "test")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("variable", ["LLMEVAL_OFFLINE", "HF_HUB_OFFLINE"])
def test_missing_offline_names_the_data_set_the_split_and_where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  variable: str) -> None:
    monkeypatch.delenv("LLMEVAL_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv(variable, "1")
    locator = DataLocator(mirror=tmp_path / "mirror", cache=tmp_path / "cache")
    with pytest.raises(DataNotFoundError) as error:
        read_split(locator, "wmt14", "fr-en", "train")
    message = str(error.value)
    assert "\n" not in message
    assert "wmt14 (fr-en, split train)" in message
    assert str(tmp_path / "mirror" / "hf" / "wmt14" / "fr-en" / "train") in message
    assert f"{variable}=1" in message
    assert not (tmp_path / "cache").exists()  # nothing was attempted


def test_the_hubs_parquet_files_are_downloaded_once_into_the_cache(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A loopback server in the Hub's layout: the tree listing, then each ``<split>-*.parquet`` file."""
    served = tmp_path / "served"
    listing = served / "api" / "datasets" / "wmt" / "wmt14" / "tree" / "main" / "de-en"
    listing.parent.mkdir(parents=True)
    files = served / "datasets" / "wmt" / "wmt14" / "resolve" / "main" / "de-en"
    files.mkdir(parents=True)
    table = pa.Table.from_pylist(ROWS)
    pq.write_table(table.slice(0, 12), files / "train-00000-of-00002.parquet")
    pq.write_table(table.slice(12), files / "train-00001-of-00002.parquet")
    pq.write_table(table.slice(0, 2), files / "test-00000-of-00001.parquet")
    listing.write_text(json.dumps([{"type": "file", "path": f"de-en/{p.name}"} for p in sorted(files.iterdir())]
                                  + [{"type": "directory", "path": "de-en/train-extra"}]))
    for name in ("LLMEVAL_OFFLINE", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    with FileServer(served) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        locator = DataLocator(mirror=None, cache=tmp_path / "cache")
        assert read_split(locator, "wmt14", "de-en", "train", hub_id="wmt/wmt14") == ROWS
        assert read_split(locator, "wmt14", "de-en", "train", hub_id="wmt/wmt14") == ROWS
        assert server.requests == ["/api/datasets/wmt/wmt14/tree/main/de-en",
                                   "/datasets/wmt/wmt14/resolve/main/de-en/train-00000-of-00002.parquet",
                                   "/datasets/wmt/wmt14/resolve/main/de-en/train-00001-of-00002.parquet"]
        with pytest.raises(DataNotFoundError, match=r"wmt/wmt14 has no de-en/validation-\*\.parquet files"):
            read_split(locator, "wmt14", "de-en", "validation", hub_id="wmt/wmt14")
