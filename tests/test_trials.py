"""HELM's per-trial aggregation (stats.json) beside the pooled instance-level stats, and the
language-modelling, ``@k`` and ``num_instances`` stats, on hand-built request states."""

from __future__ import annotations

import json
import math
import statistics
from typing import Any

import pytest

from pytest_llmeval.adapters.adapter_spec import RequestState
from pytest_llmeval.metrics import MATCHERS, MetricName, Stat, aggregate_trials, instances_per_split
from pytest_llmeval.metrics.basic import generation_stats, language_modeling_stats, num_bytes, reference_stats
from pytest_llmeval.perturbations.description import ORIGINAL, WORST, PerturbationDescription
from pytest_llmeval.requests import GeneratedOutput, Request, RequestResult, Token
from pytest_llmeval.scenarios.scenario import CORRECT_TAG, Instance, Reference
from tests.report_project import summary_of

ROBUSTNESS_WORST = PerturbationDescription("robustness", robustness=True, computed_on=WORST)
FAIRNESS_WORST = PerturbationDescription("fairness", fairness=True, computed_on=WORST)


def _instance(n: int, split: str = "test") -> Instance:
    return Instance(f"question {n}", (Reference("yes", (CORRECT_TAG,)), Reference("no")), split, id=f"id{n}")


def _em(value: float, split: str = "test", perturbation: PerturbationDescription | None = None) -> Stat:
    return Stat(MetricName("exact_match", split, None, perturbation)).add(value)


def _by_name(stats: list[Stat]) -> dict[MetricName, Stat]:
    return {s.name: s for s in stats}


# --- the worked example: 9 instances, 3 train trials -----------------------------------------


def test_nine_instances_three_trials_count_trials_not_instances() -> None:
    """1, 2 and 2 of 9 right in the three trials: HELM's stat is over the three trial means."""
    right = {0: {0}, 1: {0, 1}, 2: {3, 7}}  # the right instances of each trial
    per_instance = [(_instance(n), trial, [_em(float(n in right[trial]))]) for trial in range(3) for n in range(9)]
    aggregates = aggregate_trials(per_instance, 3)
    helm = _by_name(aggregates.helm)[MetricName("exact_match", "test")]

    trial_means = [len(right[trial]) / 9 for trial in range(3)]  # HELM's rule: each trial's mean ...
    assert helm.count == 3  # ... merged over the trials
    assert helm.mean == pytest.approx(statistics.fmean(trial_means))
    assert (helm.min, helm.max) == (pytest.approx(min(trial_means)), pytest.approx(max(trial_means)))
    assert helm.variance == pytest.approx(statistics.pvariance(trial_means))
    assert helm.sum_squared == pytest.approx(sum(m * m for m in trial_means))
    assert (round(helm.mean, 4), round(helm.min, 3), round(helm.max, 3), round(helm.variance, 4)) == (
        0.1852, 0.111, 0.222, 0.0027)  # the figures helm-run writes for such a run

    pooled = _by_name(aggregates.pooled)[MetricName("exact_match", "test")]
    assert (pooled.count, pooled.min, pooled.max) == (27, 0.0, 1.0)  # every instance of every trial
    assert pooled.mean == pytest.approx(helm.mean)  # equal trials: the same mean either way
    assert pooled.variance == pytest.approx(statistics.pvariance([float(n in right[t]) for t in range(3)
                                                                  for n in range(9)]))


def test_num_instances_is_per_trial_and_per_split() -> None:
    instances = [(_instance(n, "valid" if n < 2 else "test"), trial) for trial in range(3) for n in range(9)]
    stats = _by_name(instances_per_split(instances, 3))
    assert list(stats) == [MetricName("num_instances", "valid"), MetricName("num_instances", "test")]
    assert [(s.count, s.mean, s.variance) for s in stats.values()] == [(3, 2.0, 0.0), (3, 7.0, 0.0)]


def test_an_empty_stat_stays_empty_and_keeps_its_place() -> None:
    per_instance = [(_instance(n), 0, [Stat(MetricName("training_co2_cost", "test")), _em(1.0)]) for n in range(2)]
    helm = aggregate_trials(per_instance, 1).helm
    assert helm[0].name.name == "training_co2_cost" and helm[0].count == 0
    assert helm[0].to_json() == {"name": {"name": "training_co2_cost", "split": "test"}, "count": 0, "sum": 0.0,
                                 "sum_squared": 0.0}  # as HELM writes it: nothing else
    assert MetricName("training_co2_cost", "test", None, ROBUSTNESS_WORST) not in _by_name(helm)


# --- the worst case, written by HELM even without perturbed copies -------------------------------------


def test_worst_case_without_perturbations_repeats_each_value() -> None:
    per_instance = [(_instance(n), 0, [_em(float(n % 2))]) for n in range(4)]
    aggregates = aggregate_trials(per_instance, 1)
    assert [s.name for s in aggregates.helm] == [
        MetricName("exact_match", "test"), MetricName("exact_match", "test", None, ROBUSTNESS_WORST),
        MetricName("exact_match", "test", None, FAIRNESS_WORST)]
    assert {s.mean for s in aggregates.helm} == {0.5} and all(s.count == 1 for s in aggregates.helm)
    assert [s.name for s in aggregates.pooled] == [MetricName("exact_match", "test")]  # not repeated there


def test_worst_case_with_a_perturbation_per_trial() -> None:
    typo = PerturbationDescription("typos", robustness=True)
    per_instance = []
    for trial in range(2):
        for n in range(2):
            per_instance.append((_instance(n), trial, [_em(1.0)]))
            # the copy of id0 is wrong in trial 0 only; id1's copy always right
            per_instance.append((_instance(n), trial, [_em(float(not (trial == 0 and n == 0)), perturbation=typo)]))
    aggregates = aggregate_trials(per_instance, 2, pooled_worst_case=True)
    helm = _by_name(aggregates.helm)
    worst = helm[MetricName("exact_match", "test", None, typo.with_computed_on(WORST))]
    assert (worst.count, worst.mean, worst.min, worst.max) == (2, 0.75, 0.5, 1.0)  # trial means 0.5 and 1
    assert helm[MetricName("exact_match", "test", None, typo.with_computed_on(ORIGINAL))].mean == 1.0
    assert helm[MetricName("exact_match", "test", None, ROBUSTNESS_WORST)].mean == 0.75
    pooled = _by_name(aggregates.pooled)
    assert pooled[MetricName("exact_match", "test", None, typo.with_computed_on(WORST))].count == 4


# --- language modelling: logprob, bytes, perplexity ---------------------------------------------------


def _generated(tokens: list[Token], text: str = "yes", logprob: float | None = None) -> RequestState:
    state = RequestState(_instance(0), 0, Request(model_deployment="d", prompt="q"), num_train_instances=0)
    total = sum(t.logprob for t in tokens) if logprob is None else logprob
    state.result = RequestResult(True, [GeneratedOutput(text, total, tokens)], request_time=0.25)
    return state


def test_num_bytes_counts_utf8_and_byte_tokens() -> None:
    assert num_bytes([Token("bytes:\\x99", 0.0), Token("Hello", 0.0), Token(" world", 0.0),
                      Token("bytes:\\xe2\\x80", 0.0)]) == 14  # HELM's own example
    assert num_bytes([Token("é", 0.0)]) == 2


def test_perplexity_and_bits_per_byte_from_the_trials_sums() -> None:
    first = language_modeling_stats(_generated([Token(" yes", -0.5), Token("!", -1.5)]))
    second = language_modeling_stats(_generated([Token(" no", -1.0)]))
    assert [(s.name.name, s.sum) for s in first] == [("logprob", -2.0), ("num_perplexity_tokens", 2),
                                                     ("num_bytes", 5)]
    per_instance = [(_instance(0), 0, [s.in_context("test", None, None) for s in first]),
                    (_instance(1), 0, [s.in_context("test", None, None) for s in second])]
    helm = _by_name(aggregate_trials(per_instance, 1).helm)
    assert helm[MetricName("perplexity", "test")].mean == pytest.approx(math.exp(3.0 / 3))
    assert helm[MetricName("bits_per_byte", "test")].mean == pytest.approx(3.0 / 8 / math.log(2))
    assert helm[MetricName("logprob_per_byte", "test")].mean == pytest.approx(-3.0 / 8)
    assert helm[MetricName("logprob", "test")].mean == pytest.approx(-1.5)  # the instances' mean
    assert MetricName("perplexity", "test") not in _by_name(aggregate_trials(per_instance, 1, derive=False).helm)


def test_generation_stats_in_helms_order() -> None:
    state = _generated([Token(" yes", -0.1)], text=" yes")
    names = [s.name.name for s in generation_stats(state, ["exact_match"], MATCHERS, 1, 1, num_prompt_tokens=7)]
    assert names == [
        "num_references", "num_train_trials", "num_prompt_tokens", "num_completion_tokens", "num_output_tokens",
        "training_co2_cost", "training_energy_cost", "inference_runtime", "batch_size", "finish_reason_length",
        "finish_reason_stop", "finish_reason_endoftext", "finish_reason_unknown", "num_train_instances",
        "prompt_truncated", "max_prob", "exact_match", "logprob", "num_perplexity_tokens", "num_bytes"]


def test_at_k_scores_the_best_completion_and_the_likeliest_is_the_prediction() -> None:
    state = _generated([])
    assert state.result is not None
    state.result.completions = [GeneratedOutput("no", -0.5, [Token("no", -0.5)]),
                                GeneratedOutput("yes", -2.0, [Token("yes", -2.0)]),
                                GeneratedOutput("maybe", -0.1, [Token("maybe", -0.1)])]
    stats = {s.name.name: s.sum for s in reference_stats(state, ["exact_match"], MATCHERS, num_outputs=3)}
    assert stats == {"max_prob": pytest.approx(math.exp(-0.1)), "exact_match": 0.0, "exact_match@3": 1.0}
    assert "exact_match@1" not in {s.name.name for s in reference_stats(state, ["exact_match"], MATCHERS)}


# --- the real bundled model, three train trials -------------------------------------------------------


@pytest.mark.slow
def test_real_model_three_trials_stats_json_counts_trials(pytester: pytest.Pytester) -> None:
    (pytester.path / "eval_mmlu.yaml").write_text(
        "entries: ['mmlu:subject=anatomy,eval_split=test,num_train_trials=3,max_train_instances=1']\n")
    result = pytester.runpytest("--llmeval-max-eval-instances", "3", "--junitxml", "junit.xml")
    result.assert_outcomes(passed=1)
    [run] = [p for p in (pytester.path / "benchmark_output" / "runs" / "default").iterdir() if p.is_dir()]
    written = json.loads((run / "stats.json").read_text())
    stats = {(s["name"]["name"], s["name"].get("perturbation", {}).get("name")): s for s in written}
    per_instance = json.loads((run / "per_instance_stats.json").read_text())
    assert sorted({e["train_trial_index"] for e in per_instance}) == [0, 1, 2] and len(per_instance) == 9

    def values(entries: list[dict[str, Any]], name: str) -> list[float]:
        return [s["sum"] for e in entries for s in e["stats"] if s["name"]["name"] == name]

    trial_means = [statistics.fmean(values([e for e in per_instance if e["train_trial_index"] == t], "exact_match"))
                   for t in range(3)]
    exact_match = stats["exact_match", None]
    assert exact_match["count"] == 3  # one value per train trial, as helm-run writes it
    assert exact_match["mean"] == pytest.approx(statistics.fmean(trial_means))
    assert exact_match["variance"] == pytest.approx(statistics.pvariance(trial_means), abs=1e-12)
    assert (exact_match["min"], exact_match["max"]) == (pytest.approx(min(trial_means)),
                                                         pytest.approx(max(trial_means)))
    assert (stats["num_instances", None]["count"], stats["num_instances", None]["mean"]) == (3, 3)
    assert stats["num_train_trials", None]["mean"] == 3
    assert stats["exact_match", "robustness"]["mean"] == pytest.approx(exact_match["mean"])
    for name in ("num_prompt_tokens", "num_completion_tokens", "logprob", "num_bytes", "perplexity", "max_prob",
                 "finish_reason_unknown", "training_co2_cost"):
        assert (name, None) in stats, name
    assert stats["training_co2_cost", None]["count"] == 0
    # The summary and JUnit keep the instance-level values: nine answers, not three trial means.
    [record] = summary_of(pytester.path)["runs"]
    assert record["count"] == 9 and record["value"] == pytest.approx(statistics.fmean(values(per_instance,
                                                                                            "exact_match")))
    junit = (pytester.path / "junit.xml").read_text()
    assert 'name="llmeval_count" value="9"' in junit
