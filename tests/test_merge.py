"""``llmeval merge``: shards of real pytester sessions merged into one output and one verdict."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.cli import main as llmeval
from pytest_llmeval.merge import MergeError, merge_run_files, moved
from tests.projects import make_importable
from tests.report_project import (
    XDIST,
    make_project,
    set_deployments,
    stable_runs,
    summary_of,
    write_evals,
    write_models,
)

FOUR_SUBJECTS = """
    entries:
      - mmlu:subject=anatomy
      - mmlu:subject=astronomy
      - mmlu:subject=virology
      - mmlu:subject=college_biology
"""
SCRIPTED = ["--llmeval-models", "scripted/letters", "--llmeval-disable-cache", "--llmeval-max-eval-instances", "3",
            "-p", "no:cacheprovider"]
BUNDLED = "local/smollm2-135m-instruct"


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # when this suite itself runs under xdist
    return make_project(pytester, monkeypatch)


def stable(summary: dict[str, Any]) -> dict[str, Any]:
    """A summary without what differs between two sessions of the same runs (timings, paths)."""
    totals = {k: v for k, v in summary["totals"].items() if k != "seconds"}
    rest = {k: v for k, v in summary.items() if k not in ("created", "report", "totals", "runs")}
    return {**rest, "totals": totals, "runs": stable_runs(summary)}


def run_shards(project: pytest.Pytester, args: list[str], shards: int = 2) -> list[Any]:
    return [project.runpytest(*args, "--llmeval-shard", f"{k}/{shards}", "--llmeval-output-path", f"shard{k}")
            for k in range(1, shards + 1)]


def merge(project: pytest.Pytester, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = llmeval(["merge", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("xdist", XDIST)
def test_merged_shards_equal_one_unsharded_run(project: pytest.Pytester, capsys: pytest.CaptureFixture[str],
                                               xdist: list[str]) -> None:
    write_evals(project, FOUR_SUBJECTS)
    whole = project.runpytest(*SCRIPTED, "--llmeval-output-path", "whole")
    whole.assert_outcomes(passed=4)
    one, two = run_shards(project, [*SCRIPTED, *xdist])
    assert one.ret == two.ret == 0
    parts = [summary_of(project.path, f"shard{k}")["runs"] for k in (1, 2)]
    assert len(parts[0]) == len(parts[1]) == 2  # four runs of about the same cost: two each
    code, out, err = merge(project, capsys, str(project.path / "shard1"), str(project.path / "shard2"),
                           "-o", str(project.path / "merged"))
    assert (code, err) == (0, "")
    assert "merged 4 runs of suite 'default' from 2 folders: 4 passed, 0 failed, 0 errors" in out
    merged = summary_of(project.path, "merged")
    assert stable(merged) == stable(summary_of(project.path, "whole"))
    suite = project.path / "merged" / "runs" / "default"
    assert merged["report"] == str(suite / "llmeval_report.html")
    report = (suite / "llmeval_report.html").read_text()
    for run in merged["runs"]:  # each run's folder is in the merged output, and its record names it there
        assert Path(run["output_dir"]).parent == suite
        assert json.loads((Path(run["output_dir"]) / "stats.json").read_text())
        assert run["label"] in report
    records = json.loads((suite / "llmeval_records.json").read_text())["records"]
    assert sum(len(r["instances"]) for r in records) == 12  # every instance of every shard, for the report
    assert sorted(p.name for p in suite.iterdir() if p.is_dir()) == sorted(
        p.name for p in (project.path / "whole" / "runs" / "default").iterdir() if p.is_dir())


def test_a_gate_one_run_fails_fails_the_merge(project: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    gated = "- {description: 'mmlu:subject=virology', gates: ['exact_match >= 0.99']}"
    write_evals(project, FOUR_SUBJECTS.replace("- mmlu:subject=virology", gated))
    shards = run_shards(project, SCRIPTED)
    assert sorted(s.ret for s in shards) == [0, 1]  # the shard with virology failed, the other passed
    code, out, _ = merge(project, capsys, str(project.path / "shard1"), str(project.path / "shard2"),
                         "-o", str(project.path / "merged"))
    assert code == 1
    assert "3 passed, 1 failed, 0 errors" in out
    [line] = [line for line in out.splitlines() if line.startswith("FAILED")]
    assert line.startswith("FAILED mmlu:subject=virology[scripted/letters] (run mmlu:subject=virology,")
    assert "required >= 0.99" in line
    merged = summary_of(project.path, "merged")
    assert merged["totals"]["failed"] == 1  # the summary says the same as the verdict
    # a gate given to the merge is checked on every run's stats again
    code, out, _ = merge(project, capsys, str(project.path / "shard1"), str(project.path / "shard2"),
                         "-o", str(project.path / "again"), "--fail-under", "exact_match=1.0")
    below = [r for r in merged["runs"] if r["value"] < 1.0]
    assert len(below) >= 2  # virology and at least one run that passed in its shard
    assert code == 1 and f"{4 - len(below)} passed, {len(below)} failed" in out
    assert out.count("--fail-under: ") == len(below)
    again = summary_of(project.path, "again")
    assert {r["label"] for r in again["runs"] if r["outcome"] == "failed"} == {r["label"] for r in below}


def test_a_baseline_regression_in_one_shard_fails_the_merge(project: pytest.Pytester,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Saved whole, compared in shards after the model got worse on one subject's questions only."""
    write_evals(project, "entries: [mmlu:subject=anatomy, mmlu:subject=astronomy]\n")
    args = ["--llmeval-models", "scripted/oracle", "--llmeval-max-eval-instances", "20", "-p", "no:cacheprovider"]
    project.runpytest(*args, "--llmeval-save-baseline", "main").assert_outcomes(passed=2)
    same = run_shards(project, [*args, "--llmeval-compare", "main"])
    assert [s.ret for s in same] == [0, 0]
    code, out, _ = merge(project, capsys, "shard1", "shard2", "-o", "same")
    assert code == 0 and "2 passed, 0 failed" in out
    assert summary_of(project.path, "same")["baseline"] == "0001_main"
    set_deployments(project, wrong_percent=50)  # the same deployment, degraded
    worse = run_shards(project, [*args, "--llmeval-compare", "main"])
    assert [s.ret for s in worse] == [1, 1]
    code, out, _ = merge(project, capsys, "shard1", "shard2", "-o", "worse")
    assert code == 1 and "0 passed, 2 failed" in out
    failed = [line for line in out.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 2 and all("regression against baseline 0001_main: exact_match 1.0000 -> " in line
                                    for line in failed)
    runs = summary_of(project.path, "worse")["runs"]
    assert all(r["comparison"]["regression"] and r["comparison"]["right_to_wrong"] > 0 for r in runs)
    page = (project.path / "worse" / "runs" / "default" / "llmeval_report.html").read_text()
    assert "Changes against the baseline" in page and "REGRESSION" in page


def test_the_console_script_merges(project: pytest.Pytester) -> None:
    write_evals(project, "entries: [mmlu:subject=anatomy, mmlu:subject=astronomy]\n")
    run_shards(project, SCRIPTED)
    done = subprocess.run([str(Path(sys.executable).parent / "llmeval"), "merge", "shard1", "shard2", "-o", "out"],
                          cwd=project.path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len(summary_of(project.path, "out")["runs"]) == 2


def test_a_shard_without_evaluations_still_merges(project: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    """Three shards of two runs: the third runs none, and still leaves an output to merge."""
    write_evals(project, "entries: [mmlu:subject=anatomy, mmlu:subject=astronomy]\n")
    shards = run_shards(project, SCRIPTED, shards=3)
    assert [s.ret for s in shards] == [0, 0, 0]  # a job with nothing to do passes
    shards[2].assert_outcomes(deselected=2)
    assert summary_of(project.path, "shard3")["runs"] == []
    code, out, _ = merge(project, capsys, "shard1", "shard2", "shard3", "-o", "merged")
    assert code == 0 and "merged 2 runs of suite 'default' from 3 folders: 2 passed" in out


def _error(project: pytest.Pytester, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code, out, err = merge(project, capsys, *args, "-o", str(project.path / "merged"))
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_bad_folders_are_one_line_errors(project: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    write_evals(project, "entries: [mmlu:subject=anatomy, mmlu:subject=astronomy]\n")
    run_shards(project, SCRIPTED)
    project.runpytest(*SCRIPTED, "--llmeval-shard", "1/2", "--llmeval-output-path", "other",
                      "--llmeval-suite", "nightly")
    s1, s2 = project.path / "shard1", project.path / "shard2"
    empty = project.path / "empty"
    empty.mkdir()
    assert _error(project, capsys, str(s1), str(project.path / "nowhere")).endswith("nowhere: no such folder")
    assert _error(project, capsys, str(s1), str(empty)) == (
        f"llmeval merge: {empty}: not a pytest-llmeval output folder (no runs/<suite>/llmeval_summary.json)")
    assert _error(project, capsys, str(s1), str(project.path / "other")) == (
        f"llmeval merge: {project.path / 'other'}: suite 'nightly' differs from {s1}'s 'default'")
    assert _error(project, capsys, str(s1), str(s1)) == f"llmeval merge: shard 1/2 twice: {s1} and {s1}"
    assert _error(project, capsys, str(s1)) == f"llmeval merge: shard 2/2 missing: the folders hold shards 1/2 ({s1})"
    project.runpytest(*SCRIPTED, "--llmeval-shard", "2/3", "--llmeval-output-path", "third")
    assert _error(project, capsys, str(s1), str(project.path / "third")) == (
        f"llmeval merge: {project.path / 'third'}: shard 2/3 of another split than {s1} (a shard of 2)")
    assert "no runs/weekly/llmeval_summary.json" in _error(project, capsys, str(s1), str(s2), "--suite", "weekly")
    (s2 / "runs" / "default" / "llmeval_records.json").unlink()
    assert _error(project, capsys, str(s1), str(s2)).startswith(
        f"llmeval merge: {s2 / 'runs' / 'default' / 'llmeval_records.json'}: no run records")
    (s2 / "runs" / "default" / "llmeval_summary.json").write_text("{broken")
    assert "unreadable summary" in _error(project, capsys, str(s1), str(s2))
    assert not (project.path / "merged").exists()  # nothing written from input that cannot be merged


def test_a_run_folder_in_two_shards_is_an_error(project: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    write_evals(project, "entries: [mmlu:subject=anatomy, mmlu:subject=astronomy]\n")
    run_shards(project, SCRIPTED)
    [folder] = [p for p in (project.path / "shard1" / "runs" / "default").iterdir() if p.is_dir()]
    (project.path / "shard2" / "runs" / "default" / folder.name).mkdir()
    line = _error(project, capsys, str(project.path / "shard1"), str(project.path / "shard2"))
    assert line == (f"llmeval merge: run folder {folder.name} is in two shards: {project.path / 'shard1'} and "
                    f"{project.path / 'shard2'}")


def test_paths_are_moved_into_the_merged_folder(tmp_path: Path) -> None:
    target = tmp_path / "merged" / "runs" / "nightly"
    written = "/home/runner/ci/p/shard/runs/nightly/mmlu:subject=anatomy,model=m"
    assert moved(written, ("runs", "nightly"), target) == str(target / "mmlu:subject=anatomy,model=m")
    assert moved("/elsewhere/run", ("runs", "nightly"), target) == "/elsewhere/run"
    assert moved("", ("runs", "nightly"), target) == ""


def test_run_files_of_one_run_folder_are_merged(tmp_path: Path) -> None:
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    game = {"game_path": "g", "benchmark_start": "2026-01-01T10:00:00", "benchmark_end": "2026-01-01T10:01:00"}
    one.write_text(json.dumps({"clem_version": "3.7.2", "created": "2026-01-01T10:00:00", "games": {
        "taboo": {**game, "experiments": {"high_en": 2}, "num_instances": 2},
        "hellogame": {**game, "experiments": {"greet_en": 3}, "num_instances": 3}}}))
    two.write_text(json.dumps({"clem_version": "3.7.2", "created": "2026-01-01T09:59:00", "games": {
        "taboo": {"game_path": "g", "benchmark_start": "2026-01-01T10:00:30", "benchmark_end": "2026-01-01T10:03:00",
                  "experiments": {"low_en": 4, "medium_en": 1}, "num_instances": 5}}}))
    merged = merge_run_files([one, two])
    assert merged["created"] == "2026-01-01T09:59:00"
    taboo = merged["games"]["taboo"]
    assert taboo["experiments"] == {"high_en": 2, "low_en": 4, "medium_en": 1} and taboo["num_instances"] == 7
    assert (taboo["benchmark_start"], taboo["benchmark_end"]) == ("2026-01-01T10:00:00", "2026-01-01T10:03:00")
    assert taboo["duration_seconds"] == 180.0
    assert merged["games"]["hellogame"]["num_instances"] == 3
    (tmp_path / "bad.json").write_text("[]")
    with pytest.raises(MergeError, match=r"bad\.json: not a clembench run\.json"):
        merge_run_files([one, tmp_path / "bad.json"])


# --- dialogue games --------------------------------------------------------------------------

PLAYERS = '''
import re


class Mixed:
    """Greets correctly, wrongly or out of format depending on the guest; plays taboo badly."""
    def generate(self, requests):
        answers = []
        for request in requests:
            text = request.messages[-1].content if request.messages else request.prompt
            name = re.search(r"name is:\\s*\\n\\s*\\n(\\S+)", text)
            if name:
                n = name.group(1)
                answers.append([f"GREET: Hello {n}, welcome!", "GREET: hello", "Hi!"][len(n) % 3])
            elif "CLUE" in text and "secret word is" not in text:
                answers.append("GUESS: house")
            else:
                answers.append("CLUE: an everyday thing")
        return answers
'''
PLAYER_DEPLOYMENT = """
  - name: scripted/mixed
    model_name: scripted/mixed
    client_spec: {class_name: "scripted_players:Mixed"}
"""


def test_game_records_merge_into_one_clemscore(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    write_models(pytester.path)
    pytester.makepyfile(scripted_players=PLAYERS)
    registry = pytester.path / "prod_env" / "model_deployments.yaml"
    registry.write_text(registry.read_text() + PLAYER_DEPLOYMENT)
    make_importable(pytester, monkeypatch)
    (pytester.path / "games.yaml").write_text("games: [hellogame, taboo]\n")
    args = ["--llmeval-models", "scripted/mixed", "--llmeval-max-episodes", "2", "--llmeval-disable-cache",
            "-p", "no:cacheprovider"]
    pytester.runpytest(*args, "--llmeval-output-path", "whole").assert_outcomes(passed=4)
    shards = run_shards(pytester, args)
    assert [s.ret for s in shards] == [0, 0]
    code, out, _ = merge(pytester, capsys, "shard1", "shard2", "-o", "merged")
    assert code == 0, out
    whole, merged = pytester.path / "whole" / "results", pytester.path / "merged" / "results"
    assert json.loads((merged / "results.json").read_text()) == json.loads((whole / "results.json").read_text())
    episodes = sorted(p.parent.relative_to(merged) for p in merged.rglob("scores.json"))
    assert episodes == sorted(p.parent.relative_to(whole) for p in whole.rglob("scores.json")) and len(episodes) == 8
    runs = json.loads((merged / "scripted_mixed" / "run.json").read_text())["games"]
    expected = json.loads((whole / "scripted_mixed" / "run.json").read_text())["games"]
    for game in ("hellogame", "taboo"):
        assert runs[game]["experiments"] == expected[game]["experiments"]
        assert runs[game]["num_instances"] == expected[game]["num_instances"]
    assert stable(summary_of(pytester.path, "merged")) == stable(summary_of(pytester.path, "whole"))


# --- the real model --------------------------------------------------------------------------


@pytest.mark.slow
def test_shards_of_the_bundled_model_merge_to_the_unsharded_summary(
        project: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    write_evals(project, FOUR_SUBJECTS)
    args = ["--llmeval-models", BUNDLED, "--llmeval-max-eval-instances", "2", "--llmeval-disable-cache",
            "-p", "no:cacheprovider"]
    project.runpytest(*args, "--llmeval-output-path", "whole").assert_outcomes(passed=4)
    one, two = run_shards(project, args)
    one.assert_outcomes(passed=2, deselected=2)
    two.assert_outcomes(passed=2, deselected=2)
    code, out, _ = merge(project, capsys, str(project.path / "shard1"), str(project.path / "shard2"),
                         "-o", str(project.path / "merged"))
    assert code == 0, out
    merged = summary_of(project.path, "merged")
    assert stable(merged) == stable(summary_of(project.path, "whole"))
    assert {r["model"] for r in merged["runs"]} == {BUNDLED} and len(merged["runs"]) == 4
