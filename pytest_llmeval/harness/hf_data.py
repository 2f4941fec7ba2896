"""lm-eval's data offline: the mirror's ``save_to_disk`` copies stand in for the Hub.

lm-eval's tasks call ``datasets.load_dataset(path=..., name=..., **dataset_kwargs)`` while they
are built, and offer no hook to hand them a dataset. While tasks are built,
:func:`mirrored_datasets` answers those calls from ``MIRROR/hf/DATASET_PATH/DATASET_NAME (or default)/SPLIT/``
(the layout of the shared data mirror) and hands the rest to ``datasets`` (the Hub, or its
cache). A split neither place has fails with one line naming the dataset, the split and the
folder where it was expected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pytest_llmeval.errors import DataNotFoundError
from pytest_llmeval.scenarios.data import DataLocator

DEFAULT_CONFIG = "default"  # the folder of a dataset without a config name


def mirror_folder(locator: DataLocator, path: str, name: str | None) -> Path | None:
    """The mirror's folder of a dataset's config (holding one folder per split), if any."""
    if locator.mirror is None:
        return None
    folder = locator.mirror / "hf" / path / (name or DEFAULT_CONFIG)
    return folder if folder.is_dir() else None


def expected_at(locator: DataLocator, path: str, name: str | None, split: str) -> str:
    if locator.mirror is None:
        return (f"no data mirror is set (--llmeval-data-dir); a mirror would hold it at "
                f"hf/{path}/{name or DEFAULT_CONFIG}/{split}/")
    return f"expected at {locator.mirror / 'hf' / path / (name or DEFAULT_CONFIG) / split}/"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _splits_class() -> type:
    import datasets

    class MirroredSplits(datasets.DatasetDict):
        """The mirror's splits of one dataset; a split it lacks comes from the Hub, else it is
        an empty stand-in noted in :attr:`missing`: lm-eval reads every split a task names when
        it builds the task (a zero-shot run reads the few-shot split), and
        :func:`check_needed` fails only when the run needs a missing one."""

        where: Callable[[str], str]
        fetch: Callable[[str], Any]
        missing: dict[str, str]  # this dataset's
        noted: dict[str, str]  # the whole block's (see mirrored_datasets)

        def __missing__(self, split: str) -> Any:
            try:
                data = self.fetch(split)
            except Exception as exc:  # the Hub is unreachable, or has no such split
                self.missing[split] = f"{self.where(split)} ({_first_line(exc)})"
                self.noted[split] = self.missing[split]
                some = next(iter(self.values()))
                data = some.select([])
            self[split] = data
            return data

    return MirroredSplits


def _load_mirrored(locator: DataLocator, folder: Path, path: str, name: str | None, original: Callable[..., Any],
                   kwargs: dict[str, Any], missing: dict[str, str]) -> Any:
    import datasets

    split = kwargs.get("split")
    available = {p.name: p for p in sorted(folder.iterdir()) if (p / "dataset_info.json").is_file()
                 or (p / "state.json").is_file()}

    def where(wanted: str) -> str:
        have = ", ".join(available) or "none"
        return (f"lm-eval data {path} (config {name or DEFAULT_CONFIG}), split {wanted!r}: not in the mirror "
                f"(it has {have}; {expected_at(locator, path, name, wanted)}) and not downloadable")

    def fetch(wanted: str) -> Any:
        return original(path=path, name=name, **{**kwargs, "split": wanted})

    if isinstance(split, str):
        if split in available:
            return datasets.load_from_disk(str(available[split]))
        try:
            return fetch(split)
        except Exception as exc:
            raise DataNotFoundError(f"{where(split)} ({_first_line(exc)})") from None
    splits = _splits_class()({key: datasets.load_from_disk(str(p)) for key, p in available.items()})
    splits.where, splits.fetch, splits.missing, splits.noted = where, fetch, {}, missing
    return splits


def check_needed(dataset: Any, splits: list[str]) -> None:
    """Fail with the one-line error when a split the run reads is one the mirror and the Hub
    lacked (see ``MirroredSplits``)."""
    missing = getattr(dataset, "missing", None) or {}
    for split in splits:
        if split in missing:
            raise DataNotFoundError(missing[split])


@contextmanager
def mirrored_datasets(locator: DataLocator) -> Iterator[dict[str, str]]:
    """Within the block, ``datasets.load_dataset`` reads the mirror first (see the module). It
    yields the one-line messages of the splits neither the mirror nor the Hub had: a task that
    fails to build on an empty stand-in (lm-eval reads the first scored document) fails with the last one it read."""
    import datasets

    missing: dict[str, str] = {}
    original = datasets.load_dataset

    def load_dataset(path: str | None = None, name: str | None = None, *args: Any, **kwargs: Any) -> Any:
        if args or path is None:
            return original(path, name, *args, **kwargs)
        folder = mirror_folder(locator, path, name)
        if folder is not None and not kwargs.get("data_files") and not kwargs.get("data_dir"):
            return _load_mirrored(locator, folder, path, name, original, kwargs, missing)
        try:
            return original(path=path, name=name, **kwargs)
        except (FileNotFoundError, ConnectionError, OSError, ValueError) as exc:
            split = kwargs.get("split") or "any split"
            raise DataNotFoundError(
                f"lm-eval data {path} (config {name or DEFAULT_CONFIG}), {split}: not in the mirror and not "
                f"downloadable ({expected_at(locator, path, name, str(kwargs.get('split') or '<split>'))}; "
                f"{_first_line(exc)})") from None

    datasets.load_dataset = load_dataset
    try:
        yield missing
    finally:
        datasets.load_dataset = original
