"""GSM8K, BoolQ and synthetic reasoning end to end through pytest (pytester), serially and with
``-n 2``: a scripted model that is right on some questions and wrong on others, and the real
bundled model on a few instances. Every run's stats are recomputed here, independently, from
the predictions and references stored in ``scenario_state.json``."""

from __future__ import annotations

import json
import os
import re
import shutil
import string
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.projects import scripted_project

XDIST = [pytest.param([], id="serial"), pytest.param(["-n", "2"], id="xdist")]
REPO = Path(__file__).resolve().parents[1]
BUNDLED_EVALS = REPO / "evals" / "eval_scenarios.yaml"
DATA_DIR = Path(os.environ.get("LLMEVAL_DATA_DIR") or REPO.parent / "shared" / "data")
needs_data = pytest.mark.skipif(not (DATA_DIR / "gsm8k" / "test.jsonl").is_file()
                                or not (DATA_DIR / "boolq" / "dev.jsonl").is_file(),
                                reason=f"no GSM8K/BoolQ data mirror at {DATA_DIR}")

SCRIPTED_MODEL = r'''
"""Answers each scenario in its own format; right on some questions, wrong on others."""
import json
import os
import re
from pathlib import Path


class Solver:
    def __init__(self) -> None:
        self.gsm = None

    def generate(self, requests):
        return [self.answer(r.prompt) for r in requests]

    def answer(self, prompt):
        last = prompt.rsplit("\n\n", 1)[-1]
        if last.startswith("Q: "):
            question = last[len("Q: "):-len("\nA:")]
            number = int(self.gsm_answers()[question].replace(",", ""))
            if len(question) % 3 == 0:
                return f" Adding it all up gives ${number:,}.00 in total."
            if len(question) % 3 == 1:
                return f" So {number} - 0 = {number}. The answer is {number}."
            return f" The answer is {number + 1}."
        if last.startswith("Passage: "):
            return " Yes" if len(last) % 2 else " no."
        if last.startswith("Rules: ") and " | Result: " in last:
            return " " + last[len("Rules: "):].split(" | ")[0]
        if last.startswith("Rules: "):
            rule, substitutions = last[len("Rules: "):-len("\nTarget:")].split(" | Substitutions: ")
            words = dict(re.findall(r'([XYZ]) by " ([a-z ]+?) "', substitutions))
            if len(last) % 2:
                return " " + rule
            return " " + " ".join(words.get(t, t) for t in rule.split())
        if last.startswith("Two results: "):
            return " Rule: X + Y"
        return " ?"

    def gsm_answers(self):
        if self.gsm is None:
            path = Path(os.environ["LLMEVAL_DATA_DIR"], "gsm8k", "test.jsonl")
            rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            self.gsm = {r["question"]: r["answer"].rpartition("####")[2].strip() for r in rows}
        return self.gsm
'''

DEPLOYMENTS = """
model_deployments:
  - name: scripted/solver
    model_name: scripted/solver
    client_spec:
      class_name: scripted_model:Solver
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A project with the scripted model registered in prod_env/ and importable by workers."""
    scripted_project(pytester, monkeypatch, SCRIPTED_MODEL, DEPLOYMENTS)
    monkeypatch.setenv("LLMEVAL_DATA_DIR", str(DATA_DIR))
    return pytester


# --- an independent recomputation of the metrics ------------------------------------------------


def _normalize(text: str) -> str:
    text = "".join(c for c in text.lower() if c not in string.punctuation)
    return " ".join(w for w in text.split() if w not in ("a", "an", "the"))


def _last_number(text: str) -> str:
    """HELM's final number: the last match of its pattern, commas removed ("" when none)."""
    numbers = re.findall(r"-?[\d,]+(?:.\d+)?", text)
    return numbers[-1].replace(",", "") if numbers else ""


RECOMPUTE: dict[str, Callable[[str, str], bool]] = {
    "exact_match": lambda gold, pred: pred == gold.strip(),
    "quasi_exact_match": lambda gold, pred: _normalize(pred) == _normalize(gold),
    "prefix_exact_match": lambda gold, pred: pred.startswith(gold.strip()),
    "quasi_prefix_exact_match": lambda gold, pred: _normalize(pred).startswith(_normalize(gold)),
    "exact_match_indicator": lambda gold, pred: pred.split(" ")[-1] == gold.split(" ")[-1],
    "final_number_exact_match": lambda gold, pred: _last_number(pred) != ""
    and _last_number(pred) == _last_number(gold),
}


def check_stats_against_predictions(run: Path) -> dict[str, float]:
    """Recompute every reference metric from scenario_state.json; compare with stats.json.
    Returns each metric's mean over the evaluated split."""
    states = json.loads((run / "scenario_state.json").read_text())["request_states"]
    stats = json.loads((run / "stats.json").read_text())
    metrics = {s["name"]["name"] for s in stats} & set(RECOMPUTE)
    assert metrics, f"no reference metric in {run / 'stats.json'}"
    means = {}
    for metric in metrics:
        by_split: dict[str, list[float]] = {}
        for state in states:
            pred = state["result"]["completions"][0]["text"].strip()
            golds = [r["output"]["text"] for r in state["instance"]["references"] if "correct" in r["tags"]]
            value = float(bool(pred) and any(RECOMPUTE[metric](gold, pred) for gold in golds))
            by_split.setdefault(state["instance"]["split"], []).append(value)
        for split, values in by_split.items():
            [stat] = [s for s in stats if s["name"] == {"name": metric, "split": split}]
            assert stat["count"] == 1, (run.name, metric, split)  # one train trial
            assert stat["mean"] == pytest.approx(sum(values) / len(values)), (run.name, metric, split)
            means[metric] = stat["mean"]
    return means


def runs_of(root: Path, output: str = "benchmark_output", suite: str = "default") -> dict[str, Path]:
    return {run.name.split(",model=")[0]: run for run in sorted((root / output / "runs" / suite).iterdir())
            if run.is_dir()}


# --- the scripted model -------------------------------------------------------------------------


def test_bundled_entries_are_selected_by_scenario_name(project: pytest.Pytester) -> None:
    shutil.copy(BUNDLED_EVALS, project.path / BUNDLED_EVALS.name)
    for keyword, count in (("gsm", 1), ("boolq", 1), ("synthetic_reasoning", 3), ("induction", 1)):
        result = project.runpytest("--collect-only", "-q", "-k", keyword, "--llmeval-models", "scripted/solver")
        assert len([line for line in result.outlines if "::" in line]) == count, keyword
    result = project.runpytest("--collect-only", "-q", "--llmeval-models", "scripted/solver")
    result.stdout.fnmatch_lines([
        "eval_scenarios.yaml::gsm:examples_from=heldout[[]scripted/solver[]]",
        "eval_scenarios.yaml::boolq:examples_from=heldout[[]scripted/solver[]]",
        "eval_scenarios.yaml::synthetic_reasoning:mode=pattern_match[[]scripted/solver[]]",
    ])


@needs_data
@pytest.mark.parametrize("xdist", XDIST)
def test_bundled_entries_run_and_their_stats_match_the_predictions(project: pytest.Pytester,
                                                                  xdist: list[str]) -> None:
    shutil.copy(BUNDLED_EVALS, project.path / BUNDLED_EVALS.name)
    result = project.runpytest("--llmeval-models", "scripted/solver", "--llmeval-max-eval-instances", "30", *xdist)
    result.assert_outcomes(passed=5)
    runs = runs_of(project.path)
    assert sorted(runs) == sorted([
        "gsm:examples_from=heldout", "boolq:examples_from=heldout", "synthetic_reasoning:mode=pattern_match",
        "synthetic_reasoning:mode=variable_substitution", "synthetic_reasoning:mode=induction"])
    means = {name: check_stats_against_predictions(run) for name, run in runs.items()}
    gsm = means["gsm:examples_from=heldout"]
    # The scripted model's number is HELM's final number (the same string) on about a third of
    # GSM8K; no more of its answers are in HELM's exact words.
    assert 0.2 < gsm["final_number_exact_match"] < 0.9
    assert 0.1 < gsm["exact_match_indicator"] <= gsm["final_number_exact_match"]
    boolq = means["boolq:examples_from=heldout"]
    assert boolq["exact_match"] < boolq["quasi_exact_match"]  # " no." is right only once normalised
    assert 0.0 < means["synthetic_reasoning:mode=pattern_match"]["exact_match"] < 1.0
    assert 0.0 < means["synthetic_reasoning:mode=variable_substitution"]["exact_match"] < 1.0
    assert means["synthetic_reasoning:mode=induction"]["exact_match"] < 0.5
    result.stdout.fnmatch_lines(["*llmeval runs*", "*scripted/solver*gsm:examples_from=heldout*"
                                 "final_number_exact_match*"])
    states = json.loads((runs["gsm:examples_from=heldout"] / "scenario_state.json").read_text())
    assert {s["instance"]["split"] for s in states["request_states"]} == {"test"}
    assert all(s["request"]["stop_sequences"] == ["\n\n"] and s["request"]["max_tokens"] == 400
               for s in states["request_states"])


@pytest.mark.parametrize("xdist", XDIST)
def test_same_seed_same_instances_across_runs(project: pytest.Pytester, xdist: list[str]) -> None:
    (project.path / "eval_seeds.yaml").write_text(
        "entries:\n"
        "  - synthetic_reasoning:mode=induction,random_seed=3\n"
        "  - synthetic_reasoning:mode=induction,random_seed=4\n")
    args = ["--llmeval-models", "scripted/solver", "--llmeval-max-eval-instances", "5", *xdist]
    project.runpytest(*args, "--llmeval-suite", "first").assert_outcomes(passed=2)
    project.runpytest(*args, "--llmeval-suite", "second").assert_outcomes(passed=2)

    def instances(suite: str, seed: int) -> list[dict[str, object]]:
        run = runs_of(project.path, suite=suite)[f"synthetic_reasoning:mode=induction,random_seed={seed}"]
        check_stats_against_predictions(run)
        return [s["instance"] for s in json.loads((run / "scenario_state.json").read_text())["request_states"]]

    assert instances("first", 3) == instances("second", 3)
    assert [i["input"] for i in instances("first", 3)] != [i["input"] for i in instances("first", 4)]


@needs_data
@pytest.mark.parametrize("xdist", XDIST)
def test_gates_read_the_scenarios_metrics(project: pytest.Pytester, xdist: list[str]) -> None:
    (project.path / "eval_gated.yaml").write_text(
        "entries:\n"
        "  - description: gsm:examples_from=heldout\n"
        "    gates: ['final_number_exact_match >= 0.1']\n"
        "  - description: boolq:examples_from=heldout\n"
        "    gates: ['exact_match@valid >= 0.99']\n")
    result = project.runpytest("--llmeval-models", "scripted/solver", "--llmeval-max-eval-instances", "10", *xdist)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*boolq:examples_from=heldout*gate failed: exact_match = 0.* on split valid "
                                 "(n=10), required >= 0.99*"])


@pytest.mark.parametrize("xdist", XDIST)
def test_bad_arguments_fail_their_item_naming_the_field(project: pytest.Pytester, xdist: list[str]) -> None:
    (project.path / "eval_bad.yaml").write_text(
        "entries: [synthetic_reasoning:mode=riddles, 'gsm:examples_from=dev', synthetic_reasoning:mode=induction]\n")
    result = project.runpytest("--llmeval-models", "scripted/solver", "--llmeval-max-eval-instances", "2", *xdist)
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines_random([
        "*synthetic_reasoning:mode=riddles*field mode: mode='riddles'*use mode= one of pattern_match*",
        "*gsm:examples_from=dev*field examples_from: examples_from='dev'*use train*or heldout*",
    ])


@needs_data
@pytest.mark.parametrize("xdist", XDIST)
def test_gsm_without_its_train_file_offline_says_how_to_proceed(project: pytest.Pytester, xdist: list[str],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMEVAL_OFFLINE", "1")
    monkeypatch.setenv("LLMEVAL_CACHE_DIR", str(project.path / "user-cache"))
    (project.path / "eval_gsm.yaml").write_text("entries: [gsm]\n")
    result = project.runpytest("--llmeval-models", "scripted/solver", *xdist)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*data file gsm8k/train.jsonl*not found*gsm:examples_from=heldout*"])


# --- the real bundled model ---------------------------------------------------------------------


@needs_data
@pytest.mark.slow
def test_each_scenario_on_the_bundled_model(pytester: pytest.Pytester) -> None:
    """Two instances each, generation kept short. The ``-n 2`` rerun is served from the request
    cache the serial run filled (the model's work is not repeated) and gives the same stats."""
    (pytester.path / "eval_real.yaml").write_text(
        "entries:\n"
        "  - gsm:examples_from=heldout,max_tokens=24\n"
        "  - boolq:examples_from=heldout\n"
        "  - synthetic_reasoning:mode=pattern_match,max_tokens=12\n"
        "  - synthetic_reasoning:mode=variable_substitution,max_tokens=12\n"
        "  - synthetic_reasoning:mode=induction,max_tokens=12\n")
    common = ["--llmeval-max-eval-instances", "2"]
    pytester.runpytest(*common, "--llmeval-output-path", "serial").assert_outcomes(passed=5)
    pytester.runpytest(*common, "--llmeval-output-path", "spread", "-n", "2").assert_outcomes(passed=5)
    serial, spread = runs_of(pytester.path, "serial"), runs_of(pytester.path, "spread")
    assert sorted(serial) == sorted(spread) and len(serial) == 5
    for run in spread.values():
        assert all(s["result"]["cached"] for s in json.loads((run / "scenario_state.json").read_text())[
            "request_states"]), run.name
    for name, run in serial.items():
        assert check_stats_against_predictions(run) == check_stats_against_predictions(spread[name]), name
        states = json.loads((run / "scenario_state.json").read_text())["request_states"]
        assert len(states) == 2
        for state in states:
            completion = state["result"]["completions"][0]
            assert 0 < len(completion["tokens"]) <= state["request"]["max_tokens"]
            for stop in state["request"]["stop_sequences"]:
                assert stop not in completion["text"], (name, completion["text"])
        if name.startswith("boolq"):  # HELM's prompt gets a one-word yes/no answer even from a 135M model
            assert all(_normalize(s["result"]["completions"][0]["text"]) in ("yes", "no") for s in states)
