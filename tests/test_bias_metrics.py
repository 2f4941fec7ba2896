"""HELM's BiasMetric: scores, names, and the per-trial aggregation helm-run writes."""

from __future__ import annotations

import pytest

from pytest_llmeval.adapters.adapter_spec import RequestState
from pytest_llmeval.metrics.bias import BiasMetric, bias_metrics, bias_stats
from pytest_llmeval.metrics.open_ended import word_tokenize
from pytest_llmeval.requests import GeneratedOutput, Request, RequestResult
from pytest_llmeval.scenarios.boolq import BIAS_METRIC_SPECS
from pytest_llmeval.scenarios.scenario import Instance

METRICS = bias_metrics(BIAS_METRIC_SPECS)  # HELM's order: four associations, then two representations

# Expected values: crfm-helm 0.5.16's BiasMetric (nltk word_tokenize with punkt) on the same texts.
CASES = [
    ([" Yes", " No", " yes"], [None, None, None, None, None, None]),
    (
        ["She is a nurse and he is a doctor.", "The mother, the father. His son!"],
        [None, None, None, 0.0, None, 0.16666666666666666],
    ),
    (
        ["Wong met Garcia and Smith.", "Dr. Chen is an engineer; Lopez is a lawyer, Miller too."],
        [None, 0.33333333333333337, None, None, 0.33333333333333337, None],
    ),
    (
        [
            "He was a brilliant mathematician. She was a caring teacher; her sister was a shy nurse.",
            "Kim, the ambitious architect, and Martinez, the lazy chef, met Johnson the honest banker.",
        ],
        [
            0.05128205128205124,
            0.05128205128205124,
            0.24999999999999992,
            0.24999999999999992,
            0.05128205128205124,
            0.24999999999999994,
        ],
    ),
    (
        ["The woman.) He left.\" Sisters... men? girls! aunt's niece-in-law", "women, (uncle) [nephews]: boys;"],
        [None, None, None, None, None, 0.0],
    ),
    (
        [
            "Medina gonzalez rodriguez male stylist wu allen castro aunts tang cho rivera thorough huang"
            " handyman perez plumber cruz expedient . anderson scholarly careless brother girl thompson simple."
        ],
        [0.22222222222222224, 0.2222222222222222, 0.0, 0.0, 0.2222222222222222, 0.0],
    ),
]


@pytest.mark.parametrize(("texts", "expected"), CASES)
def test_scores_equal_helms(texts: list[str], expected: list[float | None]) -> None:
    for metric, value in zip(METRICS, expected, strict=True):
        got = metric.score(texts)
        if value is None:
            assert got is None, metric.name
        else:
            assert got == pytest.approx(value, abs=1e-12), metric.name


def test_names_are_helms() -> None:
    assert [m.name for m in METRICS] == [
        "bias_metric:mode=associations,demographic_category=race,target_category=adjective",
        "bias_metric:mode=associations,demographic_category=race,target_category=profession",
        "bias_metric:mode=associations,demographic_category=gender,target_category=adjective",
        "bias_metric:mode=associations,demographic_category=gender,target_category=profession",
        "bias_metric:mode=representation,demographic_category=race",
        "bias_metric:mode=representation,demographic_category=gender",
    ]


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("the woman. he left.", ["the", "woman", ".", "he", "left", "."]),  # punkt ends a sentence after woman.
        ("the woman.he left", ["the", "woman.he", "left"]),  # no space: one token, as nltk
        ("she's a nurse, isn't she?", ["she", "'s", "a", "nurse", ",", "is", "n't", "she", "?"]),
        ('"mother." (father)', ["``", "mother", ".", "''", "(", "father", ")"]),
        ("i cannot go", ["i", "can", "not", "go"]),
    ],
)
def test_word_tokens_are_nltks(text: str, tokens: list[str]) -> None:
    assert word_tokenize(text) == tokens


def _state(text: str, trial: int, split: str = "valid") -> RequestState:
    return RequestState(
        instance=Instance("q", (), split),
        train_trial_index=trial,
        request=Request(model_deployment="x", prompt="q"),
        num_train_instances=0,
        result=RequestResult(success=True, completions=[GeneratedOutput(text=text)]),
    )


def test_stats_are_one_score_per_trial_averaged() -> None:
    gender = BiasMetric("representation", "gender")
    states = [_state("she and he", 0), _state("she", 0), _state("he", 1)]
    [stat] = bias_stats([gender], states, num_train_trials=2)
    # trial 0 pools all its texts: 2 female, 1 male -> 1/6; trial 1: only male -> 1/2
    assert stat.name.name == gender.name and stat.name.split == "valid"
    assert stat.count == 2 and stat.mean == pytest.approx((1 / 6 + 1 / 2) / 2)


def test_texts_without_demographic_words_give_a_stat_of_count_zero() -> None:
    stats = bias_stats(METRICS, [_state(" Yes", 0), _state(" No", 0)], num_train_trials=1)
    assert [s.name.name for s in stats] == [m.name for m in METRICS]
    assert all(s.count == 0 and s.sum == 0 for s in stats)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="target_category"):
        BiasMetric("associations", "race")
    with pytest.raises(ValueError, match="demographic_category"):
        BiasMetric("representation", "age")
