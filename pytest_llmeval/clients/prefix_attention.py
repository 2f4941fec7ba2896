"""Attention over a shared prefix that is stored once, not copied for every row of a batch.

The run's instructions and in-context examples are computed once (one key/value tensor per
layer, batch size 1). The requests' own tokens then attend to that prefix and, causally, to
themselves through the fused attention kernels: the prefix is joined to each row's keys for
one layer at a time (a transient, freed before the next layer), so no per-batch copy of the
cache is kept and no cache grows during the forward pass. A decoding step (one new token per
row) stacks the rows' queries against the single stored prefix instead.

It plugs into transformers' attention registry under :data:`NAME`; without a prefix in the
call it hands over to transformers' own SDPA attention, so the model behaves as before for
every other use. :func:`enable` switches a model over only when it uses SDPA and its attention
modules honour the registry (checked on a real forward pass by the caller).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NAME = "llmeval_shared_prefix"
KWARG = "llmeval_prefix"

_REGISTERED = False


class Unsupported(RuntimeError):
    """The model's attention has a feature this path does not reproduce (sliding windows,
    soft-capping, attention sinks); the caller falls back to a copied cache."""


@dataclass
class PrefixBatch:
    """What one forward pass needs: the prefix's keys and values per layer (each
    ``[1, kv_heads, prefix, head_dim]``) and which of each row's own tokens are real
    (``[batch, width]``, rows left-padded)."""

    keys: list[Any]
    values: list[Any]
    valid: Any
    calls: int = 0

    def tail_mask(self) -> Any:
        """``[batch, 1, width, width]``: causal over each row's own tokens, pads hidden."""
        import torch

        width = self.valid.shape[1]
        causal = torch.ones(width, width, dtype=torch.bool, device=self.valid.device).tril_()
        return (causal[None] & self.valid[:, None, :])[:, None]


def _register() -> None:
    global _REGISTERED
    if _REGISTERED:
        return
    from transformers import AttentionInterface, AttentionMaskInterface
    from transformers.masking_utils import sdpa_mask

    AttentionInterface.register(NAME, shared_prefix_attention)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    _REGISTERED = True


def enable(model: Any) -> bool:
    """Switch ``model`` to this attention if it runs SDPA; True when it now does."""
    config = getattr(model, "config", None)
    current = getattr(config, "_attn_implementation", None)
    if current == NAME:
        return True
    if current != "sdpa" or not hasattr(model, "set_attn_implementation"):
        return False
    _register()
    try:
        model.set_attn_implementation(NAME)
    except (ValueError, TypeError, AttributeError):
        return False
    return bool(getattr(model.config, "_attn_implementation", None) == NAME)


def disable(model: Any) -> None:
    """Back to SDPA (for models whose attention modules turned out not to call the registry)."""
    if getattr(getattr(model, "config", None), "_attn_implementation", None) == NAME:
        model.set_attn_implementation("sdpa")


def shared_prefix_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any,
                            scaling: float | None = None, dropout: float = 0.0, **kwargs: Any) -> tuple[Any, None]:
    """Softmax attention of the new tokens over ``prefix + own tokens``.

    ``query`` is ``[batch, heads, width, head_dim]``; ``key``/``value`` are the new tokens'
    own (``[batch, kv_heads, width, head_dim]``). Query heads are grouped under their key/value
    head, so grouped-query attention needs no repeated keys. Returns ``[batch, width, heads,
    head_dim]`` as transformers' attention functions do.
    """

    prefix: PrefixBatch | None = kwargs.pop(KWARG, None)
    if prefix is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        output, _ = sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling,
                                           dropout=dropout, **kwargs)
        return output, None
    unsupported = [name for name in ("sliding_window", "softcap", "s_aux") if kwargs.get(name) is not None]
    if unsupported:
        raise Unsupported(f"shared-prefix attention does not handle {', '.join(unsupported)}")
    prefix.calls += 1
    layer = module.layer_idx
    prefix_keys, prefix_values = prefix.keys[layer], prefix.values[layer]
    batch, heads, width, head_dim = query.shape
    kv_heads, own = key.shape[1], key.shape[2]
    scale = head_dim ** -0.5 if scaling is None else scaling
    if width == 1:
        grouped = (query * scale).reshape(batch, kv_heads, heads // kv_heads, head_dim)
        hidden = ~attention_mask.reshape(batch, 1, 1, width, own)
        output = _decoding_step(grouped, key, value, prefix_keys, prefix_values, hidden)
    else:  # the fused kernels: 2.4x the plain matrix products on a CPU, softmax in fp32 for half precision
        output = fused_over_prefix(query, key, value, prefix_keys, prefix_values, attention_mask, scale)
    return output.reshape(batch, heads, width, head_dim).transpose(1, 2).contiguous(), None


def _decoding_step(grouped: Any, key: Any, value: Any, prefix_keys: Any, prefix_values: Any, hidden: Any) -> Any:
    """One new token per row: the rows' queries are stacked against the single stored prefix
    (no per-row copy of it), their own cached tokens are attended to per row."""
    import torch

    batch, kv_heads, rows, head_dim = grouped.shape
    length, own = prefix_keys.shape[2], key.shape[2]
    stacked = grouped.transpose(0, 1).reshape(kv_heads, batch * rows, head_dim)
    on_prefix = torch.bmm(stacked, prefix_keys[0].transpose(1, 2)).view(kv_heads, batch, rows, length)
    on_own = torch.matmul(grouped, key.transpose(2, 3))
    on_own.view(batch, kv_heads, -1, 1, own).masked_fill_(hidden, float("-inf"))
    weights = torch.softmax(torch.cat([on_prefix.transpose(0, 1), on_own], dim=-1), dim=-1,
                            dtype=torch.float32).to(grouped.dtype)
    from_prefix = torch.bmm(weights[..., :length].transpose(0, 1).reshape(kv_heads, batch * rows, length),
                            prefix_values[0]).view(kv_heads, batch, rows, head_dim).transpose(0, 1)
    return from_prefix + torch.matmul(weights[..., length:], value)


def fused_over_prefix(query: Any, key: Any, value: Any, prefix_keys: Any, prefix_values: Any, attention_mask: Any,
                      scale: float) -> Any:
    """Several new tokens per row through ``scaled_dot_product_attention``: the prefix is joined
    to each row's keys for this layer only (a transient, not a cache copy), and the fused
    kernels keep the softmax in fp32 for half-precision weights."""
    import torch

    batch, heads, width, _ = query.shape
    kv_heads, own, length = key.shape[1], key.shape[2], prefix_keys.shape[2]
    keys = torch.cat([prefix_keys.expand(batch, -1, -1, -1), key], dim=2)
    values = torch.cat([prefix_values.expand(batch, -1, -1, -1), value], dim=2)
    visible = torch.cat([attention_mask.new_ones((batch, 1, width, length)),
                         attention_mask.reshape(batch, 1, width, own)], dim=-1)
    attend = torch.nn.functional.scaled_dot_product_attention
    try:
        return attend(query, keys, values, attn_mask=visible, scale=scale, enable_gqa=True)
    except TypeError:  # torch before 2.5: repeat the key/value heads for the query heads
        group = heads // kv_heads
        return attend(query, keys.repeat_interleave(group, dim=1), values.repeat_interleave(group, dim=1),
                      attn_mask=visible, scale=scale)
