"""HELM's Stat arithmetic, the exact-match family and the multiple-choice letter mapping."""

from __future__ import annotations

import math

import pytest

from pytest_llmeval.adapters.adapter_spec import RequestState
from pytest_llmeval.metrics import MATCHERS, MetricName, Stat, aggregate, general_stats, normalize_text, prediction
from pytest_llmeval.metrics import reference_stats as reference_stats_fn
from pytest_llmeval.requests import GeneratedOutput, Request, RequestResult, Token
from pytest_llmeval.scenarios.scenario import CORRECT_TAG, Instance, Reference

OPTIONS = ("Anabolism", "Catabolism", "Tolerance", "Homeostasis")
ALL = ["exact_match", "quasi_exact_match", "prefix_exact_match", "quasi_prefix_exact_match"]  # MATCHERS has more


# --- Stat -------------------------------------------------------------------------------------


def test_stat_add_mean_variance_stddev() -> None:
    stat = Stat(MetricName("x", "test"))
    for value in (1, 2, 3, 4):
        stat.add(value)
    assert (stat.count, stat.sum, stat.sum_squared, stat.min, stat.max) == (4, 10.0, 30.0, 1.0, 4.0)
    assert stat.mean == 2.5
    assert stat.variance == pytest.approx(1.25)  # population variance, as HELM
    assert stat.stddev == pytest.approx(math.sqrt(1.25))


def test_stat_add_bool_and_chaining() -> None:
    stat = Stat(MetricName("prompt_truncated")).add(True).add(False)
    assert (stat.count, stat.sum, stat.mean) == (2, 1.0, 0.5)


def test_empty_stat() -> None:
    stat = Stat(MetricName("x"))
    assert stat.mean is None and stat.variance is None and stat.stddev is None
    assert stat.min is None and stat.max is None


def test_single_value_has_zero_variance() -> None:
    stat = Stat(MetricName("x")).add(0.1)
    assert stat.variance == 0.0 and stat.stddev == 0.0  # never a tiny negative from rounding


def test_merge_equals_adding_everything() -> None:
    left, right, both = Stat(MetricName("x")), Stat(MetricName("x")), Stat(MetricName("x"))
    for value in (0.0, 5.0):
        left.add(value)
        both.add(value)
    for value in (-1.0, 2.0, 3.0):
        right.add(value)
        both.add(value)
    merged = left.merge(right)
    assert merged is left
    assert merged.to_json() == both.to_json()
    assert (merged.min, merged.max) == (-1.0, 5.0)


def test_merge_with_empty() -> None:
    stat = Stat(MetricName("x")).add(3)
    assert stat.merge(Stat(MetricName("x"))).to_json() == Stat(MetricName("x")).add(3).to_json()
    assert Stat(MetricName("x")).merge(Stat(MetricName("x")).add(3)).to_json() == stat.to_json()


def test_to_json_keys() -> None:
    data = Stat(MetricName("exact_match", "test")).add(1).add(0).to_json()
    assert list(data) == ["name", "count", "sum", "sum_squared", "min", "max", "mean", "variance", "stddev"]
    assert data["name"] == {"name": "exact_match", "split": "test"}
    assert (data["count"], data["mean"], data["variance"], data["stddev"]) == (2, 0.5, 0.25, 0.5)


def test_metric_name_to_json_omits_unset_parts() -> None:
    assert MetricName("x").to_json() == {"name": "x"}
    assert MetricName("x", "valid", "sub").to_json() == {"name": "x", "split": "valid", "sub_split": "sub"}


def test_aggregate_merges_by_name_and_split() -> None:
    per_instance = [
        [Stat(MetricName("exact_match", "test")).add(1), Stat(MetricName("num_output_tokens", "test")).add(1)],
        [Stat(MetricName("exact_match", "test")).add(0), Stat(MetricName("num_output_tokens", "test")).add(3)],
        [Stat(MetricName("exact_match", "valid")).add(1)],
    ]
    merged = aggregate(per_instance)
    assert [(s.name.name, s.name.split) for s in merged] == [
        ("exact_match", "test"), ("num_output_tokens", "test"), ("exact_match", "valid")]  # first-seen order
    by_key = {(s.name.name, s.name.split): s for s in merged}
    assert (by_key["exact_match", "test"].count, by_key["exact_match", "test"].mean) == (2, 0.5)
    assert by_key["num_output_tokens", "test"].mean == 2.0
    assert by_key["exact_match", "valid"].count == 1
    # The inputs are not mutated.
    assert per_instance[0][0].count == 1


def test_aggregate_empty() -> None:
    assert aggregate([]) == []


# --- exact-match family -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gold", "pred", "em", "qem", "pem", "qpem"),
    [
        ("Paris", "Paris", 1, 1, 1, 1),
        ("Paris", "  Paris\n", 1, 1, 1, 1),
        ("Paris", "paris", 0, 1, 0, 1),
        ("The Eiffel Tower", "eiffel tower!", 0, 1, 0, 1),
        ("Paris", "Paris, France", 0, 0, 1, 1),
        ("Paris", "paris, France", 0, 0, 0, 1),
        ("Paris", "London", 0, 0, 0, 0),
        ("Paris", "", 0, 0, 0, 0),
        ("The", "", 0, 0, 0, 0),  # normalises to "" but an empty prediction never matches (HELM)
    ],
)
def test_exact_match_family(gold: str, pred: str, em: int, qem: int, pem: int, qpem: int) -> None:
    scores = {name: MATCHERS[name](gold, pred) for name in ALL}
    assert scores == {"exact_match": em, "quasi_exact_match": qem, "prefix_exact_match": pem,
                      "quasi_prefix_exact_match": qpem}


@pytest.mark.parametrize(
    ("text", "normalised"),
    [("The  Cat, a dog!", "cat dog"), ("An apple.", "apple"), ("theory", "theory"), ("  A\tB\n", "b"), ("", "")],
)
def test_normalize_text(text: str, normalised: str) -> None:
    assert normalize_text(text) == normalised


# --- predictions and reference stats ----------------------------------------------------------------


def _state(text: str | None, *, correct: int = 3, mapped: bool = True, split: str = "test") -> RequestState:
    references = tuple(Reference(o, (CORRECT_TAG,) if i == correct else ()) for i, o in enumerate(OPTIONS))
    instance = Instance("Which term ...?", references, split, id="id7")
    mapping = {chr(ord("A") + i): o for i, o in enumerate(OPTIONS)} if mapped else None
    state = RequestState(instance, 0, Request(model_deployment="d", prompt="..."), 5, output_mapping=mapping)
    if text is not None:
        state.result = RequestResult(success=True, completions=[
            GeneratedOutput(text=text, tokens=[Token(text, -0.1)])], request_time=0.5)
    return state


def test_prediction_maps_letter_to_option_text() -> None:
    assert prediction(_state(" C")) == "Tolerance"
    assert prediction(_state("D\n")) == "Homeostasis"


def test_prediction_without_mapping_is_stripped_text() -> None:
    assert prediction(_state(" Homeostasis ", mapped=False)) == "Homeostasis"


def test_prediction_none_without_result_or_completions() -> None:
    assert prediction(_state(None)) is None
    state = _state("D")
    assert state.result is not None
    state.result.completions = []
    assert prediction(state) is None


def test_correct_letter_scores_one() -> None:
    stats = reference_stats_fn(_state(" D"), ALL, MATCHERS)
    assert [s.name for s in stats] == [MetricName(n, "test") for n in ("max_prob", *ALL)]
    assert all(s.count == 1 and s.mean == 1.0 for s in stats[1:])


def test_wrong_letter_scores_zero() -> None:
    stats = reference_stats_fn(_state(" C"), ALL, MATCHERS)
    assert all(s.mean == 0.0 for s in stats[1:])


@pytest.mark.parametrize("answer", [" E", "Homeostasis", " d", "", " D C"])
def test_unmapped_answer_scores_zero(answer: str) -> None:
    """Anything but exactly a letter maps to nothing, so even the right option's text scores 0."""
    stats = reference_stats_fn(_state(answer), ALL, MATCHERS)
    assert all(s.count == 1 and s.mean == 0.0 for s in stats[1:])


def test_no_result_scores_zero() -> None:
    assert all(s.mean == 0.0 for s in reference_stats_fn(_state(None), ALL, MATCHERS))


def test_best_over_several_golds() -> None:
    state = _state(" B")
    references = tuple(Reference(o, (CORRECT_TAG,) if i in (1, 3) else ()) for i, o in enumerate(OPTIONS))
    state.instance = Instance(state.instance.input, references, "valid", id="id0")
    stats = reference_stats_fn(state, ["exact_match"], MATCHERS)
    assert stats[1].mean == 1.0 and stats[1].name == MetricName("exact_match", "valid")


def test_general_stats_are_helms_in_helms_order() -> None:
    state = _state(" D")
    state.prompt_truncated = True
    stats = general_stats(state, num_train_trials=3)
    assert [s.name.name for s in stats] == [
        "num_references", "num_train_trials", "num_completion_tokens", "num_output_tokens", "training_co2_cost",
        "training_energy_cost", "inference_runtime", "batch_size", "finish_reason_length", "finish_reason_stop",
        "finish_reason_endoftext", "finish_reason_unknown", "num_train_instances", "prompt_truncated"]
    values = {s.name.name: s.sum for s in stats}
    assert (values["num_references"], values["num_train_trials"], values["num_output_tokens"]) == (4, 3, 1)
    assert (values["inference_runtime"], values["batch_size"], values["num_train_instances"]) == (0.5, 1, 5)
    assert values["prompt_truncated"] == 1 and values["finish_reason_unknown"] == 1  # no finish reason given
    assert all(s.name.split == "test" for s in stats)
    assert [s.count for s in stats if s.name.name.startswith("training_")] == [0, 0]  # no cost data: empty
    untimed = {s.name.name: s.sum for s in general_stats(_state(None), 1)}
    assert untimed["num_output_tokens"] == 0 and "inference_runtime" not in untimed and "batch_size" not in untimed


@pytest.mark.parametrize("reason", ["length", "stop", "endoftext", "unknown", "content_filter"])
def test_finish_reason_stats(reason: str) -> None:
    state = _state(" D")
    assert state.result is not None
    state.result.completions[0].finish_reason = {"reason": reason}
    stats = {s.name.name: s.sum for s in general_stats(state, 1)}
    expected = reason if reason != "content_filter" else "unknown"  # HELM's four reasons, the rest unknown
    assert {k: v for k, v in stats.items() if k.startswith("finish_reason_")} == {
        f"finish_reason_{r}": float(r == expected) for r in ("length", "stop", "endoftext", "unknown")}


# --- HELM stats parity: skipped values, max_prob, prompt tokens ------------------------------------------


def test_stat_skips_missing_values_as_helm() -> None:
    stat = Stat(MetricName("training_co2_cost")).add(None)
    assert (stat.count, stat.sum, stat.min, stat.mean) == (0, 0.0, None, None)
    assert stat.add(2).add(None).count == 1


def test_max_prob_is_the_likeliest_completions_probability() -> None:
    state = _state(" D")
    assert state.result is not None
    state.result.completions[0].logprob = math.log(0.8)
    stat = reference_stats_fn(state, ["exact_match"], MATCHERS)[0]
    assert stat.name == MetricName("max_prob", "test") and stat.sum == pytest.approx(0.8)
    state.result.completions = [GeneratedOutput(" D")]  # a text-only client: log-probability 0, as HELM counts it
    assert reference_stats_fn(state, ["exact_match"], MATCHERS)[0].sum == 1.0
    assert [s.name.name for s in reference_stats_fn(_state(None), ["exact_match"], MATCHERS)] == ["exact_match"]


def test_general_stats_count_prompt_tokens_and_not_echoed_ones() -> None:
    state = _state(" D")
    stats = {s.name.name: s.sum for s in general_stats(state, 1, num_prompt_tokens=120)}
    assert stats["num_prompt_tokens"] == 120 and stats["num_output_tokens"] == 1
    assert stats["num_completion_tokens"] == 1
    assert "num_prompt_tokens" not in {s.name.name for s in general_stats(state, 1)}
    echoed = _state(" D")
    echoed.request = Request(model_deployment="d", prompt="q a", max_tokens=0, echo_prompt=True)
    assert echoed.result is not None
    echoed.result.completions[0].tokens = [Token("q", 0.0), Token(" a", -1.0)]
    echoed_stats = {s.name.name: s.sum for s in general_stats(echoed, 1, 2)}
    assert echoed_stats["num_output_tokens"] == 0 and echoed_stats["num_completion_tokens"] == 2
    assert {s.name.name: s.sum for s in general_stats(echoed, 1)}["num_output_tokens"] == 0
