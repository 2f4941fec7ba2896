"""``--llmeval-shard K/N``: the partition itself, then shards of real pytester sessions."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from pytest_llmeval.sharding import History, partition, round_robin
from tests.report_project import make_project, summary_of, write_evals

# --- the partition ---------------------------------------------------------------------------


def _jobs(seed: int, count: int) -> list[tuple[str, float]]:
    rng = random.Random(seed)
    return [(f"eval_x.yaml::run{n:03d}[m]", float(rng.choice([1, 2, 3, 5, 8, 13, 40]))) for n in range(count)]


@pytest.mark.parametrize("shards", [1, 2, 3, 7])
def test_every_job_lands_in_exactly_one_shard(shards: int) -> None:
    jobs = _jobs(1, 50)
    parts = partition(jobs, shards)
    assert len(parts) == shards
    every = [nodeid for part in parts for nodeid in part]
    assert sorted(every) == sorted(nodeid for nodeid, _ in jobs)  # all covered, none twice


def test_the_partition_does_not_depend_on_the_collection_order() -> None:
    jobs = _jobs(2, 40)
    shuffled = list(jobs)
    random.Random(3).shuffle(shuffled)
    assert partition(jobs, 4) == partition(shuffled, 4)
    assert round_robin([n for n, _ in jobs], 3) == round_robin([n for n, _ in shuffled], 3)


def test_equal_costs_are_split_by_node_id() -> None:
    jobs = [(f"t::{name}", 1.0) for name in "dcba"]
    assert partition(jobs, 2) == [["t::a", "t::c"], ["t::b", "t::d"]]


def test_the_shards_are_balanced_by_cost() -> None:
    jobs = _jobs(4, 60)
    parts = partition(jobs, 3)
    cost = dict(jobs)
    loads = [sum(cost[n] for n in part) for part in parts]
    # LPT's bound: no shard exceeds the mean load by more than the largest single job.
    assert max(loads) - sum(loads) / 3 <= max(cost.values())
    counts = partition([(f"t::{n}", 1.0) for n in range(10)], 3)
    assert sorted(len(p) for p in counts) == [3, 3, 4]
    # one expensive run and many cheap ones: the expensive one gets a shard of its own
    skewed = [("t::big", 100.0), *((f"t::small{n}", 1.0) for n in range(10))]
    assert partition(skewed, 2)[0] == ["t::big"]


def test_costs_come_from_the_last_summary(tmp_path: Path) -> None:
    path = tmp_path / "llmeval_summary.json"
    path.write_text(json.dumps({"runs": [
        {"nodeid": "e.yaml::mmlu:subject=anatomy[m]", "requests": 40, "instances": 10, "outcome": "passed"},
        {"nodeid": "e.yaml::mmlu:subject=virology[m]", "requests": 20, "instances": 10, "outcome": "passed"},
        {"nodeid": "e.yaml::gsm[m]", "requests": 9, "instances": 3, "outcome": "error"},
    ]}))
    history = History.read(path)
    assert history.per_instance("e.yaml::mmlu:subject=anatomy[m]") == 4.0
    assert history.per_instance("e.yaml::mmlu:subject=astronomy[m]") == 3.0  # the scenario's mean
    assert history.per_instance("e.yaml::gsm[m]") is None  # a run that failed says nothing
    assert History.read(tmp_path / "missing.json").runs == {}
    # one shard's own summary holds only its share: the other shards would compute another split
    (tmp_path / "shard.json").write_text(json.dumps({"shard": [1, 2], "runs": [
        {"nodeid": "e.yaml::gsm[m]", "requests": 9, "instances": 3, "outcome": "passed"}]}))
    assert History.read(tmp_path / "shard.json").runs == {}
    (tmp_path / "bad.json").write_text("{not json")
    assert History.read(tmp_path / "bad.json").runs == {}


# --- shards of real sessions -----------------------------------------------------------------

FOUR_SUBJECTS = """
    entries:
      - mmlu:subject=anatomy
      - mmlu:subject=astronomy
      - mmlu:subject=virology
      - description: mmlu:subject=college_biology
        max_eval_instances: 6
"""

PLAIN_TESTS = """
def test_one():
    pass

def test_two():
    pass

def test_three():
    pass
"""

COMMON = ["--llmeval-models", "scripted/letters", "--llmeval-disable-cache", "-p", "no:cacheprovider"]


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # when this suite itself runs under xdist
    project = make_project(pytester, monkeypatch)
    write_evals(project, FOUR_SUBJECTS)
    project.makepyfile(test_plain=PLAIN_TESTS)
    return project


def _ran(project: pytest.Pytester, *args: str) -> set[str]:
    result = project.runpytest(*COMMON, "--collect-only", "-q", *args)
    assert result.ret == 0, result.stdout.str()
    return {line.strip() for line in result.stdout.lines if "::" in line}


def test_two_shards_cover_the_suite_once(project: pytest.Pytester) -> None:
    everything = _ran(project)
    assert len(everything) == 7
    one, two = _ran(project, "--llmeval-shard", "1/2"), _ran(project, "--llmeval-shard", "2/2")
    assert one | two == everything and not one & two
    assert len([n for n in one if "mmlu" in n]) == 2 and len([n for n in two if "mmlu" in n]) == 2
    assert _ran(project, "--llmeval-shard", "1/2") == one  # the same collection, the same split
    result = project.runpytest(*COMMON, "--collect-only", "--llmeval-shard", "1/2")
    result.stdout.fnmatch_lines([f"*{len(one)}/7 tests collected ({7 - len(one)} deselected)*"])


def test_shards_run_and_agree_under_xdist(project: pytest.Pytester) -> None:
    """xdist's workers collect each on its own: they must keep the same items as a serial shard."""
    serial = project.runpytest(*COMMON, "--llmeval-shard", "2/2", "--llmeval-max-eval-instances", "3",
                               "--llmeval-output-path", "serial")
    spread = project.runpytest(*COMMON, "--llmeval-shard", "2/2", "--llmeval-max-eval-instances", "3",
                               "--llmeval-output-path", "spread", "-n", "2")
    kept = len(_ran(project, "--llmeval-shard", "2/2"))
    serial.assert_outcomes(passed=kept, deselected=7 - kept)
    spread.assert_outcomes(passed=kept)  # xdist's controller collects nothing, so it counts no deselected
    spread.stdout.fnmatch_lines([f"2 workers ?{kept} items?"])  # both workers kept the same items
    runs = {r["nodeid"] for r in summary_of(project.path, "serial")["runs"]}
    assert runs == {r["nodeid"] for r in summary_of(project.path, "spread")["runs"]} and len(runs) == 2


def test_a_previous_summary_balances_the_shards(project: pytest.Pytester) -> None:
    """A last run that needed many requests for one subject gives that subject a shard of its own."""
    everything = sorted(n for n in _ran(project) if "mmlu" in n)
    heavy = everything[0]
    suite = project.path / "benchmark_output" / "runs" / "default"
    suite.mkdir(parents=True)
    (suite / "llmeval_summary.json").write_text(json.dumps({"runs": [
        {"nodeid": n, "requests": 1000 if n == heavy else 10, "instances": 10, "outcome": "passed"}
        for n in everything]}))
    one = {n for n in _ran(project, "--llmeval-shard", "1/2") if "mmlu" in n}
    two = {n for n in _ran(project, "--llmeval-shard", "2/2") if "mmlu" in n}
    assert one == {heavy} and len(two) == 3


@pytest.mark.parametrize("value", ["3/2", "0/2", "x", "1/0", "2"])
def test_a_bad_shard_is_a_usage_error(project: pytest.Pytester, value: str) -> None:
    result = project.runpytest(*COMMON, "--llmeval-shard", value)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--llmeval-shard*{value}*is not a shard; give K/N with 1 <= K <= N*"])


def test_the_shard_can_be_set_in_the_ini_file(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\nllmeval_shard = 2/3\n")
    ini = _ran(project)
    project.makeini("[pytest]\n")
    assert ini == _ran(project, "--llmeval-shard", "2/3")
    project.makeini("[pytest]\nllmeval_shard = 4/3\n")
    result = project.runpytest(*COMMON, "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*llmeval_shard*'4/3' is not a shard*"])
