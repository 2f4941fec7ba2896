"""Where scenario data comes from: a mirror folder, a local file, the data cache, or the network.

Two ways to name data:

- built-in scenarios name files by their path inside a canonical archive
  (``mmlu/test/x_test.csv``) and call :meth:`DataLocator.locate`: the mirror is tried first,
  then the data cache, then the canonical archive is downloaded once into the cache;
- user-defined scenarios name data by URI in a :class:`DataSource` (a local path, ``http(s)://``,
  or ``s3://`` and any other fsspec URL) and call :meth:`DataLocator.fetch`. ``http(s)`` data is
  downloaded once into the cache, checked against an optional SHA-256, and archives are
  unpacked safely; fsspec URLs are streamed (``pip install 'pytest-llmeval[s3]'`` for S3).

The mirror (``--llmeval-data-dir`` or ``$LLMEVAL_DATA_DIR``) stands in for the network: a
remote source of scenario ``quiz`` named ``.../quiz.csv`` is read from ``<mirror>/quiz/quiz.csv``
when that file exists. ``LLMEVAL_OFFLINE=1`` forbids every download, so a missing file fails
at once with a message saying where it was expected.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tarfile
import tempfile
import urllib.parse
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from filelock import FileLock

from pytest_llmeval.errors import ConfigError, DataNotFoundError
from pytest_llmeval.paths import user_cache_dir
from pytest_llmeval.retry_policy import RetryPolicy
from pytest_llmeval.scenarios.archives import is_safe_relative, safe_extract
from pytest_llmeval.scenarios.downloads import (
    ChecksumMismatchError,
    file_sha256,
    http_download,
    verify_bytes,
    verify_file,
)

log = logging.getLogger("pytest_llmeval.data")

DATA_DIR_ENV = "LLMEVAL_DATA_DIR"
OFFLINE_ENV = "LLMEVAL_OFFLINE"
DOWNLOADS = RetryPolicy(retries=4, backoff=1.0, timeout=60.0)
LOCAL_SCHEMES = ("", "file", "local")
HTTP_SCHEMES = ("http", "https")
_SHA256 = re.compile(r"^(?:sha256:)?([0-9a-fA-F]{64})$", re.IGNORECASE)


def downloads_disabled() -> bool:
    """``LLMEVAL_OFFLINE`` set to anything but empty, ``0``, ``false`` or ``no``."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no")


@dataclass(frozen=True)
class DataArchive:
    """A canonical download: ``url`` unpacks so that ``member_root`` maps to ``local_root``."""

    url: str
    local_root: str
    member_root: str
    sha256: str | None = None


@dataclass(frozen=True)
class DataSource:
    """A user scenario's data: where it lives, and how to check and unpack it.

    ``member`` names the file inside an archive (tar, tar.gz, zip) that ``uri`` points to;
    ``storage_options`` go to fsspec (``endpoint_url``, credentials, ...) and are never logged;
    ``mirror_path`` overrides where the file is looked for in the mirror.
    """

    uri: str
    sha256: str | None = None
    member: str | None = None
    storage_options: Mapping[str, Any] = field(default_factory=dict, hash=False)
    mirror_path: str | None = None

    def __post_init__(self) -> None:
        if not self.uri or not isinstance(self.uri, str):
            raise ConfigError("needs a path or URI such as quiz.csv or https://host/quiz.csv", field="uri")
        if self.sha256 is not None:
            match = _SHA256.match(str(self.sha256).strip())
            if match is None:
                raise ConfigError(f"{self.sha256!r} is not a SHA-256 (64 hexadecimal digits)", field="sha256")
            object.__setattr__(self, "sha256", match.group(1).lower())
        if self.member is not None and not is_safe_relative(self.member):
            raise ConfigError(f"{self.member!r} must be a relative path inside the archive", field="member")
        if self.mirror_path is not None and not is_safe_relative(self.mirror_path):
            raise ConfigError(f"{self.mirror_path!r} must be a relative path inside the mirror",
                              field="mirror_path")

    @property
    def scheme(self) -> str:
        if re.match(r"^[A-Za-z]:[\\/]", self.uri):  # a Windows drive, not a URL scheme
            return ""
        return urllib.parse.urlsplit(self.uri).scheme.lower()

    @property
    def is_local(self) -> bool:
        return self.scheme in LOCAL_SCHEMES

    @property
    def local_path(self) -> Path:
        """The file a local source names (``file://`` URIs and plain paths)."""
        if self.scheme in ("file", "local"):
            return Path(urllib.parse.unquote(urllib.parse.urlsplit(self.uri).path))
        return Path(self.uri).expanduser()

    @property
    def file_name(self) -> str:
        """The data file's own name: the archive member's, else the URI path's last part."""
        if self.member:
            return PurePosixPath(self.member).name
        path = urllib.parse.urlsplit(self.uri).path if not self.is_local else str(self.local_path)
        return PurePosixPath(path.replace("\\", "/")).name or "data"

    def mirror_relative(self, scenario: str) -> str:
        """Where the mirror holds this data: ``mirror_path``, else ``<scenario>/<file name>``."""
        return self.mirror_path or f"{scenario}/{self.file_name}"

    @property
    def display(self) -> str:
        """The URI for messages, without a password or a query string (pre-signed URLs)."""
        if self.is_local:
            return str(self.local_path)
        parts = urllib.parse.urlsplit(self.uri)
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        if parts.username:
            netloc = f"{parts.username}@{netloc}"
        return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass(frozen=True)
class FetchedData:
    """A data file's bytes and where they came from (for messages such as ``row 3 of ...``)."""

    content: bytes
    origin: str


@dataclass
class DataLocator:
    """Resolves scenario data to bytes on this machine, downloading when it must and may."""

    mirror: Path | None = None
    cache: Path | None = None
    downloads: RetryPolicy = DOWNLOADS

    @classmethod
    def from_settings(cls, data_dir: str | None) -> DataLocator:
        mirror = data_dir or os.environ.get(DATA_DIR_ENV)
        return cls(mirror=Path(mirror).expanduser().resolve() if mirror else None,
                   cache=user_cache_dir() / "data")

    # --- built-in scenarios: paths inside a canonical archive --------------------------------------

    def locate(self, relative: str, archive: DataArchive | None = None) -> Path:
        return self._locate(relative, archive, folder=False)

    def locate_folder(self, relative: str, archive: DataArchive | None = None) -> Path:
        """A folder inside a canonical archive (a data set kept as one file per row, as MATH's)."""
        return self._locate(relative, archive, folder=True)

    def _locate(self, relative: str, archive: DataArchive | None, folder: bool) -> Path:
        kind = "data folder" if folder else "data file"
        candidates = [base / relative for base in (self.mirror, self.cache) if base is not None]
        for candidate in candidates:
            if candidate.is_dir() if folder else candidate.is_file():
                return candidate
        failure = "no download source is known"
        if archive is not None and self.cache is not None:
            if downloads_disabled():
                failure = f"downloads are off ({OFFLINE_ENV}=1)"
            else:
                try:
                    self._download_archive(archive)
                except (OSError, tarfile.TarError, zipfile.BadZipFile, DataNotFoundError) as exc:
                    failure = f"downloading {archive.url} failed ({exc})"
                else:
                    target = self.cache / relative
                    if target.is_dir() if folder else target.is_file():
                        return target
                    failure = f"{archive.url} did not contain {relative}"
        where = " or ".join(str(c) for c in candidates) or relative
        raise DataNotFoundError(
            f"{kind} {relative} not found: expected {where}; {failure}. Point --llmeval-data-dir "
            f"(or ${DATA_DIR_ENV}) at a mirror folder that holds {relative}."
        )

    def _download_archive(self, archive: DataArchive) -> None:
        assert self.cache is not None
        self.cache.mkdir(parents=True, exist_ok=True)
        # The lock lives beside the cache so that a failed download leaves the cache untouched.
        with FileLock(str(self.cache.with_name(f"{self.cache.name}.{archive.local_root}.lock"))):
            log.info("downloading %s into %s", archive.url, self.cache)
            with tempfile.TemporaryDirectory(dir=self.cache) as tmp:
                file = Path(tmp) / "download"
                http_download(archive.url, file, archive.sha256, self.downloads)
                unpacked = Path(tmp) / "unpacked"
                safe_extract(file, unpacked)
                source = unpacked / archive.member_root
                target = self.cache / archive.local_root
                if target.exists():
                    shutil.rmtree(target)
                shutil.move(str(source), str(target))

    # --- user scenarios: data sources named by URI ------------------------------------------------

    def fetch(self, source: DataSource, scenario: str) -> FetchedData:
        """The bytes of ``source`` for ``scenario``: mirror first, then the source itself."""
        relative = source.mirror_relative(scenario)
        if not source.is_local and self.mirror is not None:
            mirrored = self.mirror / relative
            if mirrored.is_file():
                content = mirrored.read_bytes()
                if not source.member:  # the checksum is of what the URI names, the archive itself
                    verify_bytes(content, source.sha256, str(mirrored))
                return FetchedData(content, str(mirrored))
        if source.is_local:
            return self._fetch_local(source, scenario)
        if source.scheme in HTTP_SCHEMES or source.member:
            return self._fetch_cached(source, scenario)
        return self._stream(source, scenario)

    def _fetch_local(self, source: DataSource, scenario: str) -> FetchedData:
        path = source.local_path
        if not path.is_file():
            raise DataNotFoundError(
                f"data file {path} for scenario {scenario} not found; create it, or correct the path "
                f"(a relative path is read from the folder of the file that declares the scenario)")
        if not source.member:
            content = path.read_bytes()
            verify_bytes(content, source.sha256, str(path))
            return FetchedData(content, str(path))
        info = path.stat()
        key = f"local|{path.resolve()}|{info.st_size}|{info.st_mtime_ns}"
        folder = self._source_folder(key, scenario, source)
        with FileLock(str(folder / ".lock")):
            if not (folder / "extracted").is_dir():
                verify_file(path, source.sha256, str(path))
            member = self._extract_member(path, folder, source)
        return FetchedData(member.read_bytes(), f"{path}!{source.member}")

    def _fetch_cached(self, source: DataSource, scenario: str) -> FetchedData:
        """``http(s)`` data (and archives at any URL): downloaded once into the data cache."""
        folder = self._source_folder(f"url|{source.uri}", scenario, source)
        download = folder / source_download_name(source)
        with FileLock(str(folder / ".lock")):
            if download.is_file() and source.sha256 and file_sha256(download) != source.sha256:
                log.info("cached %s does not match its sha256; downloading it again", download)
                download.unlink()
                shutil.rmtree(folder / "extracted", ignore_errors=True)
            if not download.is_file():
                if downloads_disabled():
                    raise self._missing(source, scenario, [download], f"downloads are off ({OFFLINE_ENV}=1)",
                                        offline=True)
                try:
                    self._download(source, download)
                except ChecksumMismatchError:
                    raise
                except (OSError, DataNotFoundError) as exc:
                    raise self._missing(source, scenario, [download],
                                        f"downloading {source.display} failed ({exc})") from exc
            if not source.member:
                return FetchedData(download.read_bytes(), source.display)
            member = self._extract_member(download, folder, source)
        return FetchedData(member.read_bytes(), f"{source.display}!{source.member}")

    def _stream(self, source: DataSource, scenario: str) -> FetchedData:
        """fsspec URLs (``s3://``, ``gs://``, ...) are read straight from the store, never cached."""
        if downloads_disabled():
            raise self._missing(source, scenario, [], f"downloads are off ({OFFLINE_ENV}=1)", offline=True)
        try:
            content = _fsspec_read(source)
        except OSError as exc:
            raise self._missing(source, scenario, [], f"reading {source.display} failed ({exc})") from exc
        verify_bytes(content, source.sha256, source.display)
        return FetchedData(content, source.display)

    def _download(self, source: DataSource, target: Path) -> None:
        log.info("downloading %s into %s", source.display, target.parent)
        if source.scheme in HTTP_SCHEMES:
            http_download(source.uri, target, source.sha256, self.downloads)
            return
        tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
        try:
            content = _fsspec_read(source)
            verify_bytes(content, source.sha256, source.display)
            tmp.write_bytes(content)
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)

    def _source_folder(self, key: str, scenario: str, source: DataSource) -> Path:
        if self.cache is None:
            raise self._missing(source, scenario, [], "there is no data cache to download into")
        folder = self.cache / "sources" / hashlib.sha256(key.encode()).hexdigest()[:20]
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _extract_member(self, archive: Path, folder: Path, source: DataSource) -> Path:
        """Unpack ``archive`` once into ``folder/extracted`` (caller holds the lock)."""
        assert source.member is not None
        extracted = folder / "extracted"
        if not extracted.is_dir():
            staging = folder / f".extracting.{os.getpid()}"
            shutil.rmtree(staging, ignore_errors=True)
            try:
                safe_extract(archive, staging)
            except (OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
                shutil.rmtree(staging, ignore_errors=True)
                raise DataNotFoundError(f"cannot unpack {source.display}: {exc}") from exc
            staging.replace(extracted)
        member = extracted / source.member
        if not member.is_file():
            names = sorted(str(p.relative_to(extracted)) for p in extracted.rglob("*") if p.is_file())
            shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
            raise DataNotFoundError(f"{source.display} has no member {source.member!r} (it holds: {shown})")
        return member

    def _missing(self, source: DataSource, scenario: str, tried: list[Path], failure: str,
                 offline: bool = False) -> DataNotFoundError:
        relative = source.mirror_relative(scenario)
        expected = [self.mirror / relative] if self.mirror is not None else []
        where = " or ".join(str(p) for p in [*expected, *tried])
        where = f"expected {where}; " if where else ""
        if self.mirror is not None:
            fix = f"Put the file at {self.mirror / relative}"
        else:
            fix = f"Point --llmeval-data-dir (or ${DATA_DIR_ENV}) at a mirror folder holding {relative}"
        fix += f", or unset {OFFLINE_ENV} to download it." if offline else "."
        return DataNotFoundError(f"data file {relative} for scenario {scenario} ({source.display}) not found: "
                                 f"{where}{failure}. {fix}")


def source_download_name(source: DataSource) -> str:
    """The cached download's file name: the URI path's last part (archives keep their suffix)."""
    name = PurePosixPath(urllib.parse.urlsplit(source.uri).path).name
    return name or "download"


# --- fsspec -------------------------------------------------------------------------------


def _fsspec_read(source: DataSource) -> bytes:
    try:
        import fsspec
    except ImportError as exc:
        raise DataNotFoundError(f"reading {source.display} needs fsspec: pip install 'pytest-llmeval[s3]'") from exc
    try:
        with fsspec.open(source.uri, "rb", **dict(source.storage_options)) as handle:
            return bytes(handle.read())
    except ImportError as exc:  # fsspec names the missing back end (s3fs, gcsfs, ...)
        raise DataNotFoundError(f"reading {source.display} needs a package fsspec could not import ({exc}); "
                                f"for s3:// install the extra: pip install 'pytest-llmeval[s3]'") from exc
    except Exception as exc:  # back ends raise their own types (botocore, aiohttp, ValueError, ...)
        raise OSError(f"{type(exc).__name__}: {exc}") from exc
