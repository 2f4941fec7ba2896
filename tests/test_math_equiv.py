"""MATH's answer equivalence against what crfm-helm 0.5.16's own functions return.

Each expected value below was computed by HELM's ``math_scenario.is_equiv``,
``is_equiv_chain_of_thought``, ``_strip_string`` and ``get_answer`` on the same inputs; where
they look surprising (two missing boxes score 1.0, ``7`` is not ``7.0``), that is HELM's score.
"""

from __future__ import annotations

import pytest

from pytest_llmeval.builtins import builtin_registries
from pytest_llmeval.metrics import MATCHERS
from pytest_llmeval.metrics.math_equiv import boxed_answer, is_equiv, is_equiv_chain_of_thought, strip_string

# (gold, prediction, HELM's is_equiv)
EQUIV = [
    ("\\frac{1}{2}", "0.5", 1.0),
    ("\\frac{1}{2}", "1/2", 1.0),
    ("\\dfrac{3}{4}", "\\frac34", 1.0),
    ("\\tfrac{3}{4}", "3/4", 1.0),
    ("\\sqrt{3}", "\\sqrt3", 1.0),
    ("2\\sqrt{2}", "2\\sqrt2", 1.0),
    ("10", "10\\text{ cm}", 1.0),
    ("90", "90^\\circ", 1.0),
    ("90", "90^{\\circ}", 1.0),
    ("5", "x = 5", 1.0),
    ("5", "xyz = 5", 0.0),
    ("\\$5", "5", 1.0),
    ("50", "50\\%", 1.0),
    ("0.3", ".3", 1.0),
    ("(0.5, 1)", "( .5, 1)", 1.0),
    ("\\left( 3, 4 \\right)", "(3,4)", 1.0),
    ("\\!1,\\!000", "1,000", 1.0),
    ("12", "12\n", 1.0),
    ("\\frac{1}{2}", "\\frac", 0.0),
    ("\\sqrt", "\\sqrt", 1.0),
    ("a\\text{ b}\\text{ c}", "a\\text{ b}\\text{ c}", 1.0),
    ("a\\text{ b}\\text{ c}", "a", 0.0),
    ("", "", 1.0),
    ("", "0", 0.0),
    ("-3", "- 3", 1.0),
    ("\\frac{2}{4}", "\\frac{1}{2}", 0.0),
    ("2/04", "\\frac{2}{04}", 0.0),
    ("x^2+5x+6", "x^2 + 5x + 6", 1.0),
    ("\\frac1{72}", "\\frac{1}{72}", 1.0),
    ("a=b=c", "c", 0.0),
    ("\\\\frac{1}{2}", "\\frac{1}{2}", 1.0),
    ("7", "7.0", 0.0),
    ("3", None, 0.0),
    (None, None, 1.0),
]
# (gold solution, generated solution, HELM's is_equiv_chain_of_thought)
CHAIN_OF_THOUGHT = [
    ("so $x = \\boxed{7}$.", "The answer is $\\boxed{7}$", 1.0),
    ("so $x = \\boxed{\\frac{1}{2}}$.", "\\boxed{0.5}", 1.0),
    ("first \\boxed{1} then \\boxed{2}", "\\boxed{2}", 1.0),
    ("first \\boxed{1} then \\boxed{2}", "\\boxed{1}", 0.0),
    ("the sum is \\fbox{5}.", "no box here", 1.0),
    ("the sum is \\fbox{5}.", "\\boxed{5}", 0.0),
    ("\\boxed{5}", "no box here", 0.0),
    ("\\boxed{5}", "\\boxed{5", 0.0),
    ("\\boxed{5}", "\\boxed 5", 0.0),
    ("\\boxed{\\text{(A)}}", "\\boxed{\\text{(A)}}", 1.0),
    ("\\boxed{(2,-3)}", "\\boxed{\\left(2, -3\\right)}", 1.0),
]
# (answer, HELM's _strip_string)
STRIPPED = [
    ("\\left( 3, 4 \\right)", "(3,4)"),
    ("k = \\dfrac{1}{2}", "\\frac{1}{2}"),
    (" .5", "\\frac{1}{2}"),
    ("3\\text{ apples}", "3"),
    ("\\frac12", "\\frac{1}{2}"),
    ("1/2", "\\frac{1}{2}"),
    ("0.5", "\\frac{1}{2}"),
]
# (solution, HELM's get_answer)
BOXED = [
    ("a \\boxed{\\frac{1}{2}} b", "\\frac{1}{2}"),
    ("\\fbox{3}", None),
    ("nothing", None),
    ("\\boxed{a}\\boxed{b}", "b"),
    ("\\boxed{{x}}", "{x}"),
    ("\\boxed{1", None),
]


@pytest.mark.parametrize(("gold", "pred", "expected"), EQUIV)
def test_is_equiv_scores_as_helm(gold: str | None, pred: str | None, expected: float) -> None:
    assert is_equiv(gold, pred) == expected


@pytest.mark.parametrize(("gold", "pred", "expected"), CHAIN_OF_THOUGHT)
def test_chain_of_thought_compares_the_last_boxes(gold: str, pred: str, expected: float) -> None:
    assert is_equiv_chain_of_thought(gold, pred) == expected


@pytest.mark.parametrize(("text", "expected"), STRIPPED)
def test_strip_string_normalises_as_helm(text: str, expected: str) -> None:
    assert strip_string(text) == expected


@pytest.mark.parametrize(("solution", "expected"), BOXED)
def test_boxed_answer_is_the_last_box(solution: str, expected: str | None) -> None:
    assert boxed_answer(solution) == expected


def test_a_normalisation_that_fails_compares_the_raw_strings() -> None:
    """Two unit markers make MATH's code raise; the strings are then compared as they are."""
    with pytest.raises(AssertionError):
        strip_string("a\\text{ b}\\text{ c}")
    assert is_equiv("\\frac", "\\frac") == 1.0
    assert is_equiv("\\frac", "\\frac ") == 0.0


def test_the_metrics_are_registered_by_name() -> None:
    assert MATCHERS["math_equiv"] is is_equiv
    assert MATCHERS["math_equiv_chain_of_thought"] is is_equiv_chain_of_thought
    matchers = builtin_registries().matchers(["math_equiv", "math_equiv_chain_of_thought"])
    assert matchers == {"math_equiv": is_equiv, "math_equiv_chain_of_thought": is_equiv_chain_of_thought}
