"""A cached rerun through pytest: no model built, and every output holds the same data as the
first run's (only the results' ``cached`` flag and the timing fields differ)."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.projects import scripted_project
from tests.test_plugin_e2e import DEPLOYMENTS, SCRIPTED_MODEL

XDIST = [pytest.param([], id="serial"), pytest.param(["-n", "2"], id="xdist")]

VOLATILE = {"seconds", "created", "cache_hits", "worker", "output_dir", "request_time", "cached"}
DATA = re.compile(r'<script type="application/json" id="llmeval-data">(.*?)</script>', re.S)


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    scripted_project(pytester, monkeypatch, SCRIPTED_MODEL, DEPLOYMENTS)
    monkeypatch.setenv("SCRIPTED_LOG_DIR", str(pytester.path))
    return pytester


def scrub(value: Any) -> Any:
    """The data without the fields a rerun legitimately changes."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def outputs(suite: Path) -> dict[str, Any]:
    """Every JSON file of the suite and the report's embedded data, parsed."""
    found: dict[str, Any] = {}
    for path in sorted(suite.rglob("*.json")):
        found[str(path.relative_to(suite))] = json.loads(path.read_text(encoding="utf-8"))
    match = DATA.search((suite / "llmeval_report.html").read_text(encoding="utf-8"))
    assert match is not None
    found["report data"] = json.loads(match.group(1))
    return found


@pytest.mark.parametrize("xdist", XDIST)
def test_cached_rerun_writes_the_same_data(project: pytest.Pytester, xdist: list[str]) -> None:
    (project.path / "eval_mmlu.yaml").write_text(textwrap.dedent("""
        entries:
          - mmlu:subject=anatomy
          - "mmlu:subject=astronomy,eval_split=test"
    """))
    args = ["--llmeval-models", "scripted/letters", "--llmeval-max-eval-instances", "15", *xdist]
    project.runpytest(*args).assert_outcomes(passed=2)
    suite = project.path / "benchmark_output" / "runs" / "default"
    first = outputs(suite)
    log = project.path / "constructions.log"
    built = log.read_text().count("built")

    rerun = project.runpytest(*args)
    rerun.assert_outcomes(passed=2)
    assert log.read_text().count("built") == built  # every answer came from the cache
    second = outputs(suite)
    assert sorted(first) == sorted(second)
    assert len([name for name in first if name.endswith("scenario_state.json")]) == 2
    for name in first:
        assert json.dumps(scrub(second[name])) == json.dumps(scrub(first[name])), name
    states = [s for name, data in second.items() if name.endswith("scenario_state.json")
              for s in data["request_states"]]
    assert states and all(s["result"]["cached"] for s in states)
    summary = second["llmeval_summary.json"]
    assert [r["cache_hits"] for r in summary["runs"]] == [r["requests"] for r in summary["runs"]]


@pytest.mark.slow
def test_cached_rerun_on_the_bundled_model(pytester: pytest.Pytester) -> None:
    (pytester.path / "eval_mmlu.yaml").write_text("entries: [mmlu:subject=anatomy]\n")
    args = ["--llmeval-max-eval-instances", "3", "--junitxml", "run.xml"]
    pytester.runpytest(*args).assert_outcomes(passed=1)
    suite = pytester.path / "benchmark_output" / "runs" / "default"
    first = outputs(suite)
    rerun = pytester.runpytest(*args)
    rerun.assert_outcomes(passed=1)
    second = outputs(suite)
    for name in first:
        assert json.dumps(scrub(second[name])) == json.dumps(scrub(first[name])), name
    assert [r["cache_hits"] for r in second["llmeval_summary.json"]["runs"]] == [3]
    [state_file] = suite.glob("*/scenario_state.json")
    lines = state_file.read_text(encoding="utf-8").splitlines()
    assert len([line for line in lines if line.startswith('    {"instance"')]) == 3  # one request state a line
