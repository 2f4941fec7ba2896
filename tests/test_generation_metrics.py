"""Generation metrics: HELM's f1_score and exact_match_indicator, and GSM8K's final-number match."""

from __future__ import annotations

import pytest

from pytest_llmeval.adapters.adapter_spec import RequestState
from pytest_llmeval.metrics import MATCHERS, reference_stats
from pytest_llmeval.metrics.generation import (
    exact_match_indicator,
    f1_score,
    final_number,
    final_number_exact_match,
)
from pytest_llmeval.requests import GeneratedOutput, Request, RequestResult
from pytest_llmeval.scenarios.scenario import CORRECT_TAG, Instance, Reference


@pytest.mark.parametrize(("gold", "pred", "expected"), [
    ("Paris", "Paris", 1.0),
    ("the Eiffel Tower", "Eiffel tower.", 1.0),          # articles, case and punctuation are normalised away
    ("New York City", "New York", 2 * (2 / 2) * (2 / 3) / (2 / 2 + 2 / 3)),  # precision 1, recall 2/3
    ("w b c d", "b x", 2 * 0.5 * 0.25 / (0.5 + 0.25)),  # precision 1/2, recall 1/4
    ("yes yes no", "yes", 2 * 1.0 * 0.5 / 1.5),          # sets, not multisets: gold is {yes, no}
    ("Paris", "London", 0.0),
    ("Paris", "", 0.0),
    ("the", "a", 0.0),                                   # nothing left after normalising
])
def test_f1_score_is_helms_set_overlap(gold: str, pred: str, expected: float) -> None:
    assert f1_score(gold, pred) == pytest.approx(expected)


@pytest.mark.parametrize(("gold", "pred", "expected"), [
    ("Natalia sold 72 clips. The answer is 72.", "She sold 24 then 48. The answer is 72.", 1.0),
    ("The answer is 72.", "The answer is 72", 0.0),   # HELM compares the last word as written
    ("The answer is 72.", "The answer is 27.", 0.0),
    ("The answer is 72.", "", 0.0),
])
def test_exact_match_indicator_compares_what_follows_the_last_space(gold: str, pred: str, expected: float) -> None:
    assert exact_match_indicator(gold, pred) == expected


# Expected values from crfm-helm 0.5.16's get_final_number / final_number_exact_match.
@pytest.mark.parametrize(("text", "number"), [
    ("The answer is 18.", "18"),                 # a trailing period ends the sentence
    ("She makes $1,234.50 a week", "1234.50"),
    ("It costs -$5 now", "5"),                   # the sign must touch the digits
    ("From 3 to -4", "-4"),
    ("1,450,000 people, roughly", ""),           # the last match is the lone comma after "people"
    ("0.5 of 12 is 6.0", "6.0"),
    ("<<48/2=24>>24 clips", "24"),
    ("Call 1 2", "1 2"),                         # HELM's "." matches any character
    ("18:30 pm", "18:30"),
    ("x -,5", "-5"),
    ("no digits here", ""),
    ("", ""),
])
def test_final_number_is_helms_string(text: str, number: str) -> None:
    assert final_number(text) == number


@pytest.mark.parametrize(("pred", "expected"), [
    ("The answer is 18.", 1.0),
    ("So she makes $18 every day.", 1.0),
    ("The answer is 18.0", 0.0),                 # strings, not values: 18.0 is not 18
    ("The answer is 18.00 dollars", 0.0),
    ("9 * 2 = 18, so", 1.0),
    ("It is 1,8.", 1.0),
    ("18 1", 0.0),
    ("The answer is 18 .5", 0.0),
    ("The answer is 81.", 0.0),
    ("The answer is 180.", 0.0),
    ("I do not know.", 0.0),
    ("", 0.0),
])
def test_final_number_exact_match_compares_strings_as_helm(pred: str, expected: float) -> None:
    assert final_number_exact_match("She makes 9 * 2 = $<<9*2=18>>18 every day. The answer is 18.", pred) == expected


def test_final_number_exact_match_handles_thousands_and_negatives() -> None:
    assert final_number_exact_match("The answer is 1,450,000.", "1450000") == 1.0
    assert final_number_exact_match("The answer is -3.", "It drops to -3.") == 1.0
    assert final_number_exact_match("The answer is -3.", "It drops to 3.") == 0.0
    assert final_number_exact_match("x", "y") == 0.0   # no number on either side is no match


def test_generation_metrics_are_registered_for_run_specs() -> None:
    for name in ("f1_score", "exact_match_indicator", "final_number_exact_match"):
        assert name in MATCHERS
    state = RequestState(
        instance=Instance("q", (Reference("The answer is 7.", (CORRECT_TAG,)), Reference("The answer is 8.")), "test"),
        train_trial_index=0, request=Request(model_deployment="x", prompt="q"), num_train_instances=0,
        result=RequestResult(success=True, completions=[GeneratedOutput(text=" 3 + 4 = 7 apples")]),
    )
    stats = {s.name.name: s for s in reference_stats(state, ["final_number_exact_match", "exact_match_indicator",
                                                             "f1_score"], MATCHERS)}
    assert stats["final_number_exact_match"].mean == 1.0   # only the correct reference counts
    assert stats["exact_match_indicator"].mean == 0.0      # "apples" is not "7."
    assert stats["f1_score"].mean == pytest.approx(2 / 7)  # {answer, is, 7} vs {3, 4, 7, apples}: one shared
    assert stats["final_number_exact_match"].name.split == "test"
