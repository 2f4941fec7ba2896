"""The summary, the report and baselines end to end through pytest, each serially and with ``-n 2``.

Scripted models keep most cases fast; the ``slow`` ones run the real bundled SmolLM2 model.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.report_project import (
    XDIST,
    deployments,
    make_project,
    set_deployments,
    stable_runs,
    stats_json,
    summary_of,
    write_evals,
)

BUNDLED = "local/smollm2-135m-instruct"


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    return make_project(pytester, monkeypatch)


THREE_SUBJECTS = """
    entries:
      - mmlu:subject=anatomy
      - mmlu:subject=astronomy
      - description: mmlu:subject=virology
        gates: ["exact_match >= 0.99"]
"""


def test_serial_and_xdist_give_the_same_summary(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # when this suite itself runs under xdist
    write_evals(project, THREE_SUBJECTS)
    common = ["--llmeval-models", "scripted/letters,scripted/oracle", "--llmeval-max-eval-instances", "6",
              "--llmeval-disable-cache"]
    serial = project.runpytest(*common, "--llmeval-output-path", "serial", "--junitxml", "serial.xml")
    serial.assert_outcomes(passed=5, failed=1)
    spread = project.runpytest(*common, "--llmeval-output-path", "spread", "-n", "2", "--junitxml", "spread.xml")
    spread.assert_outcomes(passed=5, failed=1)
    one, two = summary_of(project.path, "serial"), summary_of(project.path, "spread")
    assert len(one["runs"]) == 6  # every item once: nothing lost, nothing counted twice
    assert stable_runs(one) == stable_runs(two)
    assert {r["worker"] for r in two["runs"]} <= {"gw0", "gw1"} and {r["worker"] for r in one["runs"]} == {"master"}
    assert one["totals"]["passed"] == two["totals"]["passed"] == 5
    for summary, output in ((one, "serial"), (two, "spread")):
        for run in summary["runs"]:
            stats = stats_json(run["output_dir"])
            stat = next(s for s in stats if s["name"] == {"name": "exact_match", "split": run["split"]})
            instances = next(s for s in stats if s["name"] == {"name": "num_instances", "split": run["split"]})
            assert run["value"] == pytest.approx(stat["mean"]) and run["count"] == instances["mean"]
            assert run["ci95"][0] <= run["value"] <= run["ci95"][1]
            assert run["seconds"] >= 0 and Path(run["output_dir"]).parent == project.path / output / "runs" / "default"
        assert (project.path / output / "runs" / "default" / "llmeval_report.html").is_file()
    virology = next(r for r in one["runs"]
                    if r["label"] == "mmlu:subject=virology" and r["model"] == "scripted/letters")
    assert virology["outcome"] == "failed" and "required >= 0.99" in virology["failures"][0]
    spread.stdout.fnmatch_lines([
        "*llmeval runs*",
        "model*run*metric*value*95% CI*n*requests*cached*seconds*",
        "scripted/letters*mmlu:subject=virology*exact_match*FAILED",
        "summary: *spread/runs/default/llmeval_summary.json",
        "report: *spread/runs/default/llmeval_report.html",
    ])
    for xml in ("serial.xml", "spread.xml"):
        cases = list(ET.parse(project.path / xml).getroot().iter("testcase"))
        assert len(cases) == 6
        for case in cases:
            props = {p.get("name"): p.get("value") for p in case.iter("property")}
            assert {"llmeval_metric", "llmeval_value", "llmeval_count", "llmeval_seconds", "llmeval_ci95"} <= set(props)


@pytest.mark.parametrize("xdist", XDIST)
def test_a_run_that_errors_is_listed_and_the_others_are_kept(project: pytest.Pytester, xdist: list[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMEVAL_OFFLINE", "1")
    monkeypatch.setenv("LLMEVAL_CACHE_DIR", str(project.path / "user-cache"))
    write_evals(project, """
        entries:
          - mmlu:subject=anatomy
          - mmlu:subject=no_such_subject
    """)
    result = project.runpytest("--llmeval-models", "scripted/letters", "--llmeval-max-eval-instances", "3", *xdist)
    result.assert_outcomes(passed=1, failed=1)
    runs = {r["label"]: r for r in summary_of(project.path)["runs"]}
    assert runs["mmlu:subject=anatomy"]["outcome"] == "passed"
    broken = runs["mmlu:subject=no_such_subject"]
    assert broken["outcome"] == "error" and broken["failures"] and broken["value"] is None
    result.stdout.fnmatch_lines(["scripted/letters*mmlu:subject=no_such_subject*n/a*ERROR"])


FLAKY_MODEL = """
from pytest_llmeval.requests import RequestResult


class FlakyModel:
    def generate(self, requests):
        return [RequestResult(success=False, error="flaky backend") if len(r.prompt) % 2 == 0 else " A"
                for r in requests]
"""
FLAKY_DEPLOYMENT = """  - name: scripted/flaky
    model_name: scripted/flaky
    client_spec: {class_name: "flaky_models:FlakyModel"}
"""


@pytest.mark.parametrize("xdist", XDIST)
def test_a_run_that_fails_after_sending_requests_shows_its_counts(project: pytest.Pytester,
                                                                  xdist: list[str]) -> None:
    (project.path / "flaky_models.py").write_text(FLAKY_MODEL)
    (project.path / "prod_env" / "model_deployments.yaml").write_text(deployments() + FLAKY_DEPLOYMENT)
    write_evals(project, "entries: [mmlu:subject=anatomy]\n")
    args = ["--llmeval-models", "scripted/flaky", "--llmeval-max-eval-instances", "6", *xdist]
    first = project.runpytest(*args)
    first.assert_outcomes(failed=1)
    [run] = summary_of(project.path)["runs"]
    found = re.search(r"ClientError: (\d+) of 6 requests failed", run["failures"][0])
    assert found is not None
    failed = int(found.group(1))
    assert 0 < failed < 6
    assert (run["outcome"], run["requests"], run["cache_hits"], run["value"]) == ("error", 6, 0, None)
    assert run["run"].startswith("mmlu:subject=anatomy,") and run["instances"] == 6
    states = json.loads((Path(run["output_dir"]) / "scenario_state.json").read_text())["request_states"]
    assert len(states) == 6 and sum(not s["result"]["success"] for s in states) == failed
    first.stdout.fnmatch_lines(["scripted/flaky*mmlu:subject=anatomy*exact_match*n/a*0*6*0*ERROR"])

    again = project.runpytest(*args)  # the answers that succeeded come from the cache
    again.assert_outcomes(failed=1)
    [run] = summary_of(project.path)["runs"]
    assert (run["requests"], run["cache_hits"]) == (6, 6 - failed)
    again.stdout.fnmatch_lines([f"scripted/flaky*mmlu:subject=anatomy*exact_match*n/a*0*6*{6 - failed}*ERROR"])


PROPERTY_ONLY_ITEM = """
import json


def test_game_like_item(record_property, tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    (run / "stats.json").write_text(json.dumps([{"name": {"name": "quality_score", "split": "test"}, "count": 2,
                                                 "sum": 150.0, "sum_squared": 12500.0, "min": 50.0, "max": 100.0}]))
    for key, value in {"llmeval_run": "taboo:experiment=high_en", "llmeval_model": "m",
                       "llmeval_metric": "quality_score", "llmeval_output": str(run), "llmeval_seconds": 1.5,
                       "llmeval_game": {"game": "taboo", "players": "m--m", "experiment": "high_en",
                                        "episodes": [[0, 0, 50.0], [1, 0, 100.0]]}}.items():
        record_property(key, value)
"""


@pytest.mark.parametrize("xdist", XDIST)
def test_items_that_only_report_properties_are_summarised(pytester: pytest.Pytester, xdist: list[str]) -> None:
    pytester.makepyfile(test_game_like=PROPERTY_ONLY_ITEM)
    pytester.runpytest(*xdist).assert_outcomes(passed=1)
    [run] = summary_of(pytester.path)["runs"]
    assert (run["kind"], run["scenario"], run["main_metric"], run["value"], run["count"]) == (
        "game", "taboo", "quality_score", 75.0, 2)
    assert run["seconds"] == 1.5 and run["outcome"] == "passed" and run["nodeid"].endswith("test_game_like_item")


def test_no_report_keeps_the_summary(project: pytest.Pytester) -> None:
    write_evals(project, "entries: [mmlu:subject=anatomy]\n")
    result = project.runpytest("--llmeval-models", "scripted/letters", "--llmeval-max-eval-instances", "2",
                               "--llmeval-no-report")
    result.assert_outcomes(passed=1)
    suite = project.path / "benchmark_output" / "runs" / "default"
    assert (suite / "llmeval_summary.json").is_file() and not (suite / "llmeval_report.html").exists()
    assert summary_of(project.path)["report"] is None
    assert "report: " not in result.stdout.str()


def _baseline_args(*extra: str) -> list[str]:
    return ["--llmeval-models", "scripted/oracle", "--llmeval-max-eval-instances", "20", *extra]


@pytest.mark.parametrize("xdist", XDIST)
def test_baseline_identical_rerun_passes_and_a_real_drop_fails(project: pytest.Pytester, xdist: list[str]) -> None:
    write_evals(project, "entries: [mmlu:subject=anatomy, mmlu:subject=astronomy]\n")
    saved = project.runpytest(*_baseline_args("--llmeval-save-baseline", "main", *xdist))
    saved.assert_outcomes(passed=2)
    path = project.path / "llmeval_baselines" / "0001_main.json"
    saved.stdout.fnmatch_lines([f"baseline saved: {path}"])
    baseline = json.loads(path.read_text())
    assert {r["key"] for r in baseline["runs"]} == {"mmlu:subject=anatomy[scripted/oracle]",
                                                     "mmlu:subject=astronomy[scripted/oracle]"}
    assert all(len(r["instances"]) == 20 and r["value"] == 1.0 for r in baseline["runs"])

    same = project.runpytest(*_baseline_args("--llmeval-compare", "main", *xdist))
    same.assert_outcomes(passed=2)
    same.stdout.fnmatch_lines(["*llmeval baseline 0001_main*",
                               "mmlu:subject=anatomy?scripted/oracle?: exact_match 1.0000 -> 1.0000 (+0.0000), "
                               "mcnemar p=1, tolerance exact_match: any drop: ok"])

    set_deployments(project, wrong_percent=50)  # the same deployment, degraded
    worse = project.runpytest(*_baseline_args("--llmeval-compare", "main", *xdist))
    worse.assert_outcomes(failed=2)
    summary = summary_of(project.path)
    for run in summary["runs"]:
        comparison = run["comparison"]
        [main] = comparison["metrics"]
        flips = comparison["right_to_wrong"]
        assert comparison["regression"] and flips == round((1.0 - run["value"]) * run["count"])
        assert main["delta"] == pytest.approx(run["value"] - 1.0) and main["p_value"] < 0.05
        name = run["name"].replace("[", "?").replace("]", "?")
        worse.stdout.fnmatch_lines([
            f"*{name}: regression against baseline 0001_main: exact_match 1.0000 -> {run['value']:.4f} "
            f"({main['delta']:+.4f}, * McNemar exact p=* < 0.05; {flips} right->wrong, 0 wrong->right*",
        ])
    worse.stdout.fnmatch_lines(["*REGRESSION*", "  * right->wrong: id*' ?'->' ?'*"])
    page = (project.path / "benchmark_output" / "runs" / "default" / "llmeval_report.html").read_text()
    assert "Changes against the baseline" in page and "REGRESSION" in page and "right \u2192 wrong (" in page

    lenient = project.runpytest(*_baseline_args("--llmeval-compare", "main", "--llmeval-compare-fail",
                                                "exact_match:-80%", *xdist))
    lenient.assert_outcomes(passed=2)


@pytest.mark.parametrize("xdist", XDIST)
def test_a_few_flips_are_listed_but_do_not_fail(project: pytest.Pytester, xdist: list[str]) -> None:
    write_evals(project, "entries: [mmlu:subject=anatomy]\n")
    project.runpytest(*_baseline_args("--llmeval-save-baseline", "main", *xdist)).assert_outcomes(passed=1)
    set_deployments(project, wrong_percent=12)
    result = project.runpytest(*_baseline_args("--llmeval-compare", "main", "-rA", *xdist))
    result.assert_outcomes(passed=1)
    [run] = summary_of(project.path)["runs"]
    comparison = run["comparison"]
    assert 1 <= comparison["right_to_wrong"] <= 3 and not comparison["regression"]
    [main] = comparison["metrics"]
    assert main["beyond_tolerance"] and not main["significant"]
    result.stdout.fnmatch_lines(["*Captured llmeval baseline call*",  # the item's own section (-rA)
                                 f"*{comparison['right_to_wrong']} right->wrong: id*"])


@pytest.mark.parametrize("xdist", XDIST)
def test_a_changed_setting_is_compared_with_the_saved_run(project: pytest.Pytester, xdist: list[str]) -> None:
    write_evals(project, "entries: [mmlu:subject=anatomy]\n")
    project.runpytest(*_baseline_args("--llmeval-save-baseline", "main", *xdist)).assert_outcomes(passed=1)
    write_evals(project, "entries: ['mmlu:subject=anatomy,max_train_instances=0']\n")
    result = project.runpytest(*_baseline_args("--llmeval-compare", "main", *xdist))
    result.assert_outcomes(passed=1)  # the oracle does not need examples
    result.stdout.fnmatch_lines(["*mmlu:subject=anatomy,max_train_instances=0?scripted/oracle?: compared with "
                                 "baseline entry mmlu:subject=anatomy?scripted/oracle? (same scenario and model)",
                                 "*exact_match 1.0000 -> 1.0000 (+0.0000)*: ok"])


@pytest.mark.parametrize("xdist", XDIST)
def test_update_rewrites_the_baseline_and_reports_stale_entries(project: pytest.Pytester, xdist: list[str]) -> None:
    write_evals(project, "entries: [mmlu:subject=anatomy, mmlu:subject=astronomy, mmlu:subject=virology]\n")
    project.runpytest(*_baseline_args("--llmeval-save-baseline", "main", *xdist)).assert_outcomes(passed=3)
    write_evals(project, "entries: [mmlu:subject=anatomy, mmlu:subject=astronomy]\n")  # virology removed
    set_deployments(project, wrong_percent=50)
    updated = project.runpytest(*_baseline_args("--llmeval-compare", "main", "--llmeval-update-baseline",
                                                "-k", "anatomy", *xdist))
    updated.assert_outcomes(passed=1)  # regressions are reported, not failed, while updating
    path = project.path / "llmeval_baselines" / "0001_main.json"
    updated.stdout.fnmatch_lines([
        "*REGRESSION*",
        f"baseline rewritten: {path} (1 runs)",
        "baseline entries no collected item produced (removed): mmlu:subject=virology?scripted/oracle?",
        "baseline entries of items not run this time (kept): mmlu:subject=astronomy?scripted/oracle?",
    ])
    runs = {r["key"]: r for r in json.loads(path.read_text())["runs"]}
    assert sorted(runs) == ["mmlu:subject=anatomy[scripted/oracle]", "mmlu:subject=astronomy[scripted/oracle]"]
    assert runs["mmlu:subject=anatomy[scripted/oracle]"]["value"] < 1.0
    assert runs["mmlu:subject=astronomy[scripted/oracle]"]["value"] == 1.0
    assert not list((project.path / "llmeval_baselines").glob("0002_*"))
    project.runpytest(*_baseline_args("--llmeval-compare", "main", "-k", "anatomy", *xdist)).assert_outcomes(passed=1)


@pytest.mark.parametrize("xdist", XDIST)
def test_perturbed_copies_are_listed_but_compared_as_originals_only(project: pytest.Pytester,
                                                                    xdist: list[str]) -> None:
    write_evals(project, "entries: ['mmlu:subject=anatomy,data_augmentation=robustness']\n")
    project.runpytest(*_baseline_args("--llmeval-save-baseline", "main", *xdist)).assert_outcomes(passed=1)
    [entry] = json.loads((project.path / "llmeval_baselines" / "0001_main.json").read_text())["runs"]
    perturbed = [i for i in entry["instances"] if i.get("perturbation")]
    originals = [i for i in entry["instances"] if not i.get("perturbation")]
    assert len(originals) == 20 and perturbed and {i["perturbation"] for i in perturbed} == {"mild_mix"}
    assert all(i["metrics"]["exact_match"] == 1.0 for i in originals)
    assert len({i["key"] for i in entry["instances"]}) == len(entry["instances"])
    result = project.runpytest(*_baseline_args("--llmeval-compare", "main", *xdist))
    result.assert_outcomes(passed=1)
    [run] = summary_of(project.path)["runs"]
    [main] = run["comparison"]["metrics"]
    assert main["paired"] == sum(1 for i in originals if i["split"] == run["split"]) and main["p_value"] == 1.0


# --- the real bundled model ------------------------------------------------------------------------


@pytest.mark.slow
def test_baseline_on_the_bundled_model(pytester: pytest.Pytester) -> None:
    """MMLU anatomy on SmolLM2: a saved baseline, an identical rerun, and a zero-shot run's flips."""
    write_evals(pytester, "entries: [mmlu:subject=anatomy]\n")
    args = ["--llmeval-models", BUNDLED, "--llmeval-max-eval-instances", "20"]
    pytester.runpytest(*args, "--llmeval-save-baseline", "smollm2").assert_outcomes(passed=1)
    rerun = pytester.runpytest(*args, "--llmeval-compare", "smollm2", "-n", "2")
    rerun.assert_outcomes(passed=1)
    [run] = summary_of(pytester.path)["runs"]
    assert run["comparison"]["metrics"][0]["p_value"] == 1.0 and run["comparison"]["changed_output"] == 0
    rerun.stdout.fnmatch_lines(["*mmlu:subject=anatomy*exact_match * -> * (+0.0000), mcnemar p=1*: ok"])

    write_evals(pytester, "entries: ['mmlu:subject=anatomy,max_train_instances=0']\n")
    degraded = pytester.runpytest(*args, "--llmeval-compare", "smollm2")
    [run] = summary_of(pytester.path)["runs"]
    comparison = run["comparison"]
    assert comparison["entry"] == f"mmlu:subject=anatomy[{BUNDLED}]"
    assert comparison["changed_output"] > 0  # zero-shot prompts change the model's answers
    changed = comparison["right_to_wrong"] + comparison["wrong_to_right"]
    degraded.stdout.fnmatch_lines([f"*{comparison['changed_output']} output changed: id*"])
    if changed:
        degraded.stdout.fnmatch_lines(["*right->wrong: id*" if comparison["right_to_wrong"] else "*wrong->right: id*"])
    outcome = "failed" if comparison["regression"] else "passed"
    degraded.assert_outcomes(**{outcome: 1})
    assert (run["outcome"] == "failed") == comparison["regression"]
