"""Saved baselines: numbered JSON files (``0001_main.json``) in a folder meant to be committed.

As in pytest-benchmark, every save makes a new numbered file, and a comparison names a file by
its name (the newest with that name), its number, or its path. A file keeps, per run, every
evaluated instance's outputs and scores (not only the means), so a later comparison can pair
instances and say which ones flipped.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.report.run_records import RunRecord

FORMAT = "pytest-llmeval-baseline"
VERSION = 1
DEFAULT_DIR = "llmeval_baselines"
_FILE = re.compile(r"^(\d{4,})_([\w.-]+)\.json$")
_NAME = re.compile(r"^[\w.-]+$")


def input_digest(text: str) -> str:
    """A short digest of an instance's input: pairs only instances that asked the same thing."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def check_name(name: str, option: str) -> str:
    if not _NAME.match(name) or name.isdigit():
        raise ConfigError(f"baseline name {name!r} may use only letters, digits, '_', '.' and '-' "
                          f"(and not only digits)", field=option)
    return name


@dataclass(frozen=True)
class BaselineFile:
    path: Path
    number: int
    name: str


class BaselineStore:
    """The baseline folder: lists, resolves, reads and writes baseline files."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def files(self) -> list[BaselineFile]:
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.iterdir():
            match = _FILE.match(path.name)
            if match and path.is_file():
                found.append(BaselineFile(path, int(match.group(1)), match.group(2)))
        return sorted(found, key=lambda f: f.number)

    def resolve(self, ref: str, option: str = "--llmeval-compare") -> Path:
        """A baseline by name (the newest), number, ``NNNN_name`` or path; a clear error when absent."""
        candidate = Path(ref).expanduser()
        if ref.endswith(".json") and candidate.is_file():
            return candidate
        files = self.files()
        if ref.isdigit():
            chosen = [f for f in files if f.number == int(ref)]
        elif _FILE.match(f"{ref}.json"):
            chosen = [f for f in files if f.path.stem == ref]
        else:
            chosen = [f for f in files if f.name == ref]
        if chosen:
            return chosen[-1].path
        known = ", ".join(f.path.stem for f in files) or "none"
        raise ConfigError(f"no baseline {ref!r} in {self.directory} (saved baselines: {known}); save one with "
                          f"--llmeval-save-baseline NAME", field=option)

    def next_path(self, name: str) -> Path:
        number = max((f.number for f in self.files()), default=0) + 1
        return self.directory / f"{number:04d}_{name}.json"

    def latest(self, name: str) -> Path | None:
        chosen = [f for f in self.files() if f.name == name]
        return chosen[-1].path if chosen else None


def read_baseline(path: Path) -> dict[str, dict[str, Any]]:
    """The entries of a baseline file by key; a damaged file is a clear error naming it."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the baseline: {exc}", file=path) from None
    if not isinstance(document, dict) or document.get("format") != FORMAT or not isinstance(
            document.get("runs"), list):
        raise ConfigError(f"is not a pytest-llmeval baseline (expected 'format': {FORMAT!r} and a 'runs' list)",
                          file=path, field="format")
    entries: dict[str, dict[str, Any]] = {}
    for index, run in enumerate(document["runs"]):
        if not isinstance(run, dict) or not isinstance(run.get("key"), str) or not isinstance(
                run.get("instances"), list):
            raise ConfigError("needs a 'key' string and an 'instances' list", file=path, entry=f"#{index}",
                              field="key" if not isinstance(run, dict) or "key" not in run else "instances")
        entries[run["key"]] = run
    return entries


def entry_from_record(record: RunRecord) -> dict[str, Any]:
    """What a baseline keeps of a run: identity, the main figures and every instance's outputs and scores."""
    return {
        "key": record.key, "scenario_key": record.scenario_key, "model": record.model, "run": record.run,
        "kind": record.kind, "main_metric": record.main_metric, "split": record.split, "value": record.value,
        "count": record.count,
        "instances": [
            {"key": i.key, "id": i.id, "split": i.split, "input_digest": input_digest(i.input),
             "output": i.output, "prediction": i.prediction, "metrics": i.metrics,
             **({"perturbation": i.perturbation} if i.perturbation else {})}
            for i in record.instances
        ],
    }


def find_entry(entries: dict[str, dict[str, Any]], record: RunRecord) -> dict[str, Any] | None:
    """The entry for a run: the same item, else the only entry with the same scenario and model.

    The fallback lets ``mmlu:subject=anatomy,max_train_instances=0`` be compared with the saved
    ``mmlu:subject=anatomy`` run: same instances, same model, a changed setting.
    """
    if record.key in entries:
        return entries[record.key]
    same = [e for e in entries.values() if e.get("scenario_key") == record.scenario_key]
    return same[0] if len(same) == 1 else None


def write_baseline(path: Path, name: str, entries: list[dict[str, Any]]) -> None:
    """Write atomically, keys sorted and one run per list item, so diffs of the file read well."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "format": FORMAT, "version": VERSION, "name": name,
        "saved": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "runs": sorted(entries, key=lambda e: e["key"]),
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


@dataclass
class Update:
    """The result of rewriting a baseline from the current session."""

    path: Path
    written: list[str]
    dropped: list[str]  # entries no collected item produces any more
    kept: list[str]  # entries of items collected but not run this time (deselected, skipped)


def updated_entries(old: dict[str, dict[str, Any]], records: list[RunRecord], collected: set[str]
                    ) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """New entries: this session's runs, plus old entries of items that were collected but not run.

    Returns (entries, dropped keys, kept keys). An old entry whose key no collected item has
    is dropped (and reported), as snapshot tools drop unused snapshots.
    """
    produced = {r.key: entry_from_record(r) for r in records if r.outcome != "error" and r.instances}
    kept = sorted(k for k in old if k not in produced and k in collected)
    dropped = sorted(k for k in old if k not in produced and k not in collected)
    entries = list(produced.values()) + [old[k] for k in kept]
    return entries, dropped, kept
