"""Run folders named as helm-run names them, and suite files helm-summarize leaves alone, through
pytest serially and with ``-n 2``; one case on the real bundled SmolLM2 model."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.projects import LETTER_MODEL, scripted_project
from tests.report_project import XDIST, write_evals

# Two deployments of one model: HELM's default is the last one listed.
TWO_DEPLOYMENTS = textwrap.dedent("""
    model_deployments:
      - {name: scripted/letters, model_name: acme/letters, client_spec: {class_name: 'scripted_model:LetterModel'}}
      - {name: mirror/letters, model_name: acme/letters, client_spec: {class_name: 'scripted_model:LetterModel'}}
""")
ENTRIES = """
    entries:
      - mmlu:subject=anatomy
      - mmlu:max_train_instances=1,subject=anatomy,eval_split=test
      - synthetic_reasoning:mode=pattern_match,temperature=0.5
"""
# What helm-summarize writes under runs/<suite>/ (crfm-helm 0.5.16's summarize.py): never ours.
HELM_SUITE_FILES = {"summary.json", "schema.json", "run_specs.json", "runs.json", "runs_to_run_suites.json",
                    "groups.json", "groups_metadata.json", "costs.json", "groups"}


def _suite(root: Path) -> Path:
    return root / "benchmark_output" / "runs" / "default"


@pytest.mark.parametrize("xdist", XDIST)
def test_run_folders_and_suite_files(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                     xdist: list[str]) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    project = scripted_project(pytester, monkeypatch, LETTER_MODEL, TWO_DEPLOYMENTS)
    write_evals(project, ENTRIES)
    result = project.runpytest("--llmeval-models", "scripted/letters,mirror/letters",
                               "--llmeval-max-eval-instances", "2", "--llmeval-disable-cache", *xdist)
    result.assert_outcomes(passed=6)
    suite = _suite(project.path)
    mmlu = "mmlu:subject=anatomy,method=multiple_choice_joint"
    runs = [f"{mmlu},model=acme_letters", f"{mmlu},max_train_instances=1,eval_split=test,model=acme_letters",
            "synthetic_reasoning:mode=pattern_match,model=acme_letters"]
    other = ",model_deployment=scripted_letters"  # the deployment that is not the model's default
    assert sorted(p.name for p in suite.iterdir() if p.is_dir()) == sorted(runs + [r + other for r in runs])
    for run in suite.iterdir():
        if run.is_dir():
            spec = json.loads((run / "run_spec.json").read_text())
            assert spec["name"] == run.name
            assert spec["adapter_spec"]["model"] == "acme/letters"
    files = {p.name for p in suite.iterdir() if not p.is_dir()}
    assert {"llmeval_summary.json", "llmeval_report.html"} <= files and not files & HELM_SUITE_FILES
    summary = json.loads((suite / "llmeval_summary.json").read_text())
    assert sorted(r["run"] for r in summary["runs"]) == sorted(runs + [r + other for r in runs])


def test_entries_that_differ_only_in_temperature_share_a_folder_with_a_warning(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    project = scripted_project(pytester, monkeypatch, LETTER_MODEL, TWO_DEPLOYMENTS)
    write_evals(project, """
        entries:
          - synthetic_reasoning:mode=pattern_match
          - synthetic_reasoning:mode=pattern_match,temperature=0.5
    """)
    result = project.runpytest("--llmeval-models", "mirror/letters", "--llmeval-max-eval-instances", "2")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["warning: 2 items wrote the run folder *synthetic_reasoning:mode=pattern_match,"
                                 "model=acme_letters (the last one's files are kept): *"])


@pytest.mark.slow
def test_bundled_model_run_is_named_and_specified_as_helm_run(pytester: pytest.Pytester) -> None:
    write_evals(pytester, "entries: [mmlu:subject=anatomy]\n")
    result = pytester.runpytest("--llmeval-max-eval-instances", "10")
    result.assert_outcomes(passed=1)
    [run] = [p for p in _suite(pytester.path).iterdir() if p.is_dir()]
    assert run.name == "mmlu:subject=anatomy,method=multiple_choice_joint,model=HuggingFaceTB_SmolLM2-135M-Instruct"
    spec = json.loads((run / "run_spec.json").read_text())
    assert spec["scenario_spec"] == {"class_name": "helm.benchmark.scenarios.mmlu_scenario.MMLUScenario",
                                     "args": {"subject": "anatomy"}}
    assert (spec["adapter_spec"]["model_deployment"], spec["adapter_spec"]["max_eval_instances"]) == (
        "local/smollm2-135m-instruct", 10)
    states = json.loads((run / "scenario_state.json").read_text())["request_states"]
    # What helm-run 0.5.16 evaluated for mmlu:subject=anatomy with --max-eval-instances 10, in its order
    # (ids over the 5 dev rows, then val and test).
    assert [s["instance"]["id"] for s in states] == ["id138", "id114", "id64", "id85", "id12", "id109", "id145",
                                                     "id100", "id123", "id89"]
    assert all(len(s["result"]["completions"]) == 1 and s["result"]["completions"][0]["text"] for s in states)
