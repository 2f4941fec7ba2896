"""A token prefix shared by a batch's requests: computed once, and attended to where its keys
and values are stored (see :mod:`prefix_attention`) when the model allows it.

A model whose attention that path cannot reproduce switches it off at its first use and the
caller copies the prefix cache per batch instead, with the same results.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any

from pytest_llmeval.clients import prefix_attention
from pytest_llmeval.requests import Request

log = logging.getLogger("pytest_llmeval.models")


@dataclass
class SharedPrefix:
    """A token prefix computed once: its key/value cache and its log-probabilities."""

    ids: list[int]
    cache: Any
    logprobs: Any
    attention: PrefixKV | None = None

    def expanded(self, batch: int) -> Any:
        """A private copy of the cache, repeated for every row of a batch."""
        cache = copy.deepcopy(self.cache)
        if batch > 1:
            cache.batch_repeat_interleave(batch)
        return cache


@dataclass
class PrefixKV:
    """The prefix's keys and values, layer by layer, as the shared-prefix attention reads them."""

    keys: list[Any]
    values: list[Any]

    @classmethod
    def of(cls, cache: Any) -> PrefixKV | None:
        layers = getattr(cache, "layers", None)
        if not layers or not all(hasattr(layer, "keys") and hasattr(layer, "values") for layer in layers):
            return None
        return cls([layer.keys for layer in layers], [layer.values for layer in layers])

    def batch(self, valid: Any) -> prefix_attention.PrefixBatch:
        return prefix_attention.PrefixBatch(self.keys, self.values, valid)


# Generation settings under which greedy decoding is plain argmax, as transformers does it.
PLAIN_GENERATION_KEYS = {"bos_token_id", "eos_token_id", "pad_token_id", "transformers_version", "do_sample",
                         "temperature", "top_p", "top_k", "max_length", "max_new_tokens", "_from_model_config",
                         "use_cache", "output_attentions", "output_hidden_states", "output_scores", "output_logits",
                         "return_dict_in_generate"}


def greedy_over_prefix_possible(model: Any, prefix: SharedPrefix, request: Request) -> bool:
    """Our own greedy loop applies: one greedy completion, a stored prefix, the shared-prefix
    attention on, and no generation setting of the model that changes the argmax."""
    if request.temperature != 0 or request.num_completions != 1 or prefix.attention is None:
        return False
    config = getattr(model, "generation_config", None)
    changes = set(config.to_diff_dict()) if config is not None else set()
    return changes <= PLAIN_GENERATION_KEYS and prefix_attention_on(model)


def over_prefix(model: Any, batch: prefix_attention.PrefixBatch, **inputs: Any) -> Any | None:
    """The model's logits with ``batch``'s prefix attended where it is stored; None, with the
    path switched off for this model, when its attention cannot do that (the caller then
    copies the prefix cache)."""
    try:
        logits = model(**inputs, **{prefix_attention.KWARG: batch}).logits
    except prefix_attention.Unsupported as exc:
        reason = str(exc)
    else:
        if batch.calls == len(batch.keys):
            return logits
        reason = f"{batch.calls} of {len(batch.keys)} layers used it"
    log.info("shared-prefix attention is off for this model (%s); copying the prefix cache", reason)
    prefix_attention.disable(model)
    model._llmeval_prefix_attention = False
    return None


def prefix_attention_on(model: Any) -> bool:
    """Whether the model runs the shared-prefix attention (switched on at first use)."""
    if getattr(model, "_llmeval_prefix_attention", None) is None:
        model._llmeval_prefix_attention = prefix_attention.enable(model)
    return bool(model._llmeval_prefix_attention)
