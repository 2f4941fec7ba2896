"""The report's session object: collects run records, merges xdist workers, writes the outputs.

Every process (the controller and each xdist worker) has one, in ``config.stash``. Items hand
it their results; a worker ships its records to the controller in ``config.workeroutput`` and
the controller merges them in ``pytest_testnodedown`` (keyed by node id, so nothing is counted
twice). At session end the controller writes ``llmeval_summary.json`` and ``llmeval_report.html`` next to the
run folders and saves or rewrites the baseline. The terminal summary only prints what this
object computed.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_llmeval.metrics.stat import Stat
from pytest_llmeval.options import Settings
from pytest_llmeval.report.baseline import (
    BaselineStore,
    Update,
    entry_from_record,
    find_entry,
    read_baseline,
    updated_entries,
    write_baseline,
)
from pytest_llmeval.report.compare import Comparison, compare_run
from pytest_llmeval.report.episodes import episode_view
from pytest_llmeval.report.outputs import write_outputs
from pytest_llmeval.report.run_records import (
    RunRecord,
    record_from_error,
    record_from_game,
    record_from_properties,
    record_from_result,
)
from pytest_llmeval.report.settings import ReportSettings
from pytest_llmeval.run_result import RunResult

if TYPE_CHECKING:
    from pytest_llmeval.games.episode_runner import GameRunResult

log = logging.getLogger("pytest_llmeval.report")

WORKER_KEY = "llmeval_report"


def is_worker(config: pytest.Config) -> bool:
    """True inside a pytest-xdist worker (it has ``workerinput``)."""
    return hasattr(config, "workerinput")


@dataclass
class Outputs:
    """What the session wrote, for the terminal summary."""

    summary: Path | None = None
    report: Path | None = None
    saved_baseline: Path | None = None
    update: Update | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def shared_run_dirs(records: list[RunRecord]) -> list[str]:
    """One line per run folder that several items wrote. HELM's run names leave some settings
    out (``temperature=``), so two entries that differ only there share a folder, as in
    helm-run; the files of the item that finished last are the ones kept."""
    writers: dict[str, list[str]] = {}
    for record in records:
        if record.output_dir:
            writers.setdefault(str(record.output_dir), []).append(record.nodeid)
    return [f"{len(nodeids)} items wrote the run folder {folder} (the last one's files are kept): "
            f"{', '.join(sorted(nodeids))}" for folder, nodeids in sorted(writers.items()) if len(nodeids) > 1]


class ReportSession:
    def __init__(self, settings: ReportSettings, output_path: Path, suite: str,
                 shard: tuple[int, int] | None = None) -> None:
        self.settings = settings
        self.output_path = output_path
        self.suite = suite
        self.shard = shard  # --llmeval-shard's (K, N): the summary says which share it covers
        self.records: dict[str, RunRecord] = {}
        self.collected: set[str] = set()
        self.reported: dict[str, tuple[str, dict[str, Any], str, str]] = {}
        self.episodes: dict[str, dict[str, Any]] = {}  # every episode played this session, by folder
        self.started = time.time()
        self.outputs = Outputs()
        self._baseline: dict[str, dict[str, Any]] | None = None

    @classmethod
    def from_config(cls, config: pytest.Config, settings: Settings) -> ReportSession:
        return cls(ReportSettings.from_config(config), settings.output_path, settings.suite, settings.shard)

    @property
    def suite_dir(self) -> Path:
        return self.output_path / "runs" / self.suite

    # --- items -------------------------------------------------------------------------------

    def item_collected(self, item: pytest.Item) -> None:
        """Remember collected items' baseline keys: an update keeps entries of items not run."""
        if item.get_closest_marker("llmeval") is not None:
            self.collected.add(item.name)

    def baseline_entries(self) -> dict[str, dict[str, Any]]:
        if self._baseline is None:
            path = self.settings.compare_path
            self._baseline = read_baseline(path) if path is not None else {}
        return self._baseline

    def finish_run(self, item: pytest.Item, result: RunResult, failures: list[str], *, scenario_key: str,
                   worker: str, kind: str = "scenario") -> list[str]:
        """Record a finished run, apply the command-line gates and the baseline comparison.

        Returns every failure message (the eval file's gates first); the item fails if any.
        """
        record = record_from_result(nodeid=item.nodeid, name=item.name, key=item.name, scenario_key=scenario_key,
                                    model=str(getattr(item, "model", "")), result=result, worker=worker, kind=kind)
        failures = [*failures, *self.check_cli_gates(record.stat_objects())]
        if self.settings.compare_path is not None:
            comparison = self.compare(record)
            record.comparison = comparison.to_json()
            if not self.settings.update_baseline:
                failures.extend(comparison.failure_messages())
            item.add_report_section("call", "llmeval baseline", "\n".join(comparison_lines(record, limit=10)))
            main = next((m for m in comparison.metrics if m.metric == record.main_metric), None)
            if main is not None:
                item.user_properties.extend([("llmeval_baseline_delta", round(main.delta, 6)),
                                             ("llmeval_baseline_p", round(main.p_value, 6))])
            item.user_properties.append(("llmeval_baseline_flips", f"{len(comparison.right_to_wrong)} right->wrong, "
                                                                   f"{len(comparison.wrong_to_right)} wrong->right"))
        if record.ci95:
            item.user_properties.append(("llmeval_ci95", f"{record.ci95[0]:.4f},{record.ci95[1]:.4f}"))
        record.failures = failures
        record.outcome = "failed" if failures else "passed"
        self.records[item.nodeid] = record
        return failures

    def check_cli_gates(self, stats: list[Stat]) -> list[str]:
        """``--llmeval-fail-under`` gates on a run's stats; a gate on a metric the run lacks is skipped."""
        failures = []
        for gate in self.settings.fail_under:
            if any(s.name.name == gate.metric for s in stats):
                message = gate.check(stats)
                if message is not None:
                    failures.append(f"--llmeval-fail-under: {message}")
        return failures

    def compare(self, record: RunRecord) -> Comparison:
        path = self.settings.compare_path
        assert path is not None
        entry = find_entry(self.baseline_entries(), record)
        return compare_run(record, entry, path.stem, self.settings.tolerances, self.settings.significance)

    def finish_game(self, item: pytest.Item, result: GameRunResult, model: str, worker: str) -> None:
        """Record a game item's run and show its episodes; pytest's report of the item (its gates)
        decides the outcome, see :meth:`all_records`."""
        self.records[item.nodeid] = record_from_game(nodeid=item.nodeid, name=item.name, model=model,
                                                     result=result, worker=worker)
        self.add_episodes(result)

    def add_episodes(self, result: GameRunResult) -> None:
        """Show a game run's episodes (of a game item or of a test using ``play_game``)."""
        for episode in result.episodes:
            view = episode_view(episode)
            self.episodes[view["path"]] = view  # an episode played again shows its last play

    def run_error(self, item: pytest.Item, error: BaseException, worker: str,
                  partial: RunResult | GameRunResult | None = None, model: str | None = None) -> None:
        """A run that raised: listed as an error, with the counts of what it had done (``partial``).
        ``model`` defaults to the item's ``model``."""
        model = str(getattr(item, "model", "")) if model is None else model
        self.records[item.nodeid] = record_from_error(nodeid=item.nodeid, name=item.name, model=model, error=error,
                                                      worker=worker, partial=partial)
        if partial is not None and not isinstance(partial, RunResult):
            self.add_episodes(partial)  # a game's: the episodes it played before it failed

    def add_record(self, record: RunRecord) -> None:
        """For other item types that build their own record."""
        self.records[record.nodeid] = record

    # --- reports and xdist -------------------------------------------------------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Hook (this object is registered as a plugin): xdist ships workers' reports here too."""
        self.observe_report(report)

    def observe_report(self, report: pytest.TestReport) -> None:
        """Keep each llmeval item's call report: its outcome is final and its properties are a fallback."""
        if report.when != "call":
            return
        props = dict(report.user_properties)
        if "llmeval_run" not in props:
            return
        name = report.nodeid.split("::")[-1]
        self.reported[report.nodeid] = (name, props, report.outcome, str(report.longrepr or ""))

    def to_workeroutput(self, workeroutput: dict[str, Any]) -> None:
        workeroutput[WORKER_KEY] = json.dumps({
            "records": [r.to_json() for r in self.records.values()],
            "collected": sorted(self.collected),
            "episodes": list(self.episodes.values()),
        })

    def merge_worker(self, workeroutput: dict[str, Any] | None) -> None:
        raw = (workeroutput or {}).get(WORKER_KEY)
        if not raw:
            return
        data = json.loads(raw)
        for item in data.get("records", []):
            record = RunRecord.from_json(item)
            self.records[record.nodeid] = record
        self.collected.update(data.get("collected", []))
        for view in data.get("episodes", []):
            self.episodes[view["path"]] = view

    def all_records(self) -> list[RunRecord]:
        """Records from items and workers, plus property-only ones for items that sent none.

        pytest's report has the last word on an outcome: a record that passed fails with the
        report's failure text when its item failed (a game item's gates, for one).
        """
        records = dict(self.records)
        for nodeid, (name, props, outcome, longrepr) in self.reported.items():
            record = records.get(nodeid)
            if record is None:
                records[nodeid] = record_from_properties(nodeid, name, props, outcome, longrepr)
            elif outcome == "failed" and record.outcome == "passed":
                record.outcome = "failed"
                if not record.failures and longrepr:
                    record.failures = [longrepr]
        return list(records.values())

    # --- session end -------------------------------------------------------------------------

    def finish_session(self, config: pytest.Config) -> None:
        if is_worker(config):
            self.to_workeroutput(config.workeroutput)  # type: ignore[attr-defined]
            return
        records = self.all_records()
        if not records and (self.shard is None or config.option.collectonly):
            return  # a shard that ran writes its share even when empty: the merge expects every shard
        self.outputs.warnings = shared_run_dirs(records)
        for step in (self._write_summary, self._save_baseline, self._update_baseline):
            try:
                step(records)
            except Exception as exc:  # one failing output must not lose the others
                log.exception("pytest-llmeval report step failed")
                self.outputs.errors.append(f"{step.__name__.strip('_').replace('_', ' ')}: {exc}")

    def _write_summary(self, records: list[RunRecord]) -> None:
        baseline = self.settings.compare_path.stem if self.settings.compare_path else None
        written = write_outputs(self.suite_dir, self.suite, records, list(self.episodes.values()), baseline,
                                self.settings.write_html, self.shard, mergeable=self.shard is not None)
        self.outputs.summary, self.outputs.report = written.summary_path, written.report_path

    def _save_baseline(self, records: list[RunRecord]) -> None:
        name = self.settings.save_baseline
        if name is None or (self.settings.update_baseline and not self.settings.compare):
            return  # with --llmeval-update-baseline alone, the named baseline is rewritten instead
        store = BaselineStore(self.settings.baseline_dir)
        path = store.next_path(name)
        write_baseline(path, name, [entry_from_record(r) for r in records if r.outcome != "error" and r.instances])
        self.outputs.saved_baseline = path

    def _update_baseline(self, records: list[RunRecord]) -> None:
        if not self.settings.update_baseline:
            return
        store = BaselineStore(self.settings.baseline_dir)
        name = str(self.settings.compare or self.settings.save_baseline)
        path = self.settings.compare_path or store.latest(name) or store.next_path(name)
        old = read_baseline(path) if path.is_file() else {}
        entries, dropped, kept = updated_entries(old, records, self.collected)
        write_baseline(path, path.stem.split("_", 1)[-1], entries)
        self.outputs.update = Update(path, sorted(e["key"] for e in entries if e["key"] not in kept), dropped, kept)


def comparison_lines(record: RunRecord, limit: int = 5) -> list[str]:
    """A run's comparison for the terminal: figures, then the first few flips and changed outputs."""
    c = record.comparison
    if c is None:
        return []
    lines = []
    if c.get("note"):
        lines.append(f"{record.name}: {c['note']}")
    for m in c.get("metrics", []):
        verdict = "REGRESSION" if m["beyond_tolerance"] and m["significant"] else "ok"
        lines.append(f"{record.name}: {m['metric']} {m['baseline']:.4f} -> {m['current']:.4f} ({m['delta']:+.4f}), "
                     f"{m['test']} p={m['p_value']:.4g}, tolerance {m['tolerance']}: {verdict}")
    for title, key in (("right->wrong", "right_to_wrong"), ("wrong->right", "wrong_to_right"),
                       ("output changed", "changed_output")):
        changes = c.get(key, [])
        if not changes:
            continue
        shown = ", ".join(f"{ch['id']} {ch['baseline_output']!r}->{ch['current_output']!r}" for ch in changes[:limit])
        more = f", ... ({len(changes) - limit} more)" if len(changes) > limit else ""
        lines.append(f"  {len(changes)} {title}: {shown}{more}")
    return lines


REPORT_KEY = pytest.StashKey[ReportSession]()


def get_report(config: pytest.Config) -> ReportSession:
    return config.stash[REPORT_KEY]
