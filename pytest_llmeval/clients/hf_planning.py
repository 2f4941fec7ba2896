"""Batch planning for the local client, in pure Python: importable without torch.

Requests that ask for the same kind of decoding run together; within those, requests sharing
a long token prefix (instructions, in-context examples) compute it once; what remains is cut
into length-sorted batches whose padding stays bounded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pytest_llmeval.requests import Request


def decoding_groups(requests: Sequence[Request]) -> list[list[int]]:
    """Positions of the requests that decode alike (same length, sampling, stops, echo)."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, r in enumerate(requests):
        key = (r.max_tokens, r.temperature, r.stop_sequences, r.num_completions, r.top_k_per_token,
               r.echo_prompt, r.top_p)
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def single_pass(request: Request) -> bool:
    """Answered by one forward pass: one greedy token, or the prompt's own log-probabilities."""
    one_token = request.max_tokens == 1 and request.temperature == 0 and request.num_completions == 1
    return one_token or (request.echo_prompt and request.max_tokens == 0)


def batches(indices: list[int], encoded: list[list[int]], batch_size: int, max_padding_ratio: float,
            prefix_len: int = 0, max_cells: int | None = None) -> list[list[int]]:
    """Length-sorted batches of at most ``batch_size`` whose padding (of the part after the
    shared prefix) stays under ``max_padding_ratio``. ``max_cells`` bounds a batch's attention
    scores per head in its first forward pass (rows x width x (prefix + width)); a single row
    may exceed it."""
    result: list[list[int]] = []
    current: list[int] = []
    for i in indices:
        if current:
            shortest = len(encoded[current[0]]) - prefix_len
            longest = len(encoded[i]) - prefix_len
            too_padded = longest > 0 and (longest - shortest) / longest > max_padding_ratio
            too_big = max_cells is not None and (len(current) + 1) * longest * (prefix_len + longest) > max_cells
            if len(current) >= batch_size or too_padded or too_big:
                result.append(current)
                current = []
        current.append(i)
    if current:
        result.append(current)
    return result


def prefix_groups(indices: list[int], encoded: list[list[int]], minimum: int) -> list[tuple[int, list[int]]]:
    """Group requests by a shared token prefix of at least ``minimum`` tokens.

    Sorting the token lists puts prompts with long common prefixes next to each other; a
    group's prefix stops one token short of its shortest member so every request keeps at
    least one token of its own to compute. Requests that share nothing long enough are
    pooled into one group with no prefix, so they still batch together.
    """
    if minimum <= 0 or len(indices) < 2:
        return [(0, list(indices))]
    ordered = sorted(indices, key=lambda i: encoded[i])
    runs: list[tuple[int, list[int]]] = []
    members = [ordered[0]]
    shared = len(encoded[ordered[0]]) - 1
    for i in ordered[1:]:
        common = min(shared, _common_length(encoded[members[0]], encoded[i]), len(encoded[i]) - 1)
        if common >= minimum:
            members.append(i)
            shared = common
        else:
            runs.append((shared, members))
            members, shared = [i], len(encoded[i]) - 1
    runs.append((shared, members))
    groups = [(prefix, group) for prefix, group in runs if len(group) > 1]
    alone = [group[0] for _, group in runs if len(group) == 1]
    return groups + ([(0, alone)] if alone else [])


def _common_length(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    for k in range(n):
        if a[k] != b[k]:
            return k
    return n
