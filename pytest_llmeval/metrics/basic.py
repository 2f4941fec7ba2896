"""Reference-matching metrics (HELM's exact-match family) and per-request efficiency stats.

A metric is a plain function ``(gold, pred) -> float``, registered by name in the session's
metrics registry (the built-ins by :mod:`pytest_llmeval.builtins`, others by plugins).
"""

from __future__ import annotations

import functools
import math
import re
import string
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

from pytest_llmeval.adapters.adapter_spec import RequestState
from pytest_llmeval.metrics.stat import MetricName, Stat

_DROP_PUNCTUATION = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


@functools.lru_cache(maxsize=4096)  # the same golds and predictions come back for every metric
def normalize_text(text: str) -> str:
    """Lower-case, drop punctuation and articles, squeeze white space (HELM's normaliser)."""
    text = text.lower().translate(_DROP_PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(gold: str, pred: str) -> float:
    if not pred:  # as HELM: an empty prediction never matches
        return 0.0
    return float(gold.strip() == pred.strip())


def quasi_exact_match(gold: str, pred: str) -> float:
    if not pred:  # as HELM: an empty prediction never matches
        return 0.0
    return float(normalize_text(gold) == normalize_text(pred))


def prefix_exact_match(gold: str, pred: str) -> float:
    if not pred:  # as HELM: an empty prediction never matches
        return 0.0
    return float(pred.strip().startswith(gold.strip()))


def quasi_prefix_exact_match(gold: str, pred: str) -> float:
    if not pred:  # as HELM: an empty prediction never matches
        return 0.0
    return float(normalize_text(pred).startswith(normalize_text(gold)))


EXACT_MATCHERS: Mapping[str, Callable[[str, str], float]] = MappingProxyType({
    "exact_match": exact_match,
    "quasi_exact_match": quasi_exact_match,
    "prefix_exact_match": prefix_exact_match,
    "quasi_prefix_exact_match": quasi_prefix_exact_match,
})


def prediction(state: RequestState) -> str | None:
    """The model's answer; for joint multiple choice the letter is mapped to its option text."""
    if state.result is None or not state.result.completions:
        return None
    text = state.result.completions[0].text.strip()
    if state.output_mapping is not None:
        return state.output_mapping.get(text)
    return text


def reference_stats(state: RequestState, names: Sequence[str],
                    matchers: Mapping[str, Callable[[str, str], float]]) -> list[Stat]:
    """Each metric's best score over the gold references (0 when there is no prediction);
    ``matchers`` are the run's metric functions by name (``RunSpec.matchers``)."""
    golds = [r.output for r in state.instance.references if r.is_correct]
    pred = prediction(state)
    split = state.instance.split
    stats = []
    for name in names:
        matcher = matchers[name]
        scores = [matcher(g, pred) for g in golds] if pred is not None else []
        value = max(scores) if scores else 0.0
        stats.append(Stat(MetricName(name, split)).add(value))
    return stats


def max_prob_stats(state: RequestState) -> list[Stat]:
    """HELM's ``max_prob``: the probability of the completion the prediction comes from.

    Only where the client returned log-probabilities (tokens); a text-only answer has none.
    """
    if state.result is None or not state.result.completions or not state.result.completions[0].tokens:
        return []
    completion = state.result.completions[0]
    return [Stat(MetricName("max_prob", state.instance.split)).add(math.exp(completion.logprob))]


def efficiency_stats(state: RequestState, num_prompt_tokens: int | None = None) -> list[Stat]:
    """What the request cost: prompt tokens (when a tokenizer counted them), output tokens,
    runtime, in-context examples, truncation."""
    split = state.instance.split
    result = state.result
    tokens = len(result.completions[0].tokens) if result and result.completions else 0
    if state.request.echo_prompt:  # as HELM: echoed prompt tokens are not output
        tokens = max(0, tokens - (num_prompt_tokens if num_prompt_tokens is not None else tokens))
    runtime = result.request_time if result and result.request_time is not None else 0.0
    prompt = [] if num_prompt_tokens is None else [Stat(MetricName("num_prompt_tokens", split)).add(num_prompt_tokens)]
    return [
        *prompt,
        Stat(MetricName("num_output_tokens", split)).add(tokens),
        Stat(MetricName("inference_runtime", split)).add(runtime),
        Stat(MetricName("num_train_instances", split)).add(state.num_train_instances),
        Stat(MetricName("prompt_truncated", split)).add(state.prompt_truncated),
    ]
