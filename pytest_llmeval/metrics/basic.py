"""Reference-matching metrics (HELM's exact-match family) and HELM's per-request general stats.

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
from pytest_llmeval.metrics.stat import Stat, one_value, shared_name
from pytest_llmeval.requests import GeneratedOutput, Token

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


def _ranked(state: RequestState) -> list[GeneratedOutput]:
    """The completions, most likely first (HELM scores the first of these as "the" prediction)."""
    completions = state.result.completions if state.result is not None else []
    if len(completions) < 2:
        return list(completions)
    return sorted(completions, key=lambda c: -c.logprob)


def _mapped(state: RequestState, text: str) -> str | None:
    """A completion's answer: stripped, and for joint multiple choice the letter's option text."""
    text = text.strip()
    if state.output_mapping is not None:
        return state.output_mapping.get(text)
    return text


def prediction(state: RequestState) -> str | None:
    """The model's answer (the likeliest completion); for joint multiple choice the letter is
    mapped to its option text."""
    ranked = _ranked(state)
    return _mapped(state, ranked[0].text) if ranked else None


def reference_stats(state: RequestState, names: Sequence[str],
                    matchers: Mapping[str, Callable[[str, str], float]], num_outputs: int = 1) -> list[Stat]:
    """HELM's reference metrics: ``max_prob`` (the likeliest completion's probability), then each
    metric's best score over the gold references and, when ``num_outputs`` is not 1, its best over
    every completion as ``<name>@<num_outputs>``; ``matchers`` are the run's metric functions by name
    (``RunSpec.matchers``). Without a completion every score is 0."""
    golds = [r.output for r in state.instance.references if r.is_correct]
    ranked = _ranked(state)
    preds = [_mapped(state, c.text) for c in ranked]
    split = state.instance.split
    stats = [one_value(shared_name("max_prob", split), math.exp(ranked[0].logprob))] if ranked else []
    for name in names:
        matcher = matchers[name]
        stats.append(Stat(shared_name(name, split)).add(_best(matcher, golds, preds[:1])))
        if num_outputs != 1:
            stats.append(Stat(shared_name(f"{name}@{num_outputs}", split)).add(_best(matcher, golds, preds)))
    return stats


def _best(matcher: Callable[[str, str], float], golds: Sequence[str], preds: Sequence[str | None]) -> float:
    """The best score of any prediction against any gold (an unmapped prediction scores 0)."""
    scores = [matcher(g, p) if p is not None else 0.0 for g in golds for p in preds]
    return max(scores) if scores else 0.0


FINISH_REASONS = ("length", "stop", "endoftext", "unknown")


def general_stats(state: RequestState, num_train_trials: int, num_prompt_tokens: int | None = None) -> list[Stat]:
    """HELM's per-request stats (``compute_request_state_metrics``), in HELM's order: references,
    trials, tokens, the training costs (unknown here, so empty), runtime and batch size (when the
    client timed the request), why generation stopped, in-context examples, truncation.

    Prompt tokens are counted by the deployment's tokenizer; without one they are left out.
    """
    split = state.instance.split
    result = state.result
    completions = result.completions if result is not None else []
    num_completion_tokens = sum(len(c.tokens) for c in completions)
    num_output_tokens = num_completion_tokens
    if state.request.echo_prompt:  # as HELM: echoed prompt tokens are not output
        if num_prompt_tokens is not None and num_prompt_tokens <= num_output_tokens:
            num_output_tokens -= num_prompt_tokens
        else:
            num_output_tokens = 0
    stats = [
        one_value(shared_name("num_references", split), len(state.instance.references)),
        one_value(shared_name("num_train_trials", split), num_train_trials),
    ]
    if num_prompt_tokens is not None:
        stats.append(one_value(shared_name("num_prompt_tokens", split), num_prompt_tokens))
    stats += [
        one_value(shared_name("num_completion_tokens", split), num_completion_tokens),
        one_value(shared_name("num_output_tokens", split), num_output_tokens),
        Stat(shared_name("training_co2_cost", split)),
        Stat(shared_name("training_energy_cost", split)),
    ]
    if result is not None and result.request_time is not None:
        stats += [one_value(shared_name("inference_runtime", split), result.request_time),
                  one_value(shared_name("batch_size", split), 1)]
    finish = completions[0].finish_reason if completions else None
    reason = finish.get("reason") if isinstance(finish, dict) else None
    if reason not in FINISH_REASONS:
        reason = "unknown"
    stats += [one_value(shared_name(f"finish_reason_{r}", split), int(r == reason)) for r in FINISH_REASONS]
    stats += [
        one_value(shared_name("num_train_instances", split), state.num_train_instances),
        one_value(shared_name("prompt_truncated", split), state.prompt_truncated),
    ]
    return stats


def num_bytes(tokens: Sequence[Token]) -> int:
    """HELM's byte count of tokens: a ``bytes:\\xe2\\x80`` token counts its escapes, text its UTF-8."""
    total = 0
    for token in tokens:
        text = token.text
        total += text.count("\\x") if text.startswith("bytes:") else len(text.encode("utf-8"))
    return total


def language_modeling_stats(state: RequestState) -> list[Stat]:
    """HELM's ``logprob``, ``num_perplexity_tokens`` and ``num_bytes`` of the first completion (from
    which a run derives ``perplexity``, ``bits_per_byte`` and ``logprob_per_byte``)."""
    split = state.instance.split
    completions = state.result.completions if state.result is not None else []
    tokens = completions[0].tokens if completions else []
    return [
        one_value(shared_name("logprob", split), sum(t.logprob for t in tokens)),
        one_value(shared_name("num_perplexity_tokens", split), len(tokens)),
        one_value(shared_name("num_bytes", split), num_bytes(tokens)),
    ]


def generation_stats(state: RequestState, names: Sequence[str], matchers: Mapping[str, Callable[[str, str], float]],
                     num_outputs: int, num_train_trials: int, num_prompt_tokens: int | None = None) -> list[Stat]:
    """One generated answer's stats as HELM's BasicGenerationMetric lists them: the general ones,
    the reference metrics (when the instance has references), the language-modelling ones."""
    stats = general_stats(state, num_train_trials, num_prompt_tokens)
    if state.instance.references:
        stats += reference_stats(state, names, matchers, num_outputs)
    return stats + language_modeling_stats(state)
