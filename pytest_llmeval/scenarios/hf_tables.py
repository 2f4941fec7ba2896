"""Hugging Face data sets as lists of row dicts, read with pyarrow (no ``datasets`` needed).

One split of one config is looked for, in order, as

1. the mirror's ``hf/<dataset>/<config>/<split>/``: a ``datasets`` ``save_to_disk`` folder (``state.json``
   naming its Arrow stream files), the layout the shared data mirror uses;
2. the data cache's ``hf/<dataset>/<config>/<split>/``: the Hub's parquet files of that split, kept there
   by an earlier download (``files.json`` lists them once all are in);
3. the Hub: the data set repository's ``<config>/<split>-*.parquet`` files, downloaded into the cache
   (``HF_ENDPOINT`` names another Hub, as for ``huggingface_hub``).

Rows can be read by position (``HFSplit.rows(indices)``), batch by batch, so picking a few rows of a
large training split (as a seeded shuffle does) never holds the whole split in memory.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_llmeval.errors import DataNotFoundError
from pytest_llmeval.scenarios.data import DATA_DIR_ENV, OFFLINE_ENV, DataLocator, downloads_disabled
from pytest_llmeval.scenarios.downloads import http_download

HUB_ENDPOINT_ENV = "HF_ENDPOINT"
HUB_ENDPOINT = "https://huggingface.co"
HUB_OFFLINE_ENVS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
ARROW, PARQUET = "arrow", "parquet"
_FILE_LIST = "files.json"


class HFTableError(DataNotFoundError):
    """A data file that is there but cannot be read as the table it should be."""


@dataclass(frozen=True)
class HFSplit:
    """One split's table files, in row order, and their format (``arrow`` stream or ``parquet``)."""

    dataset: str
    config: str
    split: str
    files: tuple[Path, ...]
    format: str

    def num_rows(self) -> int:
        """The split's row count (parquet from its metadata; Arrow streams are counted batch by batch)."""
        if self.format == PARQUET:
            return sum(_parquet(path).metadata.num_rows for path in self.files)
        return sum(len(batch) for _, batch in self._batches())

    def rows(self, indices: Sequence[int] | None = None) -> list[dict[str, Any]]:
        """Every row in order, or the rows at ``indices`` (0-based over the split) in the order given."""
        if indices is None:
            return [row for _, batch in self._batches() for row in batch.to_pylist()]
        wanted = sorted(set(indices))
        found: dict[int, dict[str, Any]] = {}
        position = 0
        for start, batch in self._batches(wanted):
            end = start + len(batch)
            local = []
            while position < len(wanted) and wanted[position] < end:
                local.append(wanted[position] - start)
                position += 1
            if local:
                found.update(zip((start + i for i in local), batch.take(local).to_pylist()))
            if position == len(wanted):
                break
        missing = [i for i in indices if i not in found]
        if missing:
            raise HFTableError(f"{self.display}: no row {missing[0]} (the split has fewer rows)")
        return [found[i] for i in indices]

    @property
    def display(self) -> str:
        return f"{self.dataset} ({self.config}, split {self.split}) in {self.files[0].parent}"

    def _batches(self, wanted: Sequence[int] = ()) -> Iterator[tuple[int, Any]]:
        """(first row, record batch) over the files; parquet row groups without a wanted row are skipped."""
        start = 0
        for path in self.files:
            if self.format == PARQUET:
                yield from _parquet_batches(path, start, wanted)
                start += _parquet(path).metadata.num_rows
                continue
            for batch in _arrow_batches(path):
                yield start, batch
                start += len(batch)


def locate_split(locator: DataLocator, dataset: str, config: str, split: str, *, hub_id: str | None = None,
                 revision: str = "main") -> HFSplit:
    """The split's files: the mirror's save_to_disk folder, the cache's parquet files, or a download
    (from the Hub repository ``hub_id``, ``dataset`` unless given, at ``revision``)."""
    relative = Path("hf", dataset, config, split)
    if locator.mirror is not None and (locator.mirror / relative).is_dir():
        return HFSplit(dataset, config, split, _save_to_disk_files(locator.mirror / relative), ARROW)
    cached = locator.cache / relative if locator.cache is not None else None
    if cached is not None and (cached / _FILE_LIST).is_file():
        return HFSplit(dataset, config, split, _listed_files(cached), PARQUET)
    expected = " or ".join(str(p) for p in (
        locator.mirror / relative if locator.mirror is not None else None, cached) if p is not None)
    offline = _offline_reason()
    if offline or cached is None:
        failure = offline or "there is no data cache to download into"
        where = f"expected a datasets save_to_disk folder at {expected}" if expected else f"expected {relative}"
        fix = (f"Point --llmeval-data-dir (or ${DATA_DIR_ENV}) at a mirror holding {relative}/"
               if locator.mirror is None else f"Put it at {locator.mirror / relative}/")
        raise DataNotFoundError(f"Hugging Face data set {dataset} ({config}, split {split}) not found: {where}; "
                                f"{failure}. {fix}")
    files = _download_parquet(locator, hub_id or dataset, config, split, revision, cached)
    return HFSplit(dataset, config, split, files, PARQUET)


def read_split(locator: DataLocator, dataset: str, config: str, split: str, *, hub_id: str | None = None,
               revision: str = "main") -> list[dict[str, Any]]:
    """Every row of the split, as dicts (a ``Translation`` feature is a dict per language)."""
    return locate_split(locator, dataset, config, split, hub_id=hub_id, revision=revision).rows()


def _offline_reason() -> str:
    if downloads_disabled():
        return f"downloads are off ({OFFLINE_ENV}=1)"
    for name in HUB_OFFLINE_ENVS:
        if os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no"):
            return f"downloads are off ({name}=1)"
    return ""


# --- reading ----------------------------------------------------------------------------------


def _save_to_disk_files(folder: Path) -> tuple[Path, ...]:
    """The Arrow files of a save_to_disk folder, in the order its ``state.json`` lists them."""
    state = folder / "state.json"
    if state.is_file():
        try:
            names = [entry["filename"] for entry in json.loads(state.read_text(encoding="utf-8"))["_data_files"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise HFTableError(f"{state}: not a datasets save_to_disk state file ({type(exc).__name__}: {exc})") \
                from None
    else:
        names = sorted(p.name for p in folder.glob("*.arrow"))
    files = tuple(folder / name for name in names)
    missing = [p for p in files if not p.is_file()]
    if not files or missing:
        raise HFTableError(f"{folder}: a datasets save_to_disk folder needs its .arrow files; "
                           f"{'missing ' + str(missing[0]) if missing else 'there are none'}")
    return files


def _listed_files(folder: Path) -> tuple[Path, ...]:
    try:
        names = json.loads((folder / _FILE_LIST).read_text(encoding="utf-8"))
        return tuple(folder / str(name) for name in names)
    except (ValueError, TypeError) as exc:
        raise HFTableError(f"{folder / _FILE_LIST}: not a list of parquet files ({exc})") from None


def _arrow_batches(path: Path) -> Iterator[Any]:
    import pyarrow as pa

    try:
        with pa.memory_map(str(path)) as source:
            yield from pa.ipc.open_stream(source)
    except (pa.ArrowInvalid, OSError) as exc:
        raise HFTableError(f"{path}: not an Arrow stream file as datasets writes them ({_first_line(exc)})") \
            from None


def _parquet(path: Path) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(str(path))
    except (pa.ArrowInvalid, OSError) as exc:
        raise HFTableError(f"{path}: not a parquet file ({_first_line(exc)})") from None


def _parquet_batches(path: Path, start: int, wanted: Sequence[int]) -> Iterator[tuple[int, Any]]:
    import bisect

    import pyarrow as pa

    file = _parquet(path)
    for group in range(file.num_row_groups):
        size = file.metadata.row_group(group).num_rows
        first = bisect.bisect_left(wanted, start)
        if not wanted or (first < len(wanted) and wanted[first] < start + size):
            try:
                table = file.read_row_group(group)
            except (pa.ArrowInvalid, OSError) as exc:
                raise HFTableError(f"{path}: row group {group} cannot be read ({_first_line(exc)})") from None
            for batch in table.to_batches():
                yield start, batch
                start += len(batch)
        else:
            start += size


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


# --- downloading --------------------------------------------------------------------------------


def _download_parquet(locator: DataLocator, dataset: str, config: str, split: str, revision: str,
                      folder: Path) -> tuple[Path, ...]:
    """The Hub's ``<config>/<split>-*.parquet`` files of ``dataset`` at ``revision``, into ``folder``."""
    from filelock import FileLock

    endpoint = os.environ.get(HUB_ENDPOINT_ENV, HUB_ENDPOINT).rstrip("/")
    repo = urllib.parse.quote(dataset, safe="/")
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder.with_name(f"{folder.name}.lock"))):
        if (folder / _FILE_LIST).is_file():
            return _listed_files(folder)
        listing_url = f"{endpoint}/api/datasets/{repo}/tree/{urllib.parse.quote(revision)}/{urllib.parse.quote(config)}"
        listing = folder / ".tree.json"
        try:
            http_download(listing_url, listing, None, locator.downloads)
            entries = json.loads(listing.read_text(encoding="utf-8"))
        except (OSError, ValueError, DataNotFoundError) as exc:
            raise DataNotFoundError(f"Hugging Face data set {dataset} ({config}, split {split}): listing "
                                    f"{listing_url} failed ({_first_line(exc)})") from exc
        finally:
            listing.unlink(missing_ok=True)
        paths = sorted(str(e["path"]) for e in entries if isinstance(e, dict) and e.get("type") == "file"
                       and Path(str(e.get("path", ""))).name.startswith(f"{split}-")
                       and str(e["path"]).endswith(".parquet"))
        if not paths:
            raise DataNotFoundError(f"Hugging Face data set {dataset} has no {config}/{split}-*.parquet files at "
                                    f"revision {revision} ({listing_url})")
        names = []
        for path in paths:
            name = Path(path).name
            url = f"{endpoint}/datasets/{repo}/resolve/{urllib.parse.quote(revision)}/{urllib.parse.quote(path)}"
            try:
                http_download(url, folder / name, None, locator.downloads)
            except (OSError, DataNotFoundError) as exc:
                raise DataNotFoundError(f"Hugging Face data set {dataset} ({config}, split {split}): downloading "
                                        f"{url} failed ({_first_line(exc)})") from exc
            names.append(name)
        (folder / _FILE_LIST).write_text(json.dumps(names), encoding="utf-8")
    return tuple(folder / name for name in names)


def shuffled_order(length: int, seed: int) -> list[int]:
    """The row positions of ``datasets``' ``Dataset.shuffle(seed=seed)`` over ``length`` rows:
    ``np.random.default_rng(seed).permutation(length)``, as ``datasets`` draws it."""
    import numpy as np

    return [int(i) for i in np.random.default_rng(seed).permutation(length)]
