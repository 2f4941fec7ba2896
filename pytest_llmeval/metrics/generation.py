"""Metrics for free-text generations: HELM's ``f1_score``, ``exact_match_indicator`` and the
GSM8K final-number match.

Each is a ``(gold, pred) -> float`` matcher like the exact-match family, so ``reference_stats``
scores them (best over the gold references) once they are in the session's metrics registry.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from types import MappingProxyType

from pytest_llmeval.metrics.basic import exact_match, normalize_text


def f1_score(gold: str, pred: str) -> float:
    """HELM's word-overlap F1: over the *sets* of normalised words (not SQuAD's multisets)."""
    gold_words = set(normalize_text(gold).split())
    pred_words = set(normalize_text(pred).split())
    common = len(gold_words & pred_words)
    if not gold_words or not pred_words or not common:
        return 0.0
    precision = common / len(pred_words)
    recall = common / len(gold_words)
    return 2 * precision * recall / (precision + recall)


def exact_match_indicator(gold: str, pred: str, indicator: str = " ") -> float:
    """Exact match of what follows the last ``indicator``: the reasoning before it may differ."""
    return exact_match(gold.split(indicator)[-1].strip(), pred.split(indicator)[-1].strip())


# A number as written in word problems: an optional sign and dollar sign, thousands commas,
# decimals. A trailing period ("is 18.") is the end of the sentence, not a decimal point.
_NUMBER = re.compile(r"(-?)\$?(\d(?:[\d,]*\d)?(?:\.\d+)?)")


def final_number(text: str) -> Decimal | None:
    """The last number in ``text`` (``$1,234.50`` -> 1234.50), or None when there is none."""
    matches = _NUMBER.findall(text)
    if not matches:
        return None
    sign, digits = matches[-1]
    try:
        return Decimal(sign + digits.replace(",", ""))
    except InvalidOperation:  # pragma: no cover - the pattern only admits valid decimals
        return None


def final_number_exact_match(gold: str, pred: str) -> float:
    """1 when the last numbers of gold and prediction are equal as numbers (``18.0 == 18``).

    HELM compares the two numbers as strings after removing commas; comparing values also
    accepts ``$18.00`` for 18, which a string comparison would count wrong.
    """
    gold_number = final_number(gold)
    pred_number = final_number(pred)
    if gold_number is None or pred_number is None:
        return 0.0
    return float(gold_number == pred_number)


GENERATION_MATCHERS: Mapping[str, Callable[[str, str], float]] = MappingProxyType({
    "f1_score": f1_score,
    "exact_match_indicator": exact_match_indicator,
    "final_number_exact_match": final_number_exact_match,
})
