"""``llmeval merge DIR... [-o OUT]``: the output folders of CI shards as one output and one verdict.

Each DIR is what one ``pytest --llmeval-shard K/N`` job wrote to ``--llmeval-output-path``. The
merged folder gets every HELM run folder, the clembench records (``run.json`` per run folder
merged, ``results/results.json`` recomputed from every episode's scores) and one summary and
report, written by the same function a session ends with (``report/outputs.py``) from the
shards' run records. The exit status is the suite's verdict: 0 when every run passed its gates
and its baseline comparison, 1 when one did not (each is printed), 2 for input that is not a set
of shard outputs of one suite.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.games.clemscore import EpisodeScore, compute_table
from pytest_llmeval.games.episode_files import RESULTS_DIR, RUN_FILE, write_json
from pytest_llmeval.games.games_summary import results_json
from pytest_llmeval.games.metrics import BENCH_SCORE, METRIC_ABORTED
from pytest_llmeval.gates import Gate
from pytest_llmeval.report.outputs import RECORDS_FILE, RECORDS_FORMAT, write_outputs
from pytest_llmeval.report.run_records import RunRecord
from pytest_llmeval.report.summary import FORMAT, REPORT_FILE, SUMMARY_FILE

SESSION_FILES = {SUMMARY_FILE, REPORT_FILE, RECORDS_FILE}
RESULTS_FILE = "results.json"


class MergeError(Exception):
    """Input that cannot be merged: one line naming the folder or file."""


@dataclass
class Shard:
    """One shard's output folder, its suite and what its session recorded."""

    root: Path
    suite: str
    summary: dict[str, Any]
    records: list[RunRecord]
    episodes: list[dict[str, Any]]

    @property
    def suite_dir(self) -> Path:
        return self.root / "runs" / self.suite


# --- reading the shards ----------------------------------------------------------------------


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MergeError(f"{path}: no {what}") from None
    except (OSError, ValueError) as exc:
        raise MergeError(f"{path}: unreadable {what}: {exc}") from None


def find_suite(root: Path, suite: str | None) -> str:
    """The one suite under ``root/runs/`` with a summary (or the one asked for)."""
    if not root.is_dir():
        raise MergeError(f"{root}: no such folder")
    runs = root / "runs"
    if suite is not None:
        if not (runs / suite / SUMMARY_FILE).is_file():
            raise MergeError(f"{root}: no runs/{suite}/{SUMMARY_FILE} (not an output folder of suite {suite!r})")
        return suite
    found = sorted(str(p.parent.relative_to(runs)) for p in runs.glob(f"**/{SUMMARY_FILE}")) if runs.is_dir() else []
    if not found:
        raise MergeError(f"{root}: not a pytest-llmeval output folder (no runs/<suite>/{SUMMARY_FILE})")
    if len(found) > 1:
        raise MergeError(f"{root}: holds suites {', '.join(found)}; say which with --suite")
    return found[0]


def read_shard(root: Path, suite: str | None) -> Shard:
    suite = find_suite(root, suite)
    suite_dir = root / "runs" / suite
    summary = _read_json(suite_dir / SUMMARY_FILE, "summary")
    if not isinstance(summary, dict) or summary.get("format") != FORMAT:
        raise MergeError(f"{suite_dir / SUMMARY_FILE}: not a pytest-llmeval summary")
    data = _read_json(suite_dir / RECORDS_FILE, "run records (written by pytest-llmeval beside its summary)")
    if not isinstance(data, dict) or data.get("format") != RECORDS_FORMAT:
        raise MergeError(f"{suite_dir / RECORDS_FILE}: not a pytest-llmeval records file")
    try:
        records = [RunRecord.from_json(r) for r in data["records"]]
        episodes = [dict(e) for e in data.get("episodes", [])]
    except (KeyError, TypeError, ValueError) as exc:
        raise MergeError(f"{suite_dir / RECORDS_FILE}: malformed run records: {exc}") from None
    return Shard(root, suite, summary, records, episodes)


# --- paths a shard wrote, moved into the merged folder ---------------------------------------


def moved(path: str, anchor: Sequence[str], target: Path) -> str:
    """``path`` below its last ``anchor`` parts (``runs/<suite>``, ``results``), placed under
    ``target``; a path the shard wrote on its own machine names the merged folder instead."""
    if not path:
        return path
    parts = Path(path).parts
    size = len(anchor)
    for start in range(len(parts) - size, -1, -1):
        if tuple(parts[start:start + size]) == tuple(anchor):
            return str(target.joinpath(*parts[start + size:]))
    return path


# --- the merge -------------------------------------------------------------------------------


def _copy_tree_once(sources: list[tuple[Path, Path]], target: Path, what: str) -> None:
    """Copy each ``(shard root, folder)``; one folder name in two shards is an error naming both."""
    owners: dict[str, Path] = {}
    for root, folder in sources:
        if folder.name in owners:
            raise MergeError(f"{what} {folder.name} is in two shards: {owners[folder.name]} and {root}")
        owners[folder.name] = root
    for _, folder in sources:
        shutil.copytree(folder, target / folder.name, dirs_exist_ok=True)


def _copy_file(source: Path, target: Path, root: Path, owners: dict[Path, Path]) -> None:
    """A file two shards both wrote must be the same file."""
    if target in owners and not filecmp.cmp(source, target, shallow=False):
        raise MergeError(f"{target.name} differs between shards {owners[target]} and {root}")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)
    owners[target] = root


def merge_run_files(files: list[Path]) -> dict[str, Any]:
    """clemcore's ``run.json`` of one run folder from several shards: games united, each game's
    experiments united and its instance count summed, its time span the widest."""
    merged: dict[str, Any] = {}
    for path in files:
        data = _read_json(path, "run file")
        if not isinstance(data, dict) or not isinstance(data.get("games"), dict):
            raise MergeError(f"{path}: not a clembench run.json (no 'games')")
        if not merged:
            merged = {**data, "games": {}}
        else:
            merged["created"] = min(str(merged.get("created", "")), str(data.get("created", ""))) or None
        for game, entry in data["games"].items():
            into = merged["games"].setdefault(game, {})
            experiments = {**into.get("experiments", {}), **entry.get("experiments", {})}
            into.update({k: v for k, v in entry.items() if k not in into})
            into["experiments"] = experiments
            for key, pick in (("benchmark_start", min), ("benchmark_end", max)):
                values = [v for v in (into.get(key), entry.get(key)) if isinstance(v, str)]
                if values:
                    into[key] = pick(values)
            if isinstance(into.get("benchmark_start"), str) and isinstance(into.get("benchmark_end"), str):
                span = datetime.fromisoformat(into["benchmark_end"]) - datetime.fromisoformat(into["benchmark_start"])
                into["duration"], into["duration_seconds"] = str(span), span.total_seconds()
            into["num_instances"] = sum(int(n) for n in experiments.values())
    return merged


def merge_results(shards: list[Shard], target: Path) -> None:
    """``results/``: episode records copied (an episode in two shards is an error), ``run.json``
    merged; the shards' ``results.json`` are left behind (the merged one is recomputed)."""
    owners: dict[Path, Path] = {}
    run_files: dict[Path, list[Path]] = {}
    episode_owner: dict[Path, Path] = {}
    for shard in shards:
        results = shard.root / RESULTS_DIR
        if not results.is_dir():
            continue
        for source in sorted(p for p in results.rglob("*") if p.is_file()):
            relative = source.relative_to(results)
            if relative == Path(RESULTS_FILE) or source.name.startswith("."):
                continue
            if source.name == RUN_FILE and len(relative.parts) == 2:
                run_files.setdefault(target / relative, []).append(source)
                continue
            episode = next((Path(*relative.parts[:i + 1]) for i, part in enumerate(relative.parts[:-1])
                            if part.startswith("instance_")), None)
            if episode is not None:
                first = episode_owner.setdefault(episode, shard.root)
                if first != shard.root:
                    raise MergeError(f"episode {episode} is in two shards: {first} and {shard.root}")
            _copy_file(source, target / relative, shard.root, owners)
    for path, files in run_files.items():
        write_json(path, merge_run_files(files))


def game_scores(records: list[RunRecord], episodes: list[dict[str, Any]]) -> list[EpisodeScore]:
    """The game items' episode scores (not those of tests playing games through ``play_game``)."""
    runs = {(r.game["game"], r.game["experiment"], r.game["players"]) for r in records if r.game}
    scores = []
    for view in episodes:
        if (view.get("game"), view.get("experiment"), view.get("players")) not in runs:
            continue
        values = view.get("scores", {})
        main = values.get(BENCH_SCORE)
        scores.append(EpisodeScore(str(view["game"]), str(view["players"]), str(view["experiment"]),
                                   str(view.get("episode", "")), int(bool(values.get(METRIC_ABORTED))),
                                   float("nan") if main is None else float(main)))
    return scores


def check_suites(shards: list[Shard]) -> None:
    first = shards[0]
    for shard in shards[1:]:
        if shard.suite != first.suite:
            raise MergeError(f"{shard.root}: suite {shard.suite!r} differs from {first.root}'s {first.suite!r}")
        if shard.summary.get("baseline") != first.summary.get("baseline"):
            raise MergeError(f"{shard.root}: compared with baseline {shard.summary.get('baseline')!r}, "
                             f"{first.root} with {first.summary.get('baseline')!r}")


def check_shards(shards: list[Shard]) -> None:
    """Shards of one split (``--llmeval-shard K/N``, recorded in each summary): one N, no K twice
    and, when every folder is a shard, every K from 1 to N."""
    seen: dict[int, Path] = {}
    counts: dict[int, Path] = {}
    for shard in shards:
        value = shard.summary.get("shard")
        if not value:
            continue
        try:
            index, count = (int(v) for v in value)
        except (TypeError, ValueError):
            raise MergeError(f"{shard.suite_dir / SUMMARY_FILE}: field shard: {value!r} is not [K, N]") from None
        if counts and count not in counts:
            other, first = next(iter(counts.items()))
            raise MergeError(f"{shard.root}: shard {index}/{count} of another split than {first} (a shard of {other})")
        counts.setdefault(count, shard.root)
        if index in seen:
            raise MergeError(f"shard {index}/{count} twice: {seen[index]} and {shard.root}")
        seen[index] = shard.root
    if counts and len(seen) == len(shards):
        count = next(iter(counts))
        missing = [f"{k}/{count}" for k in range(1, count + 1) if k not in seen]
        if missing:
            raise MergeError(f"shard {', '.join(missing)} missing: the folders hold shards "
                             f"{', '.join(f'{k}/{count} ({seen[k]})' for k in sorted(seen))}")


def combined_records(shards: list[Shard], output: Path) -> tuple[list[RunRecord], list[dict[str, Any]]]:
    """Every shard's records (an item in two shards is an error) and episodes, with their
    folders named as they are in the merged output."""
    owners: dict[str, Path] = {}
    records, episodes = [], []
    for shard in shards:
        suite_anchor = ("runs", *Path(shard.suite).parts)
        for record in shard.records:
            if record.nodeid in owners:
                raise MergeError(f"item {record.nodeid} ran in two shards: {owners[record.nodeid]} and {shard.root}")
            owners[record.nodeid] = shard.root
            record.output_dir = moved(record.output_dir, suite_anchor, output / "runs" / shard.suite)
            records.append(record)
        for view in shard.episodes:
            episodes.append({**view, "path": moved(str(view.get("path", "")), (RESULTS_DIR,), output / RESULTS_DIR)})
    return records, episodes


@dataclass
class Verdict:
    failures: list[str]
    passed: int
    failed: int
    errors: int


def verdict(records: list[RunRecord], gates: Sequence[Gate]) -> Verdict:
    """The shards' own verdicts per run (their gates and baseline comparisons), with ``gates``
    checked again on each run's stats."""
    failures: list[str] = []
    counts = {"passed": 0, "failed": 0, "error": 0}
    for record in sorted(records, key=lambda r: (r.model, r.label, r.nodeid)):
        stats = record.stat_objects()
        extra = [f"--fail-under: {m}" for gate in gates
                 if any(s.name.name == gate.metric for s in stats) and (m := gate.check(stats)) is not None]
        if extra and record.outcome == "passed":
            record.outcome = "failed"
        record.failures = [*record.failures, *extra]
        counts[record.outcome if record.outcome in counts else "failed"] += 1
        if record.outcome != "passed":
            reasons = [line for text in record.failures for line in str(text).splitlines() if line.strip()]
            where = f" (run {record.run})" if record.run else ""
            failures.append(f"{record.outcome.upper()} {record.name}{where}: {'; '.join(reasons) or record.outcome}")
    return Verdict(failures, counts["passed"], counts["failed"], counts["error"])


def merge(folders: Sequence[Path], output: Path, suite: str | None = None, gates: Sequence[Gate] = (),
          write_html: bool = True) -> Verdict:
    """Merge shard output folders into ``output``; returns the merged verdict."""
    resolved_output = output.resolve()
    for folder in folders:
        if folder.resolve() == resolved_output:
            raise MergeError(f"{folder}: the output folder cannot be one of the shards")
    shards = [read_shard(folder, suite) for folder in folders]
    check_suites(shards)
    check_shards(shards)
    suite_name = shards[0].suite
    records, episodes = combined_records(shards, output)
    suite_target = output / "runs" / suite_name
    suite_target.mkdir(parents=True, exist_ok=True)
    run_folders = [(s.root, p) for s in shards for p in sorted(s.suite_dir.iterdir()) if p.is_dir()]
    _copy_tree_once(run_folders, suite_target, "run folder")
    owners: dict[Path, Path] = {}
    for shard in shards:
        for path in sorted(shard.suite_dir.iterdir()):
            if path.is_file() and path.name not in SESSION_FILES and not path.name.startswith("."):
                _copy_file(path, suite_target / path.name, shard.root, owners)
        for top in sorted(shard.root.iterdir()):  # lm-eval's files and anything else beside runs/ and results/
            if top.name in ("runs", RESULTS_DIR) or top.name.startswith("."):
                continue
            for source in [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file()):
                _copy_file(source, output / source.relative_to(shard.root), shard.root, owners)
    merge_results(shards, output / RESULTS_DIR)
    result = verdict(records, gates)
    written = write_outputs(suite_target, suite_name, records, episodes, shards[0].summary.get("baseline"), write_html,
                            mergeable=True)
    scores = game_scores(records, episodes)
    if scores:
        write_json(output / RESULTS_DIR / RESULTS_FILE, results_json(compute_table(scores)))
    print(f"merged {len(records)} runs of suite {suite_name!r} from {len(shards)} folders: {result.passed} passed, "
          f"{result.failed} failed, {result.errors} errors")
    print(f"summary: {written.summary_path}")
    if written.report_path is not None:
        print(f"report: {written.report_path}")
    return result


# --- command line ----------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="llmeval merge", description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("folders", nargs="+", type=Path, help="the shards' --llmeval-output-path folders")
    p.add_argument("-o", "--output", type=Path, default=Path("benchmark_output"),
                   help="the merged output folder (default: benchmark_output)")
    p.add_argument("--suite", default=None, help="the suite to merge when a folder holds several")
    p.add_argument("--fail-under", default="", help="gates checked again on every merged run, as --llmeval-fail-under")
    p.add_argument("--no-report", action="store_true", help="do not write llmeval_report.html")
    return p


def main(argv: Sequence[str]) -> int:
    args = parser().parse_args(list(argv))
    try:
        gates = [Gate.fail_under(text.strip()) for text in str(args.fail_under).split(",") if text.strip()]
    except ConfigError as exc:
        print(f"llmeval merge: --fail-under: {exc.message}", file=sys.stderr)
        return 2
    try:
        result = merge(args.folders, args.output, args.suite, gates, not args.no_report)
    except MergeError as exc:
        print(f"llmeval merge: {exc}", file=sys.stderr)
        return 2
    for line in result.failures:
        print(line)
    return 1 if result.failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
