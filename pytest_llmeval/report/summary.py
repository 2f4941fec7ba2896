"""``llmeval_summary.json``: one line of figures per run, written next to the run folders at session end.

Strict JSON (NaN becomes null) so any tool reads it; the same for serial and xdist sessions
apart from timing, worker and cache fields.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any

from pytest_llmeval.games.episode_files import finite
from pytest_llmeval.harness.groups import group_aggregates
from pytest_llmeval.report.run_records import RunRecord

FORMAT = "pytest-llmeval-summary"
SUMMARY_FILE = "llmeval_summary.json"
REPORT_FILE = "llmeval_report.html"
# Fields that legitimately differ between two sessions of the same runs.
VOLATILE_FIELDS = ("seconds", "worker", "cache_hits", "output_dir")


def sort_records(records: list[RunRecord]) -> list[RunRecord]:
    return sorted(records, key=lambda r: (r.model, r.label, r.nodeid))


def comparison_summary(comparison: dict[str, Any] | None) -> dict[str, Any] | None:
    """The comparison without its instance lists (those are in the report)."""
    if comparison is None:
        return None
    return {
        "baseline": comparison.get("baseline"), "entry": comparison.get("entry"),
        "regression": comparison.get("regression", False), "metrics": comparison.get("metrics", []),
        "right_to_wrong": len(comparison.get("right_to_wrong", [])),
        "wrong_to_right": len(comparison.get("wrong_to_right", [])),
        "changed_output": len(comparison.get("changed_output", [])), "note": comparison.get("note", ""),
    }


def run_summary(record: RunRecord) -> dict[str, Any]:
    data = record.to_json(instances=False)
    data["label"] = record.label
    data["instances"] = len(record.instances) if record.instances else record.requests
    data["comparison"] = comparison_summary(record.comparison)
    return data


def build_summary(records: list[RunRecord], suite: str, baseline: str | None = None,
                  report: Path | None = None, shard: tuple[int, int] | None = None) -> dict[str, Any]:
    """The session's summary; ``llmeval merge`` builds the merged one with it too (``shard`` None)."""
    ordered = sort_records(records)
    outcomes = [r.outcome for r in ordered]
    return finite({
        "format": FORMAT, "version": 1, "suite": suite,
        "created": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "report": str(report) if report else None, "baseline": baseline, "shard": list(shard) if shard else None,
        "totals": {"runs": len(ordered), "passed": outcomes.count("passed"), "failed": outcomes.count("failed"),
                   "errors": outcomes.count("error"), "seconds": round(sum(r.seconds for r in ordered), 3)},
        "runs": [run_summary(r) for r in ordered],
        **({"lm_eval_groups": group_aggregates(ordered)} if any(r.lm_eval for r in ordered) else {}),
    })


def write_json(path: Path, data: Any) -> None:
    """Atomic write: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:  # the walk that replaces NaN and infinities by null runs only when there is one
        text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False)
    except ValueError:
        text = json.dumps(finite(data), indent=2, ensure_ascii=False, allow_nan=False)
    tmp.write_text(text + "\n", encoding="utf-8")
    tmp.replace(path)
