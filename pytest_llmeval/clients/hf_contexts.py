"""Scoring many short shared contexts in one batch: lm-eval's multiple choice on a local model.

A document's choices share its context (hellaswag: about 30 tokens, then four endings). Each
context is too short to be worth a forward pass of its own, so a batch takes several
documents: their contexts run once, left-padded, and keep their keys and values; each choice's
continuation then runs against its own document's cached context, right-padded. Every prompt
token's log-probability comes back as ``echo_prompt`` with no new tokens asks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pytest_llmeval.requests import GeneratedOutput, Token

# A batch's rows (continuations) and its contexts' longest shared run: bounds on memory.
MAX_ROWS = 32
MIN_CONTEXT = 4  # consecutive requests sharing fewer leading tokens are scored on their own


def context_groups(indices: list[int], encoded: list[list[int]]) -> list[tuple[int, list[int]]]:
    """Consecutive requests (in the order given) that share a context: (its length, members),
    at most :data:`MAX_ROWS` members each.

    The context stops one token short of the shortest member, so every member keeps a token of
    its own; a request sharing nothing is a group of one whose context is all but its last token.
    """
    groups: list[tuple[int, list[int]]] = []
    for i in indices:
        ids = encoded[i]
        if groups:
            length, members = groups[-1]
            first = encoded[members[0]]
            common = 0
            limit = min(length, len(ids) - 1)
            while common < limit and first[common] == ids[common]:
                common += 1
            # A group of one takes the next request's shared part as its context; a larger group only
            # takes requests sharing its whole context (a header every document starts with is
            # not a document's context), and stops at MAX_ROWS.
            if common >= MIN_CONTEXT and (len(members) == 1 or common == length) and len(members) < MAX_ROWS:
                groups[-1] = (common, [*members, i])
                continue
        groups.append((len(ids) - 1, [i]))
    return groups


Group = tuple[int, list[int]]  # a context's length and the requests sharing it


def batches_of_groups(groups: list[Group], max_rows: int = MAX_ROWS) -> list[list[Group]]:
    """Groups packed into batches of at most ``max_rows`` continuations (a larger group alone)."""
    result: list[list[Group]] = []
    current: list[Group] = []
    rows = 0
    for group in sorted(groups, key=lambda g: g[0]):  # similar context lengths pad little
        if current and rows + len(group[1]) > max_rows:
            result.append(current)
            current, rows = [], 0
        current.append(group)
        rows += len(group[1])
    if current:
        result.append(current)
    return result


def score_batch(model: Any, batch: list[tuple[int, list[int]]], encoded: list[list[int]], top_k: int,
                pad_id: int, piece: Callable[[int], str], decode: Callable[[list[int]], str],
                finish_reason: dict[str, Any] | None) -> dict[int, GeneratedOutput]:
    """Every member's prompt tokens with their log-probabilities (and top ``top_k`` alternatives)."""
    import torch

    device = model.device
    width = max(length for length, _ in batch)
    context_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    context_mask = torch.zeros((len(batch), width), dtype=torch.long)
    for k, (length, members) in enumerate(batch):
        context_ids[k, width - length:] = torch.tensor(encoded[members[0]][:length], dtype=torch.long)
        context_mask[k, width - length:] = 1
    rows = [(k, i) for k, (_, members) in enumerate(batch) for i in members]
    owner = torch.tensor([k for k, _ in rows], dtype=torch.long)
    tails = [encoded[i][batch[k][0]:] for k, i in rows]
    tail_width = max(len(t) for t in tails)
    tail_ids = torch.full((len(rows), tail_width), pad_id, dtype=torch.long)
    tail_mask = torch.zeros((len(rows), tail_width), dtype=torch.long)
    for r, tail in enumerate(tails):
        tail_ids[r, :len(tail)] = torch.tensor(tail, dtype=torch.long)
        tail_mask[r, :len(tail)] = 1
    lengths = torch.tensor([batch[k][0] for k, _ in rows], dtype=torch.long)
    with torch.inference_mode():
        first = model(input_ids=context_ids.to(device), attention_mask=context_mask.to(device),
                      position_ids=((context_mask.cumsum(-1) - 1).clamp(min=0)).to(device), use_cache=True)
        context_logprobs = torch.log_softmax(first.logits.float(), dim=-1)
        cache = first.past_key_values
        cache.reorder_cache(owner.to(device))  # each continuation row gets its document's context
        second = model(input_ids=tail_ids.to(device), attention_mask=torch.cat([context_mask[owner], tail_mask], 1)
                       .to(device), position_ids=(lengths[:, None] + torch.arange(tail_width)[None, :]).to(device),
                       past_key_values=cache, use_cache=False)
        tail_logprobs = torch.log_softmax(second.logits.float(), dim=-1)
    outputs: dict[int, GeneratedOutput] = {}
    for r, (k, i) in enumerate(rows):
        ids, length = encoded[i], batch[k][0]
        start = width - length  # the context's first real column
        # Distributions predicting ids[1:]: the context's own positions, then the continuation's.
        dists = torch.cat([context_logprobs[k, start:width], tail_logprobs[r, :len(ids) - length - 1]])
        chosen = torch.tensor(ids[1:], dtype=torch.long, device=dists.device)
        values = dists.gather(1, chosen[:, None])[:, 0].tolist()
        tops: list[dict[str, float]] = [{} for _ in values]
        if top_k > 1:
            top_values, top_ids = torch.topk(dists, top_k, dim=-1)
            tops = [{piece(t): v for v, t in zip(vs, ts)} for vs, ts in zip(top_values.tolist(), top_ids.tolist())]
        tokens = [Token(text=piece(ids[0]), logprob=0.0)]
        tokens.extend(Token(text=piece(t), logprob=v, top_logprobs=top) for t, v, top in zip(ids[1:], values, tops))
        outputs[i] = GeneratedOutput(text=decode(ids), logprob=sum(t.logprob for t in tokens), tokens=tokens,
                                     finish_reason=finish_reason)
    return outputs
