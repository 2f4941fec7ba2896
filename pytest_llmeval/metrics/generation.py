"""Metrics for free-text generations: HELM's ``f1_score``, ``exact_match_indicator`` and the
GSM8K final-number match.

Each is a ``(gold, pred) -> float`` matcher like the exact-match family, so ``reference_stats``
scores them (best over the gold references) once they are in the session's metrics registry.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
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
    # NLTK's f_measure (alpha 0.5), which HELM calls: the same value as 2pr/(p+r) to the last bit.
    return 1.0 / (0.5 / precision + 0.5 / recall)


def exact_match_indicator(gold: str, pred: str, indicator: str = " ") -> float:
    """Exact match of what follows the last ``indicator``: the reasoning before it may differ."""
    return exact_match(gold.split(indicator)[-1].strip(), pred.split(indicator)[-1].strip())


# HELM's pattern, kept as it is: the unescaped "." admits any character between the digit runs
# ("18:30", "1 2"), and a lone comma counts as a number that is empty once commas are removed.
_NUMBER = re.compile(r"-?[\d,]+(?:.\d+)?")


def final_number(text: str) -> str:
    """HELM's final number of ``text``: its last match with the commas removed, "" when none."""
    matches = _NUMBER.findall(text)
    return matches[-1].replace(",", "") if matches else ""


def final_number_exact_match(gold: str, pred: str) -> float:
    """HELM's rule: 1 when the final-number strings are equal (``18.0`` is not ``18``), 0 when empty."""
    return exact_match(final_number(gold), final_number(pred))


GENERATION_MATCHERS: Mapping[str, Callable[[str, str], float]] = MappingProxyType({
    "f1_score": f1_score,
    "exact_match_indicator": exact_match_indicator,
    "final_number_exact_match": final_number_exact_match,
})
