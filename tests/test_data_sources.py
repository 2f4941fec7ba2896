"""Data sources: local paths, http(s) downloads with checksums, archives, the mirror, S3, offline."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import logging
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.errors import ConfigError, DataNotFoundError
from pytest_llmeval.http_session import RetryPolicy
from pytest_llmeval.scenarios.data import (
    OFFLINE_ENV,
    ChecksumMismatchError,
    DataArchive,
    DataLocator,
    DataSource,
    safe_extract,
)
from tests import data_servers
from tests.data_servers import FileServer, MotoS3

# Fixtures shared with test_custom_e2e.py (real loopback servers).
aws_env, file_server, moto_s3 = data_servers.aws_env, data_servers.file_server, data_servers.moto_s3

CSV = b"question,answer\nWhat is 2+2?,4\n"
SHA = hashlib.sha256(CSV).hexdigest()


@pytest.fixture(autouse=True)
def _online(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(OFFLINE_ENV, raising=False)


def locator(tmp_path: Path, mirror: bool = False) -> DataLocator:
    return DataLocator(mirror=tmp_path / "mirror" if mirror else None, cache=tmp_path / "cache")


def tar_bytes(members: dict[str, bytes], gzipped: bool = True) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if gzipped else "w") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        for name, payload in members.items():
            zipped.writestr(name, payload)
    return buffer.getvalue()


# --- DataSource ------------------------------------------------------------------------------------


def test_source_kinds_and_names() -> None:
    assert DataSource("quiz.csv").is_local
    assert DataSource("file:///data/quiz.csv").local_path == Path("/data/quiz.csv")
    web = DataSource("https://user:secret@example.org/d/quiz.csv?X-Amz-Signature=abc")
    assert not web.is_local and web.file_name == "quiz.csv"
    assert "secret" not in web.display and "Signature" not in web.display
    assert DataSource("s3://bucket/dir/quiz.jsonl").mirror_relative("quiz") == "quiz/quiz.jsonl"
    assert DataSource("https://h/a.tar.gz", member="x/q.csv").mirror_relative("s") == "s/q.csv"
    assert DataSource("https://h/a.csv", mirror_path="elsewhere/a.csv").mirror_relative("s") == "elsewhere/a.csv"
    assert DataSource("q.csv", sha256="SHA256:" + SHA.upper()).sha256 == SHA


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"uri": "q.csv", "sha256": "abc"}, "sha256"),
    ({"uri": "q.csv", "member": "../etc/passwd"}, "member"),
    ({"uri": "q.csv", "member": "/etc/passwd"}, "member"),
    ({"uri": "q.csv", "mirror_path": "../x.csv"}, "mirror_path"),
    ({"uri": ""}, "uri"),
])
def test_source_validation_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        DataSource(**kwargs)
    assert excinfo.value.field == field


# --- local files ----------------------------------------------------------------------------------


def test_local_file_and_checksum(tmp_path: Path) -> None:
    (tmp_path / "q.csv").write_bytes(CSV)
    data = locator(tmp_path).fetch(DataSource(str(tmp_path / "q.csv"), sha256=SHA), "quiz")
    assert data.content == CSV and data.origin == str(tmp_path / "q.csv")
    assert locator(tmp_path).fetch(DataSource((tmp_path / "q.csv").as_uri()), "quiz").content == CSV
    with pytest.raises(ChecksumMismatchError, match=f"expected sha256 {'0' * 64}, got {SHA}"):
        locator(tmp_path).fetch(DataSource(str(tmp_path / "q.csv"), sha256="0" * 64), "quiz")


def test_missing_local_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match=r"data file .*nope\.csv for scenario quiz not found"):
        locator(tmp_path).fetch(DataSource(str(tmp_path / "nope.csv")), "quiz")


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_local_archive_member(tmp_path: Path, kind: str) -> None:
    members = {"data/q.csv": CSV, "data/other.txt": b"x"}
    archive = tmp_path / f"bundle.{kind}"
    archive.write_bytes(tar_bytes(members) if kind == "tar.gz" else zip_bytes(members))
    source = DataSource(str(archive), member="data/q.csv", sha256=hashlib.sha256(archive.read_bytes()).hexdigest())
    assert locator(tmp_path).fetch(source, "quiz").content == CSV
    with pytest.raises(DataNotFoundError, match=r"has no member 'data/missing.csv' \(it holds: data/other.txt"):
        locator(tmp_path).fetch(DataSource(str(archive), member="data/missing.csv"), "quiz")


# --- http(s) -------------------------------------------------------------------------------------


def test_http_download_once_with_good_checksum(tmp_path: Path, file_server: FileServer) -> None:
    (file_server.root / "q.csv").write_bytes(CSV)
    source = DataSource(f"{file_server.url}/q.csv", sha256=SHA)
    first = locator(tmp_path).fetch(source, "quiz")
    second = locator(tmp_path).fetch(source, "quiz")
    assert first.content == second.content == CSV
    assert file_server.requests == ["/q.csv"]  # downloaded once, then read from the data cache
    assert [p.name for p in (tmp_path / "cache").rglob("q.csv")] == ["q.csv"]


def test_http_bad_checksum_keeps_nothing(tmp_path: Path, file_server: FileServer) -> None:
    (file_server.root / "q.csv").write_bytes(CSV)
    source = DataSource(f"{file_server.url}/q.csv", sha256="1" * 64)
    with pytest.raises(ChecksumMismatchError) as excinfo:
        locator(tmp_path).fetch(source, "quiz")
    assert f"expected sha256 {'1' * 64}, got {SHA}" in str(excinfo.value)
    assert "update sha256" in str(excinfo.value)
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and p.name != ".lock"]
    with pytest.raises(ChecksumMismatchError):  # and it is not served from a cache next time either
        locator(tmp_path).fetch(source, "quiz")
    assert len(file_server.requests) == 2


def test_cached_copy_with_a_new_checksum_is_downloaded_again(tmp_path: Path, file_server: FileServer) -> None:
    (file_server.root / "q.csv").write_bytes(b"old\n")
    locator(tmp_path).fetch(DataSource(f"{file_server.url}/q.csv"), "quiz")
    (file_server.root / "q.csv").write_bytes(CSV)
    assert locator(tmp_path).fetch(DataSource(f"{file_server.url}/q.csv", sha256=SHA), "quiz").content == CSV
    assert len(file_server.requests) == 2


@pytest.mark.parametrize("kind", ["tar.gz", "tar", "zip"])
def test_http_archive_is_unpacked_once(tmp_path: Path, file_server: FileServer, kind: str) -> None:
    members = {"bundle/train.csv": b"q,a\nx,y\n", "bundle/test.csv": CSV}
    payload = zip_bytes(members) if kind == "zip" else tar_bytes(members, gzipped=kind == "tar.gz")
    (file_server.root / f"bundle.{kind}").write_bytes(payload)
    checksum = hashlib.sha256(payload).hexdigest()
    for member, expected in (("bundle/test.csv", CSV), ("bundle/train.csv", b"q,a\nx,y\n")):
        source = DataSource(f"{file_server.url}/bundle.{kind}", sha256=checksum, member=member)
        assert locator(tmp_path).fetch(source, "quiz").content == expected
    assert len(file_server.requests) == 1


def test_http_malicious_archive_is_refused(tmp_path: Path, file_server: FileServer) -> None:
    (file_server.root / "evil.tar.gz").write_bytes(tar_bytes({"ok.csv": CSV, "../../escaped.csv": b"gotcha"}))
    with pytest.raises(DataNotFoundError, match=r"cannot unpack .*unsafe path in archive: \.\./\.\./escaped\.csv"):
        locator(tmp_path).fetch(DataSource(f"{file_server.url}/evil.tar.gz", member="ok.csv"), "quiz")
    assert not list(tmp_path.rglob("escaped.csv"))
    assert not list(tmp_path.rglob("extracted"))


def test_http_error_says_what_failed(tmp_path: Path, file_server: FileServer) -> None:
    with pytest.raises(DataNotFoundError) as excinfo:
        locator(tmp_path, mirror=True).fetch(DataSource(f"{file_server.url}/absent.csv"), "quiz")
    message = str(excinfo.value)
    assert "downloading" in message and "404" in message
    assert str(tmp_path / "mirror" / "quiz" / "absent.csv") in message  # where a copy would be read from


def test_http_server_errors_and_dropped_connections_are_retried(tmp_path: Path, file_server: FileServer,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    """503, 429 and a dropped connection, then the file: downloaded, each retry logged."""
    (file_server.root / "q.csv").write_bytes(CSV)
    file_server.fail_next = [503, 429, 0]
    fast = DataLocator(cache=tmp_path / "cache", downloads=RetryPolicy(retries=3, backoff=0.01, timeout=5))
    with caplog.at_level(logging.WARNING, logger="pytest_llmeval.data"):
        assert fast.fetch(DataSource(f"{file_server.url}/q.csv", sha256=SHA), "quiz").content == CSV
    assert file_server.requests == ["/q.csv"] * 4
    retries = [r.getMessage() for r in caplog.records if r.name == "pytest_llmeval.data"
               and r.getMessage().startswith("retrying")]
    assert retries[0].startswith(f"retrying GET {file_server.url}/q.csv after HTTP 503 (attempt 2 of 4)")
    assert "HTTP 429" in retries[1] and "connection dropped" in retries[2]


def test_http_retries_exhausted_name_the_url_and_the_last_status(tmp_path: Path, file_server: FileServer) -> None:
    """Still 503 after the retries: one line naming the URL, the attempts and the status; nothing kept."""
    (file_server.root / "q.csv").write_bytes(CSV)
    file_server.fail_next = [503] * 10
    fast = DataLocator(cache=tmp_path / "cache", downloads=RetryPolicy(retries=2, backoff=0.01, timeout=5))
    with pytest.raises(DataNotFoundError) as excinfo:
        fast.fetch(DataSource(f"{file_server.url}/q.csv?signature=s3cr3t"), "quiz")
    message = str(excinfo.value)
    assert f"GET {file_server.url}/q.csv failed after 3 attempts: HTTP 503" in message
    assert "s3cr3t" not in message and "\n" not in message
    assert len(file_server.requests) == 3
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and p.name != ".lock"]


# --- the mirror and offline mode ------------------------------------------------------------------


def test_mirror_serves_remote_sources_without_the_network(tmp_path: Path, file_server: FileServer) -> None:
    (tmp_path / "mirror" / "quiz").mkdir(parents=True)
    (tmp_path / "mirror" / "quiz" / "q.csv").write_bytes(CSV)
    (tmp_path / "mirror" / "custom").mkdir()
    (tmp_path / "mirror" / "custom" / "member.csv").write_bytes(b"member\n")
    found = locator(tmp_path, mirror=True).fetch(DataSource(f"{file_server.url}/q.csv", sha256=SHA), "quiz")
    assert found.content == CSV and found.origin == str(tmp_path / "mirror" / "quiz" / "q.csv")
    s3 = DataSource("s3://bucket/big.tar.gz", member="x/member.csv", mirror_path="custom/member.csv")
    assert locator(tmp_path, mirror=True).fetch(s3, "quiz").content == b"member\n"
    assert file_server.requests == []
    with pytest.raises(ChecksumMismatchError):  # a stale mirror copy is caught too
        locator(tmp_path, mirror=True).fetch(DataSource(f"{file_server.url}/q.csv", sha256="2" * 64), "quiz")


def test_offline_names_the_expected_file_and_the_fix(tmp_path: Path, file_server: FileServer,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(OFFLINE_ENV, "1")
    (file_server.root / "q.csv").write_bytes(CSV)
    for uri in (f"{file_server.url}/q.csv", "s3://bucket/q.csv"):
        with pytest.raises(DataNotFoundError) as excinfo:
            locator(tmp_path, mirror=True).fetch(DataSource(uri), "quiz")
        message = str(excinfo.value)
        assert message.startswith("data file quiz/q.csv for scenario quiz")
        assert f"downloads are off ({OFFLINE_ENV}=1)" in message
        assert f"Put the file at {tmp_path / 'mirror' / 'quiz' / 'q.csv'}" in message
        assert f"unset {OFFLINE_ENV}" in message
    with pytest.raises(DataNotFoundError, match="Point --llmeval-data-dir"):  # no mirror configured
        locator(tmp_path).fetch(DataSource(f"{file_server.url}/q.csv"), "quiz")
    assert file_server.requests == []


def test_offline_allows_local_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(OFFLINE_ENV, "1")
    (tmp_path / "q.csv").write_bytes(CSV)
    assert locator(tmp_path).fetch(DataSource(str(tmp_path / "q.csv")), "quiz").content == CSV


def test_offline_locate_does_not_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          file_server: FileServer) -> None:
    monkeypatch.setenv(OFFLINE_ENV, "true")
    archive = DataArchive(f"{file_server.url}/data.tar", "mmlu", "data")
    with pytest.raises(DataNotFoundError, match=r"mmlu/dev/x_dev\.csv not found: .*downloads are off"):
        DataLocator(mirror=tmp_path / "m", cache=tmp_path / "c").locate("mmlu/dev/x_dev.csv", archive)
    assert file_server.requests == []


def test_locate_checks_the_archive_checksum(tmp_path: Path, file_server: FileServer) -> None:
    payload = tar_bytes({"data/dev/x_dev.csv": CSV}, gzipped=False)
    (file_server.root / "data.tar").write_bytes(payload)
    bad = DataArchive(f"{file_server.url}/data.tar", "mmlu", "data", sha256="3" * 64)
    with pytest.raises(DataNotFoundError, match="checksum mismatch"):
        DataLocator(cache=tmp_path / "c").locate("mmlu/dev/x_dev.csv", bad)
    good = DataArchive(f"{file_server.url}/data.tar", "mmlu", "data", sha256=hashlib.sha256(payload).hexdigest())
    assert DataLocator(cache=tmp_path / "c").locate("mmlu/dev/x_dev.csv", good).read_bytes() == CSV


# --- fsspec URLs ----------------------------------------------------------------------------------


def test_fsspec_memory_url_is_streamed(tmp_path: Path) -> None:
    fsspec = pytest.importorskip("fsspec")
    with fsspec.open("memory://llmeval-test/q.csv", "wb") as handle:
        handle.write(CSV)
    assert locator(tmp_path).fetch(DataSource("memory://llmeval-test/q.csv", sha256=SHA), "quiz").content == CSV
    assert not (tmp_path / "cache").exists()  # streamed, not cached
    with pytest.raises(ChecksumMismatchError):
        locator(tmp_path).fetch(DataSource("memory://llmeval-test/q.csv", sha256="4" * 64), "quiz")
    with pytest.raises(DataNotFoundError, match=r"reading memory://llmeval-test/absent\.csv failed"):
        locator(tmp_path).fetch(DataSource("memory://llmeval-test/absent.csv"), "quiz")


def test_fsspec_protocol_without_its_package_says_what_to_install(tmp_path: Path) -> None:
    pytest.importorskip("fsspec")
    if importlib.util.find_spec("gcsfs") is not None:
        pytest.skip("gcsfs is installed")
    with pytest.raises(DataNotFoundError, match=r"reading gs://bucket/q\.csv needs a package .*gcsfs"):
        locator(tmp_path).fetch(DataSource("gs://bucket/q.csv"), "quiz")
    with pytest.raises(DataNotFoundError, match=r"not found: reading nosuchproto://b/q\.csv failed \(ValueError"):
        locator(tmp_path).fetch(DataSource("nosuchproto://b/q.csv"), "quiz")


@pytest.mark.usefixtures("aws_env")
def test_s3_streamed_from_a_real_s3_server(tmp_path: Path, moto_s3: MotoS3) -> None:
    moto_s3.upload("llmeval-data", "quiz.csv", CSV)
    options = {"endpoint_url": moto_s3.endpoint_url}
    source = DataSource("s3://llmeval-data/quiz.csv", sha256=SHA, storage_options=options)
    assert locator(tmp_path).fetch(source, "quiz").content == CSV
    moto_s3.upload("llmeval-data", "bundle.zip", zip_bytes({"in/q.csv": CSV}))
    archived = DataSource("s3://llmeval-data/bundle.zip", member="in/q.csv", storage_options=options)
    assert locator(tmp_path).fetch(archived, "quiz").content == CSV
    with pytest.raises(DataNotFoundError, match=r"reading s3://llmeval-data/absent.csv failed"):
        locator(tmp_path).fetch(DataSource("s3://llmeval-data/absent.csv", storage_options=options), "quiz")


# --- safe extraction -------------------------------------------------------------------------------


def _write(tmp_path: Path, name: str, payload: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(payload)
    return path


def _tar_with(tmp_path: Path, configure: str) -> Path:
    path = tmp_path / f"{configure}.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("innocent.csv")
        if configure == "symlink":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        elif configure == "hardlink":
            info.type, info.linkname = tarfile.LNKTYPE, "../../outside"
        elif configure == "device":
            info.type = tarfile.CHRTYPE
        tar.addfile(info)
    return path


@pytest.mark.parametrize("configure", ["symlink", "hardlink", "device"])
def test_tar_links_and_devices_are_refused(tmp_path: Path, configure: str) -> None:
    with pytest.raises(OSError, match="unsafe"):
        safe_extract(_tar_with(tmp_path, configure), tmp_path / "out")
    assert not (tmp_path / "out" / "innocent.csv").exists()


@pytest.mark.parametrize("name", ["../escape.csv", "/abs/escape.csv", "a/../../escape.csv"])
def test_zip_escape_is_refused_before_anything_is_written(tmp_path: Path, name: str) -> None:
    archive = _write(tmp_path, "evil.zip", zip_bytes({"fine.csv": CSV, name: b"gotcha"}))
    with pytest.raises(OSError, match="unsafe path"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out" / "fine.csv").exists()
    assert not list(tmp_path.rglob("escape.csv"))


def test_zip_symlink_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        info = zipfile.ZipInfo("link.csv")
        info.external_attr = (0o120777 << 16)  # S_IFLNK
        zipped.writestr(info, "/etc/passwd")
    with pytest.raises(OSError, match="unsafe link"):
        safe_extract(_write(tmp_path, "link.zip", buffer.getvalue()), tmp_path / "out")


def test_gzipped_tar_and_zip_unpack(tmp_path: Path) -> None:
    members = {"d/q.csv": CSV, "top.txt": b"hi"}
    for name, payload in (("a.tar.gz", tar_bytes(members)), ("b.zip", zip_bytes(members))):
        out = tmp_path / f"out-{name}"
        safe_extract(_write(tmp_path, name, payload), out)
        assert (out / "d" / "q.csv").read_bytes() == CSV and (out / "top.txt").read_bytes() == b"hi"


def test_not_an_archive(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="neither a tar nor a zip"):
        safe_extract(_write(tmp_path, "page.html", b"<html>captive portal</html>"), tmp_path / "out")
