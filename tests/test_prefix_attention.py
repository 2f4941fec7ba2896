"""Shared-prefix attention against full prompts, on tiny random models (fast) and the client."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.clients import prefix_attention
from pytest_llmeval.clients.hf_prefix import PrefixKV
from pytest_llmeval.clients.huggingface import HuggingFaceClient
from pytest_llmeval.requests import Request

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def _tiny(model_type: str = "llama", **extra: Any) -> Any:
    config = transformers.AutoConfig.for_model(
        model_type, vocab_size=120, hidden_size=64, intermediate_size=96, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, **extra)
    torch.manual_seed(0)
    return transformers.AutoModelForCausalLM.from_config(config, attn_implementation="sdpa").eval()


def _full_logprobs(model: Any, ids: list[int]) -> Any:
    with torch.inference_mode():
        return torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), dim=-1)


def test_tails_over_a_stored_prefix_match_full_prompts() -> None:
    model = _tiny()
    assert prefix_attention.enable(model)
    prefix = [5, 9, 11, 3, 7, 21, 8, 2]
    tails = [[40, 41, 42, 43, 44], [50, 51], [60, 61, 62]]
    with torch.inference_mode():
        cache = model(torch.tensor([prefix]), use_cache=True).past_key_values
    stored = PrefixKV.of(cache)
    assert stored is not None
    width = max(len(t) for t in tails)
    ids = torch.zeros((len(tails), width), dtype=torch.long)
    valid = torch.zeros((len(tails), width), dtype=torch.bool)
    for row, tail in enumerate(tails):  # left-padded, as the client batches them
        ids[row, width - len(tail):] = torch.tensor(tail)
        valid[row, width - len(tail):] = True
    batch = stored.batch(valid)
    positions = len(prefix) + (valid.long().cumsum(-1) - 1).clamp(min=0)
    with torch.inference_mode():
        logits = model(input_ids=ids, attention_mask=batch.tail_mask(), position_ids=positions, use_cache=False,
                       **{prefix_attention.KWARG: batch}).logits
    assert batch.calls == 3  # every layer went through it
    for row, tail in enumerate(tails):
        expected = _full_logprobs(model, prefix + tail)[len(prefix):]
        got = torch.log_softmax(logits[row, width - len(tail):].float(), dim=-1)
        assert float((expected - got).abs().max()) < 1e-5


def test_without_a_prefix_the_model_behaves_as_with_sdpa() -> None:
    model = _tiny()
    ids = [4, 8, 15, 16, 23, 42]
    before = _full_logprobs(model, ids)
    assert prefix_attention.enable(model) and model.config._attn_implementation == prefix_attention.NAME
    assert float((_full_logprobs(model, ids) - before).abs().max()) < 1e-6
    prefix_attention.disable(model)
    assert model.config._attn_implementation == "sdpa"


def test_only_sdpa_models_are_switched() -> None:
    model = _tiny()
    model.set_attn_implementation("eager")
    assert not prefix_attention.enable(model)
    assert model.config._attn_implementation == "eager"


def test_attention_over_the_prefix_equals_plain_softmax_attention() -> None:
    class Layer:
        layer_idx = 0

    torch.manual_seed(1)
    batch, heads, kv_heads, width, length, dim = 3, 6, 2, 5, 7, 8
    query = torch.randn(batch, heads, width, dim)
    key, value = torch.randn(batch, kv_heads, width, dim), torch.randn(batch, kv_heads, width, dim)
    stored = [torch.randn(1, kv_heads, length, dim)], [torch.randn(1, kv_heads, length, dim)]
    valid = torch.tensor([[False, False, True, True, True]] + [[True] * width] * 2)  # row 0 is left-padded
    prefix = prefix_attention.PrefixBatch(*stored, valid)
    got, _ = prefix_attention.shared_prefix_attention(Layer(), query, key, value, prefix.tail_mask(), scaling=0.3,
                                                      **{prefix_attention.KWARG: prefix})
    group = heads // kv_heads  # the reference: every query head over prefix + its own visible tokens
    keys = torch.cat([stored[0][0].expand(batch, -1, -1, -1), key], dim=2).repeat_interleave(group, dim=1)
    values = torch.cat([stored[1][0].expand(batch, -1, -1, -1), value], dim=2).repeat_interleave(group, dim=1)
    scores = query @ keys.transpose(2, 3) * 0.3
    own_visible = torch.ones(width, width, dtype=torch.bool).tril() & valid[:, None, :]
    visible = torch.cat([torch.ones(batch, width, length, dtype=torch.bool), own_visible], dim=-1)[:, None]
    expected = (scores.masked_fill(~visible, float("-inf")).softmax(-1) @ values).transpose(1, 2)
    real = valid[:, :, None, None].expand_as(expected)  # padded query rows are never read
    assert float((got - expected).abs()[real].max()) < 1e-5


def test_features_it_cannot_reproduce_are_refused() -> None:
    class Layer:
        layer_idx = 0

    query = torch.zeros(1, 2, 3, 4)
    key = value = torch.zeros(1, 1, 3, 4)
    batch = prefix_attention.PrefixBatch([torch.zeros(1, 1, 2, 4)], [torch.zeros(1, 1, 2, 4)],
                                         torch.ones(1, 3, dtype=torch.bool))
    with pytest.raises(prefix_attention.Unsupported, match="sliding_window"):
        prefix_attention.shared_prefix_attention(Layer(), query, key, value, batch.tail_mask(), sliding_window=2,
                                                 **{prefix_attention.KWARG: batch})
    assert batch.calls == 0


def _saved_tiny(folder: Path, config: Any) -> Path:
    """A tiny random model saved with the bundled model's tokenizer, for the client to load."""
    from pytest_llmeval.clients.hf_loading import loadable_path, resolve_source
    from pytest_llmeval.registry import DEFAULT_MODEL, Registry

    args = Registry.load().deployment(DEFAULT_MODEL).client_spec.args
    tokenizer_folder = Path(loadable_path(resolve_source(args["pretrained_model_name_or_path"], args["gguf_file"])))
    torch.manual_seed(0)
    transformers.AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tokenizer_folder / name, folder / name)
    return folder


@pytest.fixture()
def sliding_window_folder(tmp_path: Path) -> Path:
    """A tiny Mistral with a sliding window."""
    return _saved_tiny(tmp_path, transformers.MistralConfig(
        vocab_size=49152, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, sliding_window=24, max_position_embeddings=512))


@pytest.mark.slow
def test_greedy_decoding_over_the_stored_prefix_matches_generate(tmp_path: Path) -> None:
    folder = _saved_tiny(tmp_path, transformers.LlamaConfig(
        vocab_size=49152, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=512))
    instructions = "Continue the list of words. " * 5
    requests = [Request("t/t", prompt=instructions + tail, max_tokens=10, top_k_per_token=2, stop_sequences=stops)
                for tail in ("apple, pear,", "red, green, blue, yellow,", "one")
                for stops in ((), ("e",))]
    shared = HuggingFaceClient(str(folder), min_shared_prefix=16, batch_size=6)
    full = HuggingFaceClient(str(folder), min_shared_prefix=0, batch_size=1)  # transformers' generate
    got = shared.generate(requests)
    assert got[0].raw_response["shared_prefix_tokens"] >= 16
    assert shared.model._llmeval_prefix_attention is True
    shared.model._llmeval_prefix_attention = False
    expected = full.generate(requests)
    assert any(r.completions[0].finish_reason["reason"] == "stop" for r in got)
    for a, b in zip(expected, got, strict=True):
        assert a.text == b.text and a.completions[0].finish_reason == b.completions[0].finish_reason
        assert [t.text for t in a.completions[0].tokens] == [t.text for t in b.completions[0].tokens]
        assert a.completions[0].logprob == pytest.approx(b.completions[0].logprob, abs=1e-4)
        for x, y in zip(a.completions[0].tokens, b.completions[0].tokens):
            assert x.top_logprobs.keys() == y.top_logprobs.keys()


@pytest.mark.slow
def test_a_sliding_window_model_falls_back_to_copying_the_cache(sliding_window_folder: Path) -> None:
    instructions = "Answer with one letter. " * 6
    requests = [Request("t/t", prompt=instructions + f"Question {n}: which?", max_tokens=1, top_k_per_token=3)
                for n in range(3)]
    shared = HuggingFaceClient(str(sliding_window_folder), min_shared_prefix=16, batch_size=3)
    full = HuggingFaceClient(str(sliding_window_folder), min_shared_prefix=0, batch_size=1)
    got, expected = shared.generate(requests), full.generate(requests)
    assert got[0].raw_response["shared_prefix_tokens"] >= 16
    assert shared.model._llmeval_prefix_attention is False  # it tried, was refused, and copied the cache
    for a, b in zip(expected, got, strict=True):
        assert a.completions[0].tokens[0].text == b.completions[0].tokens[0].text
        assert a.completions[0].logprob == pytest.approx(b.completions[0].logprob, abs=1e-4)
