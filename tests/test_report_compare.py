"""Comparing runs with baseline entries: tolerances, significance, flips, and the fallback match."""

from __future__ import annotations

import pytest

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.gates import Gate, lower_is_better
from pytest_llmeval.report.baseline import entry_from_record, find_entry
from pytest_llmeval.report.compare import Tolerance, compare_run, parse_tolerances
from pytest_llmeval.report.run_records import InstanceRecord, RunRecord


def make_record(outcomes: list[float], outputs: list[str] | None = None, *, name: str = "quiz:x=1[m]",
                scenario_key: str = "quiz:x=1[m]", runtime: list[float] | None = None) -> RunRecord:
    outputs = outputs or [f"out{n}" for n in range(len(outcomes))]
    instances = []
    for n, value in enumerate(outcomes):
        metrics = {"exact_match": value}
        if runtime is not None:
            metrics["inference_runtime"] = runtime[n]
        instances.append(InstanceRecord(key=f"test/id{n}/0", id=f"id{n}", split="test", input=f"question {n}",
                                        output=outputs[n], metrics=metrics, correct=value == 1.0))
    return RunRecord(nodeid=f"e.yaml::{name}", name=name, key=name, scenario_key=scenario_key, model="m",
                     main_metric="exact_match", split="test", value=sum(outcomes) / len(outcomes),
                     count=len(outcomes), instances=instances)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("exact_match:-2%", Tolerance("exact_match", 2.0, True, -1)),
        ("exact_match:-0.02", Tolerance("exact_match", 0.02, False, -1)),
        ("exact_match:5%", Tolerance("exact_match", 5.0, True, -1)),  # the metric's own direction
        ("inference_runtime:10%", Tolerance("inference_runtime", 10.0, True, 1)),
        ("inference_runtime:+0.5", Tolerance("inference_runtime", 0.5, False, 1)),
        (" quasi_exact_match : -.5 % ", Tolerance("quasi_exact_match", 0.5, True, -1)),
    ],
)
def test_tolerance_parse(text: str, expected: Tolerance) -> None:
    assert Tolerance.parse(text) == expected


@pytest.mark.parametrize("text", ["exact_match", "exact_match:-", "exact_match:-2%%", ":2%", "exact_match:two"])
def test_tolerance_parse_errors_name_the_option(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        Tolerance.parse(text)
    assert info.value.field == "--llmeval-compare-fail"
    assert repr(text) in str(info.value)


def test_tolerance_exceeded() -> None:
    relative = Tolerance.parse("exact_match:-10%")
    assert not relative.exceeded(0.5, -0.05)  # exactly 10% of 0.5
    assert relative.exceeded(0.5, -0.051)
    assert not relative.exceeded(0.5, +0.3)  # a rise is never a regression of a score
    absolute = Tolerance.parse("exact_match:-0.02")
    assert absolute.exceeded(0.9, -0.03) and not absolute.exceeded(0.9, -0.01)
    runtime = Tolerance.parse("inference_runtime:+50%")
    assert runtime.exceeded(2.0, 1.5) and not runtime.exceeded(2.0, -1.5)
    assert str(Tolerance.default("exact_match")) == "exact_match: any drop"
    assert parse_tolerances(["exact_match:-2%, inference_runtime:+1"]).keys() == {"exact_match", "inference_runtime"}


def test_direction_of_metrics_and_fail_under() -> None:
    assert lower_is_better("inference_runtime") and lower_is_better("Violated Request Count")
    assert not lower_is_better("exact_match") and not lower_is_better("Main Score")
    assert Gate.fail_under("exact_match=0.3") == Gate("exact_match", ">=", 0.3)
    assert Gate.fail_under("inference_runtime=2") == Gate("inference_runtime", "<=", 2.0)
    assert Gate.fail_under("exact_match@valid=0.5") == Gate("exact_match", ">=", 0.5, "valid")
    assert Gate.fail_under("num_output_tokens < 3") == Gate("num_output_tokens", "<", 3.0)
    with pytest.raises(ConfigError):
        Gate.fail_under("exact_match=high")


def test_identical_rerun_passes() -> None:
    record = make_record([1, 0, 1, 1, 0, 1])
    comparison = compare_run(record, entry_from_record(record), "0001_main", {}, 0.05)
    [main] = comparison.metrics
    assert main.delta == 0 and main.p_value == 1.0 and main.test == "mcnemar"
    assert not comparison.regressions and comparison.failure_messages() == []
    assert not comparison.right_to_wrong and not comparison.wrong_to_right and not comparison.changed_output


def test_significant_drop_fails_with_delta_and_p_value() -> None:
    baseline = make_record([1.0] * 20)
    current = make_record([0.0] * 10 + [1.0] * 10, [f"new{n}" if n < 10 else f"out{n}" for n in range(20)])
    comparison = compare_run(current, entry_from_record(baseline), "0001_main", {}, 0.05)
    [message] = comparison.failure_messages()
    assert "exact_match 1.0000 -> 0.5000 (-0.5000, -50.0%" in message
    assert "McNemar exact p=0.001953" in message and "< 0.05" in message
    assert "10 right->wrong, 0 wrong->right" in message
    assert [c.id for c in comparison.right_to_wrong] == [f"id{n}" for n in range(10)]
    assert len(comparison.changed_output) == 10
    assert comparison.right_to_wrong[0].baseline_output == "out0"
    assert comparison.right_to_wrong[0].current_output == "new0"


def test_a_drop_that_is_not_significant_passes() -> None:
    baseline = make_record([1.0] * 20)
    current = make_record([0.0] * 2 + [1.0] * 18)
    comparison = compare_run(current, entry_from_record(baseline), "b", {}, 0.05)
    [main] = comparison.metrics
    assert main.beyond_tolerance and not main.significant
    assert main.p_value == pytest.approx(0.5)
    assert comparison.failure_messages() == []
    assert len(comparison.right_to_wrong) == 2  # still listed, like a snapshot diff


def test_a_significant_drop_within_tolerance_passes() -> None:
    baseline = make_record([1.0] * 40)
    current = make_record([0.0] * 8 + [1.0] * 32)  # -0.2, p < 0.01
    entry = entry_from_record(baseline)
    assert compare_run(current, entry, "b", {}, 0.05).failure_messages()
    assert not compare_run(current, entry, "b", parse_tolerances(["exact_match:-25%"]), 0.05).failure_messages()
    assert not compare_run(current, entry, "b", parse_tolerances(["exact_match:-0.25"]), 0.05).failure_messages()
    assert not compare_run(current, entry, "b", {}, 0.001).failure_messages()  # a stricter level


def test_continuous_metric_uses_the_paired_bootstrap() -> None:
    baseline = make_record([1.0] * 30, runtime=[1.0 + (n % 5) * 0.01 for n in range(30)])
    slower = make_record([1.0] * 30, runtime=[2.0 + (n % 3) * 0.01 for n in range(30)])
    tolerances = parse_tolerances(["inference_runtime:+20%"])
    comparison = compare_run(slower, entry_from_record(baseline), "b", tolerances, 0.05)
    runtime = next(m for m in comparison.metrics if m.metric == "inference_runtime")
    assert runtime.test == "bootstrap" and runtime.p_value < 0.01 and runtime.regression
    assert "paired bootstrap" in comparison.failure_messages()[0]
    faster = make_record([1.0] * 30, runtime=[0.5] * 30)
    assert not compare_run(faster, entry_from_record(baseline), "b", tolerances, 0.05).failure_messages()


def test_new_runs_and_changed_inputs_are_not_compared() -> None:
    record = make_record([1, 0, 1])
    assert compare_run(record, None, "b", {}, 0.05).note == "not in the baseline (a new run)"
    entry = entry_from_record(record)
    entry["instances"][0]["input_digest"] = "0000"
    comparison = compare_run(record, entry, "b", {}, 0.05)
    assert comparison.metrics[0].paired == 2
    assert comparison.only_in_current == 1 and comparison.only_in_baseline == 1


def test_a_changed_setting_is_compared_with_the_same_scenario_and_model() -> None:
    saved = make_record([1, 1, 0], name="quiz:x=1[m]", scenario_key="quiz:x=1[m]")
    zero_shot = make_record([1, 0, 0], name="quiz:x=1,max_train_instances=0[m]", scenario_key="quiz:x=1[m]")
    entries = {saved.key: entry_from_record(saved)}
    assert find_entry(entries, zero_shot) is entries[saved.key]
    comparison = compare_run(zero_shot, find_entry(entries, zero_shot), "b", {}, 0.05)
    assert "compared with baseline entry quiz:x=1[m]" in comparison.note
    assert [c.id for c in comparison.right_to_wrong] == ["id1"]
    other = make_record([1], name="quiz:x=2[m]", scenario_key="quiz:x=2[m]")
    assert find_entry(entries, other) is None
