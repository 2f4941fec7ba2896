"""How many instances a run evaluates: an entry's own ``max_eval_instances``, the command line
over it (``all`` lifts it), and a description's ``max_eval_instances=`` over both, as helm-run."""

from __future__ import annotations

import json

import pytest

from pytest_llmeval.options import pick_limit
from tests.report_project import XDIST, make_project, summary_of, write_evals

ENTRIES = """
entries:
  - description: mmlu:subject=anatomy,eval_split=test
    max_eval_instances: 7
  - description: mmlu:subject=astronomy,eval_split=test,max_eval_instances=3
"""


def _counts(root: object) -> dict[str, int]:
    return {run["label"]: run["count"] for run in summary_of(root)["runs"]}  # type: ignore[arg-type]


def test_pick_limit_prefers_the_command_line_and_all_lifts_every_limit() -> None:
    assert pick_limit(None, 7) == 7
    assert pick_limit(3, 7) == 3
    assert pick_limit(3, None) == 3
    assert pick_limit("all", 7) is None
    assert pick_limit(None, None) is None


@pytest.mark.parametrize("xdist", XDIST)
def test_entry_limit_applies_by_default(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                        xdist: list[str]) -> None:
    project = make_project(pytester, monkeypatch)
    write_evals(project, ENTRIES)
    result = project.runpytest("--llmeval-models", "scripted/letters", *xdist)
    result.assert_outcomes(passed=2)
    counts = _counts(project.path)
    assert counts["mmlu:subject=anatomy,eval_split=test"] == 7
    assert counts["mmlu:subject=astronomy,eval_split=test,max_eval_instances=3"] == 3


@pytest.mark.parametrize(("option", "anatomy"), [("2", 2), ("all", 135)])
def test_the_command_line_overrides_an_entry_but_not_a_description(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, option: str, anatomy: int) -> None:
    project = make_project(pytester, monkeypatch)
    write_evals(project, ENTRIES)
    result = project.runpytest("--llmeval-models", "scripted/letters", "--llmeval-max-eval-instances", option)
    result.assert_outcomes(passed=2)
    counts = _counts(project.path)
    assert counts["mmlu:subject=anatomy,eval_split=test"] == anatomy
    assert counts["mmlu:subject=astronomy,eval_split=test,max_eval_instances=3"] == 3


def test_a_description_limit_is_in_the_run_name_and_the_adapter_spec(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    project = make_project(pytester, monkeypatch)
    write_evals(project, "entries: ['mmlu:subject=astronomy,eval_split=test,max_eval_instances=3']\n")
    project.runpytest("--llmeval-models", "scripted/letters").assert_outcomes(passed=1)
    [run] = summary_of(project.path)["runs"]
    spec = json.loads((project.path / run["output_dir"] / "run_spec.json").read_text())
    assert "max_eval_instances=3" in spec["name"]
    assert spec["adapter_spec"]["max_eval_instances"] == 3


@pytest.mark.parametrize("value", ["0", "-2", "'many'", "true"])
def test_a_bad_entry_limit_names_file_entry_and_field(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                                      value: str) -> None:
    project = make_project(pytester, monkeypatch)
    write_evals(project, f"entries:\n  - description: mmlu:subject=anatomy\n    max_eval_instances: {value}\n")
    result = project.runpytest("--llmeval-models", "scripted/letters")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*eval_mmlu.yaml*#0*max_eval_instances*at least 1*"])
