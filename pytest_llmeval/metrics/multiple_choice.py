"""Scoring separate multiple choice: each option by the log-probability of its own tokens.

Every option was sent as ``prompt + option`` with ``echo_prompt`` and no generated tokens,
so the client returned the log-probability of each prompt token. An option's score is the sum
over the tokens that cover its text (the token that carries the leading space included), as
lm-evaluation-harness scores ``acc``; the best-scoring option is the prediction. HELM divides
that sum by the number of tokens; we keep the plain sum, which does not favour long options
made of likely tokens.
"""

from __future__ import annotations

import math

from pytest_llmeval.adapters.adapter_spec import RequestState
from pytest_llmeval.errors import ClientError
from pytest_llmeval.metrics.stat import MetricName, Stat
from pytest_llmeval.requests import Token


def option_tokens(tokens: list[Token], option: str) -> list[Token]:
    """The echoed tokens whose text overlaps the option's last occurrence in the prompt.

    Locating by text (not by a token count) works through chat templates and truncation,
    and for servers that echo; when decoded token texts do not reproduce the prompt (split
    multi-byte characters), the tokens covering the option's length at the end are taken.
    """
    joined = "".join(t.text for t in tokens)
    start = joined.rfind(option) if option else -1
    if start < 0:
        return _tail(tokens, max(1, len(option)))
    end = start + len(option)
    picked: list[Token] = []
    offset = 0
    for token in tokens:
        token_end = offset + len(token.text)
        if token_end > start and offset < end:
            picked.append(token)
        offset = token_end
    return picked


def _tail(tokens: list[Token], length: int) -> list[Token]:
    """The fewest tokens at the end whose texts cover ``length`` characters."""
    covered = 0
    picked: list[Token] = []
    for token in reversed(tokens):
        if covered >= length:
            break
        picked.insert(0, token)
        covered += len(token.text)
    return picked


def option_logprob(state: RequestState) -> tuple[float, int]:
    """(sum of log-probabilities, number of tokens) of the state's option."""
    assert state.reference_index is not None
    result = state.result
    if result is None or not result.completions or not result.completions[0].tokens:
        raise ClientError(
            f"{state.request.model_deployment}: separate multiple choice needs the log-probabilities of the "
            f"prompt's tokens (echo_prompt with max_tokens=0), and the client returned none for instance "
            f"{state.instance.id}")
    option = state.instance.references[state.reference_index].output
    tokens = option_tokens(result.completions[0].tokens, option)
    return sum(t.logprob for t in tokens), len(tokens)


def option_score(state: RequestState) -> float:
    """HELM's score of an option (``multiple_choice_separate_original``): its log-probability per
    token, so long options are not ranked below short ones for their length alone."""
    logprob, count = option_logprob(state)
    return logprob / count


def separate_stats(states: list[RequestState]) -> list[Stat]:
    """HELM's reference metrics for one instance: max_prob, exact_match, predicted_index.

    Ties for the best score share the credit: exact_match is the fraction of tied options
    that are correct, and the first of them is the predicted index (as HELM).
    """
    ordered = sorted(states, key=lambda s: s.reference_index or 0)
    instance = ordered[0].instance
    split = instance.split
    scores = [option_score(s) for s in ordered]
    best = max(scores)
    tied = [i for i, score in enumerate(scores) if score >= best]
    correct = {i for i, r in enumerate(instance.references) if r.is_correct}
    shifted = [math.exp(score - best) for score in scores]
    max_prob = 1.0 / sum(shifted)  # softmax of the best score
    return [
        Stat(MetricName("max_prob", split)).add(max_prob),
        Stat(MetricName("exact_match", split)).add(len(correct.intersection(tied)) / len(tied)),
        Stat(MetricName("predicted_index", split)).add(tied[0]),
    ]


def predicted_index(states: list[RequestState]) -> int:
    """The index of the best-scoring option (the first one on a tie)."""
    scores = [option_score(s) for s in sorted(states, key=lambda s: s.reference_index or 0)]
    return scores.index(max(scores))
