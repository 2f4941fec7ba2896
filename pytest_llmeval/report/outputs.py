"""The suite folder's three session files, written from the run records by one function.

A session writes them at its end; ``llmeval merge`` writes them again from the records of every
shard, so a sharded suite and an unsharded one get the same summary and the same report:

- ``llmeval_summary.json``: the figures (``summary.py``);
- ``llmeval_report.html``: the page (``html.py``), unless the report is turned off;
- ``llmeval_records.json`` (sessions run with ``--llmeval-shard``, and merges, only): the records themselves,
  instances and comparisons included, with every episode; what ``llmeval merge`` combines, since
  the summary leaves the instance lists out.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_llmeval.report.episodes import shown_episodes
from pytest_llmeval.report.html import report_parts
from pytest_llmeval.report.run_records import RunRecord
from pytest_llmeval.report.summary import (
    REPORT_FILE,
    SUMMARY_FILE,
    build_summary,
    finite,
    sort_records,
    write_json,
)

RECORDS_FILE = "llmeval_records.json"
RECORDS_FORMAT = "pytest-llmeval-records"


@dataclass(frozen=True)
class Written:
    summary: dict[str, Any]
    summary_path: Path
    report_path: Path | None


def records_json(records: list[RunRecord], suite: str, episodes: list[dict[str, Any]],
                 shard: tuple[int, int] | None = None) -> dict[str, Any]:
    return {"format": RECORDS_FORMAT, "version": 1, "suite": suite, "shard": list(shard) if shard else None,
            "records": [r.to_json() for r in sort_records(records)], "episodes": episodes}


def write_records(path: Path, data: dict[str, Any]) -> None:
    """Compact (one line): the file is for ``llmeval merge``, and as large as the report's data."""
    try:
        text = json.dumps(data, ensure_ascii=False, allow_nan=False)
    except ValueError:
        text = json.dumps(finite(data), ensure_ascii=False, allow_nan=False)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text + "\n", encoding="utf-8")
    tmp.replace(path)


def write_outputs(suite_dir: Path, suite: str, records: list[RunRecord], episode_views: list[dict[str, Any]],
                  baseline: str | None, write_html: bool, shard: tuple[int, int] | None = None,
                  mergeable: bool = False) -> Written:
    """Summary, (when ``write_html``) the report and (when ``mergeable``: a shard's session, a
    merge) the records file of ``records`` in ``suite_dir``; ``shard`` is the session's
    ``--llmeval-shard`` (None for a whole suite or a merged one)."""
    report = suite_dir / REPORT_FILE if write_html else None
    summary = build_summary(records, suite, baseline, report, shard)
    episodes = shown_episodes(episode_views)
    write_json(suite_dir / SUMMARY_FILE, summary)
    if mergeable:  # only shards (and merges) are merged later; the file costs a whole session's data
        every = sorted(episode_views, key=lambda view: Path(view["path"]))  # all of them: merged scores need each
        write_records(suite_dir / RECORDS_FILE, records_json(records, suite, every, shard))
    if report is not None:
        tmp = report.with_name(f".{report.name}.tmp")
        with tmp.open("w", encoding="utf-8") as out:
            out.writelines(report_parts(summary, records, episodes))
        tmp.replace(report)
    return Written(summary, suite_dir / SUMMARY_FILE, report)
