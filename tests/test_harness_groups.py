"""group_aggregates: lm-eval's group aggregate (size-weighted mean, pooled stderr) of the items'
task results, from hand-made run records; the expected numbers come from lm-eval's own metric
helpers and from the formulas written out here."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("lm_eval")

from lm_eval.api.metrics import (
    aggregate_subtask_metrics,
    pooled_sample_stderr,
    unweighted_mean_stderr,
)

from pytest_llmeval.harness.groups import group_aggregates, main_value
from pytest_llmeval.harness.task_index import GroupInfo

ACC = [{"metric": "acc", "weight_by_size": True}]
# task: (acc, acc stderr, sample_len)
RESULTS = {"t_small": (0.9, 0.05, 20), "t_mid": (0.5, 0.03, 150), "t_big": (0.25, 0.01, 900)}


def info(name: str, tasks: list[str], aggregate: list[dict[str, Any]] | None = ACC, subgroups: tuple[str, ...] = (),
         **config: Any) -> GroupInfo:
    cfg: dict[str, Any] = {"group": name, **config}
    if aggregate is not None:
        cfg["aggregate_metric_list"] = aggregate
    return GroupInfo(name, cfg, tuple(tasks), subgroups)


def record(task: str, metrics: dict[str, Any], groups: list[GroupInfo], model: str = "m",
           outcome: str = "pass") -> SimpleNamespace:
    return SimpleNamespace(model=model, outcome=outcome, lm_eval={
        "task": task, "metrics": metrics, "groups": [g.to_json() for g in groups]})


def acc_metrics(acc: float, stderr: float | str, size: int) -> dict[str, Any]:
    return {"alias": "x", "acc,none": acc, "acc_stderr,none": stderr, "sample_len": size}


def by_hand(results: list[tuple[float, float, int]]) -> tuple[float, float]:
    """The size-weighted mean and the pooled standard error, written out."""
    total = sum(n for _, _, n in results)
    mean = sum(v * n for v, _, n in results) / total
    variance = sum((n - 1) * se**2 * n for _, se, n in results) / (total - len(results))
    return mean, math.sqrt(variance / total)


def test_size_weighted_mean_and_pooled_stderr_as_lm_eval_computes_them() -> None:
    group = info("g", list(RESULTS), group_alias="The group")
    rows = group_aggregates([record(t, acc_metrics(*r), [group]) for t, r in RESULTS.items()])
    (row,) = rows
    accs, ses, sizes = (list(x) for x in zip(*RESULTS.values()))
    expected_mean = aggregate_subtask_metrics(accs, sizes, weight_by_size=True)
    expected_stderr = pooled_sample_stderr(ses, sizes)
    assert (expected_mean, expected_stderr) == pytest.approx(by_hand(list(RESULTS.values())))
    assert row["metrics"]["acc,none"] == pytest.approx(expected_mean, rel=1e-12)
    assert row["metrics"]["acc_stderr,none"] == pytest.approx(expected_stderr, rel=1e-12)
    assert row["metrics"]["sample_len"] == sum(sizes) == 1070
    assert (row["model"], row["group"], row["alias"], row["tasks"], row["of"]) == ("m", "g", "The group", 3, 3)
    assert main_value(row) == ("acc,none", pytest.approx(expected_mean), pytest.approx(expected_stderr))


def test_counts_the_tasks_present_of_the_groups_tasks_and_skips_errors() -> None:
    group = info("g", [*RESULTS, "t_never_ran"])
    records = [record("t_small", acc_metrics(*RESULTS["t_small"]), [group]),
               record("t_mid", acc_metrics(*RESULTS["t_mid"]), [group]),
               record("t_big", acc_metrics(0.0, 0.0, 5000), [group], outcome="error"),  # would dominate the mean
               SimpleNamespace(model="m", outcome="pass", lm_eval=None),  # a HELM item's record
               SimpleNamespace(model="m", outcome="pass")]
    (row,) = group_aggregates(records)
    assert (row["tasks"], row["of"]) == (2, 4)
    present = [RESULTS["t_small"], RESULTS["t_mid"]]
    mean, stderr = by_hand(present)
    assert row["metrics"]["acc,none"] == pytest.approx(mean)
    assert row["metrics"]["acc_stderr,none"] == pytest.approx(stderr)
    assert row["metrics"]["sample_len"] == 170


def test_unweighted_groups_take_the_plain_mean() -> None:
    group = info("g", list(RESULTS), aggregate=[{"metric": "acc", "weight_by_size": False}])
    (row,) = group_aggregates([record(t, acc_metrics(*r), [group]) for t, r in RESULTS.items()])
    accs, ses, sizes = (list(x) for x in zip(*RESULTS.values()))
    assert row["metrics"]["acc,none"] == pytest.approx(aggregate_subtask_metrics(accs, sizes, weight_by_size=False))
    assert row["metrics"]["acc,none"] == pytest.approx(sum(accs) / 3)
    assert row["metrics"]["acc_stderr,none"] == pytest.approx(unweighted_mean_stderr(ses))


def test_one_row_per_model_each_from_its_own_records() -> None:
    group = info("g", ["t_small", "t_mid"])
    records = [record("t_small", acc_metrics(0.9, 0.05, 20), [group], model="zeta"),
               record("t_mid", acc_metrics(0.5, 0.03, 150), [group], model="zeta"),
               record("t_small", acc_metrics(0.1, 0.02, 20), [group], model="alpha")]
    rows = group_aggregates(records)
    assert [(r["model"], r["tasks"], r["of"]) for r in rows] == [("alpha", 1, 2), ("zeta", 2, 2)]
    assert rows[0]["metrics"]["acc,none"] == pytest.approx(0.1)
    assert rows[1]["metrics"]["acc,none"] == pytest.approx(by_hand([(0.9, 0.05, 20), (0.5, 0.03, 150)])[0])


def test_nested_groups_aggregate_over_all_their_leaf_tasks() -> None:
    inner = info("inner", ["t_small", "t_mid"])
    outer = info("outer", list(RESULTS), subgroups=("inner",))
    records = [record(t, acc_metrics(*r), [outer, inner] if t != "t_big" else [outer]) for t, r in RESULTS.items()]
    rows = {r["group"]: r for r in group_aggregates(records)}
    assert sorted(rows) == ["inner", "outer"]
    assert rows["outer"]["metrics"]["acc,none"] == pytest.approx(by_hand(list(RESULTS.values()))[0])
    assert rows["inner"]["metrics"]["acc,none"] == pytest.approx(
        by_hand([RESULTS["t_small"], RESULTS["t_mid"]])[0])
    assert (rows["outer"]["tasks"], rows["inner"]["tasks"]) == (3, 2)


def test_filtered_metrics_aggregate_per_filter() -> None:
    group = info("g", ["a", "b"], aggregate=[{"metric": "exact_match", "filter_list": ["strict-match",
                                                                                       "flexible-extract"]}])
    metrics = {"a": {"exact_match,strict-match": 0.2, "exact_match_stderr,strict-match": 0.04,
                     "exact_match,flexible-extract": 0.4, "exact_match_stderr,flexible-extract": 0.05,
                     "sample_len": 100},
               "b": {"exact_match,strict-match": 0.6, "exact_match_stderr,strict-match": 0.03,
                     "exact_match,flexible-extract": 0.7, "exact_match_stderr,flexible-extract": 0.02,
                     "sample_len": 300}}
    (row,) = group_aggregates([record(t, m, [group]) for t, m in metrics.items()])
    for filter_name in ("strict-match", "flexible-extract"):
        values = [metrics[t][f"exact_match,{filter_name}"] for t in "ab"]
        ses = [metrics[t][f"exact_match_stderr,{filter_name}"] for t in "ab"]
        assert row["metrics"][f"exact_match,{filter_name}"] == pytest.approx(
            aggregate_subtask_metrics(values, [100, 300]))
        assert row["metrics"][f"exact_match_stderr,{filter_name}"] == pytest.approx(
            pooled_sample_stderr(ses, [100, 300]))
    assert row["metrics"]["exact_match,strict-match"] == pytest.approx(0.5)
    key, value, _ = main_value(row)
    assert key == "exact_match,strict-match" and value == pytest.approx(0.5)


def test_filters_are_discovered_when_the_group_names_none() -> None:
    group = info("g", ["a", "b"], aggregate=[{"metric": "acc"}])
    records = [record("a", {**acc_metrics(0.2, 0.01, 10), "acc,other": 0.3, "acc_stderr,other": 0.02}, [group]),
               record("b", acc_metrics(0.4, 0.01, 30), [group])]
    (row,) = group_aggregates(records)
    assert row["metrics"]["acc,none"] == pytest.approx((0.2 * 10 + 0.4 * 30) / 40)
    assert row["metrics"]["acc,other"] == pytest.approx(0.3)  # only task a has it


def test_a_missing_stderr_makes_the_groups_stderr_not_available() -> None:
    group = info("g", ["a", "b"])
    records = [record("a", acc_metrics(0.2, "N/A", 10), [group]), record("b", acc_metrics(0.4, 0.01, 30), [group])]
    (row,) = group_aggregates(records)
    assert row["metrics"]["acc,none"] == pytest.approx(0.35)
    assert row["metrics"]["acc_stderr,none"] == "N/A"
    assert main_value(row) == ("acc,none", pytest.approx(0.35), None)


def test_a_group_without_aggregation_reports_no_metric() -> None:
    group = info("plain", ["a"], aggregate=None, group_alias="Plain")
    (row,) = group_aggregates([record("a", acc_metrics(0.5, 0.1, 10), [group])])
    assert row["alias"] == "Plain" and (row["tasks"], row["of"]) == (1, 1)
    assert "acc,none" not in row["metrics"]
    assert main_value(row) == ("", None, None)


def test_no_groups_or_only_errors_give_no_rows() -> None:
    assert group_aggregates([]) == []
    assert group_aggregates([record("a", acc_metrics(0.5, 0.1, 10), [])]) == []
    group = info("g", ["a"])
    assert group_aggregates([record("a", acc_metrics(0.5, 0.1, 10), [group], outcome="error")]) == []


def test_group_info_round_trips_through_json() -> None:
    group = info("g", ["a", "b"], subgroups=("s",), group_alias="G", metadata={"version": 2})
    assert GroupInfo.from_json(group.to_json()) == group
    assert GroupInfo.from_json({"name": "bare"}) == GroupInfo("bare", {}, (), ())
