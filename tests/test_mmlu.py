"""The MMLU scenario on the real data mirror, the data locator's failure message, and safe unpacking."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest
import requests

from pytest_llmeval.errors import ConfigError, DataNotFoundError
from pytest_llmeval.http_session import RetryPolicy
from pytest_llmeval.scenarios import CORRECT_TAG, DataLocator, MMLUScenario, mmlu
from pytest_llmeval.scenarios.data import DATA_DIR_ENV, DataArchive, safe_extract
from tests import data_servers
from tests.data_servers import FileServer

file_server = data_servers.file_server
FAST = RetryPolicy(retries=1, backoff=0.0, timeout=5.0)

DATA_DIR = Path(os.environ.get(DATA_DIR_ENV) or Path(__file__).resolve().parents[2] / "shared" / "data")
needs_data = pytest.mark.skipif(not (DATA_DIR / "mmlu" / "test" / "anatomy_test.csv").is_file(),
                                reason=f"no MMLU data mirror at {DATA_DIR}")


def _instances(subject: str) -> list[Any]:
    return MMLUScenario(subject, DataLocator(mirror=DATA_DIR, cache=None)).get_instances()


@needs_data
def test_anatomy_counts_and_ids() -> None:
    instances = _instances("anatomy")
    splits = [i.split for i in instances]
    assert (splits.count("train"), splits.count("valid"), splits.count("test")) == (5, 14, 135)
    # dev, then val, then test, numbered in reading order as HELM does.
    assert splits == ["train"] * 5 + ["valid"] * 14 + ["test"] * 135
    assert [i.id for i in instances] == [f"id{n}" for n in range(154)]


@needs_data
def test_first_dev_row_and_correct_reference() -> None:
    first = _instances("anatomy")[0]
    assert first.input == "What is the embryological origin of the hyoid bone?"
    assert [r.output for r in first.references] == [
        "The first pharyngeal arch", "The first and second pharyngeal arches", "The second pharyngeal arch",
        "The second and third pharyngeal arches"]
    assert [r.tags for r in first.references] == [(), (), (), (CORRECT_TAG,)]  # answer D
    assert first.first_correct_reference is first.references[3]


@needs_data
def test_every_instance_has_four_options_and_a_correct_one() -> None:
    for instance in _instances("anatomy"):
        assert len(instance.references) == 4
        assert instance.first_correct_reference is not None


@needs_data
def test_newlines_inside_questions_are_read_as_helm_reads_them() -> None:
    """college_mathematics_dev.csv has CRLF inside a quoted question; HELM (universal newlines) sees LF."""
    instances = _instances("college_mathematics")
    assert all("\r" not in i.input for i in instances)
    assert any(i.input.startswith("Let A be a real 2x2 matrix. Which of the following statements must be true?\nI.")
               for i in instances if i.split == "train")


@needs_data
def test_duplicate_correct_option_is_tagged_like_helm() -> None:
    """HELM tags every option equal to the answer's text (miscellaneous val row 10: A and B are the same)."""
    valid = [i for i in _instances("miscellaneous") if i.split == "valid"]
    row = valid[9]
    assert [r.output for r in row.references][:2] == ["60,000,000", "60,000,000"]
    assert [r.is_correct for r in row.references] == [True, True, False, False]


def test_unknown_subject() -> None:
    with pytest.raises(ConfigError) as excinfo:
        MMLUScenario("anatomyy", DataLocator())
    assert excinfo.value.field == "subject"
    assert "'anatomyy'" in str(excinfo.value) and "anatomy" in str(excinfo.value)


def test_malformed_row(tmp_path: Path) -> None:
    for folder in ("dev", "val", "test"):
        (tmp_path / "mmlu" / folder).mkdir(parents=True)
        (tmp_path / "mmlu" / folder / f"anatomy_{folder}.csv").write_text("Q?,a,b,c,d,A\n", encoding="utf-8")
    (tmp_path / "mmlu" / "val" / "anatomy_val.csv").write_text("Q?,a,b,c,d,A\nQ2?,a,b,c,d,AB\n", encoding="utf-8")
    with pytest.raises(ConfigError) as excinfo:
        MMLUScenario("anatomy", DataLocator(mirror=tmp_path)).get_instances()
    assert "anatomy_val.csv" in str(excinfo.value) and "row 2" in str(excinfo.value)


# --- missing data -----------------------------------------------------------------------------------


def _no_network(*args: Any, **kwargs: Any) -> Any:
    raise requests.ConnectionError("network is off in tests")


def test_missing_data_names_the_file_and_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(requests.Session, "send", _no_network)
    mirror, cache = tmp_path / "mirror", tmp_path / "cache"
    mirror.mkdir()
    cache.mkdir()
    scenario = MMLUScenario("anatomy", DataLocator(mirror=mirror, cache=cache, downloads=FAST))
    with pytest.raises(DataNotFoundError) as excinfo:
        scenario.get_instances()
    message = str(excinfo.value)
    assert "mmlu/dev/anatomy_dev.csv" in message
    assert str(mirror / "mmlu" / "dev" / "anatomy_dev.csv") in message
    assert str(cache / "mmlu" / "dev" / "anatomy_dev.csv") in message
    assert "network is off" in message  # why the download did not help
    assert "--llmeval-data-dir" in message and DATA_DIR_ENV in message  # how to provide it
    assert list(cache.iterdir()) == []  # no half-downloaded leftovers


def test_missing_data_without_cache_does_not_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(requests.Session, "send", _no_network)
    with pytest.raises(DataNotFoundError) as excinfo:
        DataLocator(mirror=tmp_path).locate("mmlu/test/anatomy_test.csv", DataArchive("https://x/y.tar", "a", "b"))
    assert "no download source" in str(excinfo.value)


def test_download_that_is_not_a_tar(tmp_path: Path, file_server: FileServer) -> None:
    """A proxy's HTML page instead of the archive gives the same actionable error, not a TarError."""
    (file_server.root / "data.tar").write_bytes(b"<html>captive portal</html>")
    locator = DataLocator(mirror=None, cache=tmp_path / "cache", downloads=FAST)
    with pytest.raises(DataNotFoundError) as excinfo:
        locator.locate("mmlu/test/anatomy_test.csv", DataArchive(f"{file_server.url}/data.tar", "mmlu", "data"))
    assert "mmlu/test/anatomy_test.csv" in str(excinfo.value)


def test_download_unpacks_into_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        file_server: FileServer) -> None:
    archive = file_server.root / "data.tar"
    with tarfile.open(archive, "w") as tar:
        for folder in ("dev", "val", "test"):
            payload = b"Q?,a,b,c,d,C\n"
            info = tarfile.TarInfo(f"data/{folder}/anatomy_{folder}.csv")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    monkeypatch.setattr(mmlu, "ARCHIVE", DataArchive(f"{file_server.url}/data.tar", "mmlu", "data"))
    cache = tmp_path / "cache"
    instances = MMLUScenario("anatomy", DataLocator(mirror=tmp_path / "empty", cache=cache)).get_instances()
    assert [i.split for i in instances] == ["train", "valid", "test"]
    assert (cache / "mmlu" / "test" / "anatomy_test.csv").is_file()
    assert file_server.requests == ["/data.tar"]  # downloaded once, then found in the cache


def test_mirror_wins_over_cache(tmp_path: Path) -> None:
    for base in ("mirror", "cache"):
        (tmp_path / base / "x").mkdir(parents=True)
        (tmp_path / base / "x" / "f.csv").write_text(base)
    locator = DataLocator(mirror=tmp_path / "mirror", cache=tmp_path / "cache")
    assert locator.locate("x/f.csv").read_text() == "mirror"
    (tmp_path / "mirror" / "x" / "f.csv").unlink()
    assert locator.locate("x/f.csv").read_text() == "cache"


def test_from_settings_reads_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    monkeypatch.setenv("LLMEVAL_CACHE_DIR", str(tmp_path / "c"))
    locator = DataLocator.from_settings(None)
    assert locator.mirror == tmp_path.resolve()
    assert locator.cache == tmp_path / "c" / "data"
    assert DataLocator.from_settings(str(tmp_path / "other")).mirror == (tmp_path / "other").resolve()


# --- safe_extract -----------------------------------------------------------------------------------


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path


def test_safe_extract_refuses_path_traversal(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "evil.tar", {"ok.txt": b"fine", "../evil.txt": b"gotcha"})
    target = tmp_path / "out"
    with pytest.raises(OSError, match="unsafe path"):
        safe_extract(archive, target)
    assert not (tmp_path / "evil.txt").exists()
    assert not (target / "ok.txt").exists()  # nothing is unpacked from a bad archive


def test_safe_extract_refuses_absolute_paths_and_links(tmp_path: Path) -> None:
    absolute = _tar(tmp_path / "abs.tar", {str(tmp_path / "abs.txt"): b"x"})
    with pytest.raises(OSError):
        safe_extract(absolute, tmp_path / "out1")
    link = tmp_path / "link.tar"
    with tarfile.open(link, "w") as tar:
        info = tarfile.TarInfo("innocent")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(OSError):
        safe_extract(link, tmp_path / "out2")


def test_safe_extract_normal_member(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "good.tar", {"data/dev/a.csv": b"q,a,b,c,d,A\n", "top.txt": b"hi"})
    safe_extract(archive, tmp_path / "out")
    assert (tmp_path / "out" / "data" / "dev" / "a.csv").read_bytes() == b"q,a,b,c,d,A\n"
    assert (tmp_path / "out" / "top.txt").read_text() == "hi"
