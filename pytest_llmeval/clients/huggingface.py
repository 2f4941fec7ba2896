"""A local Hugging Face (transformers) client: batched, greedy at temperature 0.

Arguments follow HELM's client (``pretrained_model_name_or_path``, ``revision``,
``torch_dtype``, ``device``, ``device_map``, ``quantization``, ``trust_remote_code``) and
clembench's chat options (``premade_chat_template``, ``custom_chat_template``,
``eos_to_cull``, ``output_split_prefix``, ``slow_tokenizer``).
"""

from __future__ import annotations

import copy
import logging
import os
import re
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_llmeval.clients import hf_loading, prefix_attention
from pytest_llmeval.clients.protocol import Finished, collect
from pytest_llmeval.errors import ConfigError
from pytest_llmeval.requests import GeneratedOutput, Message, Request, RequestResult, Token, truncate_at_stop

log = logging.getLogger("pytest_llmeval.models")

_DTYPES = ("float32", "float16", "bfloat16")


class HuggingFaceClient:
    """Runs a causal LM in this process; the model loads on the first ``generate`` call."""

    def __init__(
        self,
        pretrained_model_name_or_path: str,
        *,
        revision: str | None = None,
        gguf_file: str | None = None,
        torch_dtype: str | None = None,
        device: str | None = None,
        device_map: str | dict[str, Any] | None = None,
        quantization: str | dict[str, Any] | None = None,
        trust_remote_code: bool = False,
        apply_chat_template: bool | None = None,
        premade_chat_template: bool | None = None,
        custom_chat_template: str | None = None,
        eos_to_cull: str | None = None,
        output_split_prefix: str | None = None,
        slow_tokenizer: bool = False,
        batch_size: int | None = None,
        max_padding_ratio: float = 0.25,
        min_shared_prefix: int = 32,
        **unknown: Any,
    ) -> None:
        if unknown:
            raise ConfigError(f"unknown Hugging Face client argument(s): {', '.join(sorted(unknown))}",
                              field="client_spec.args")
        if torch_dtype is not None and torch_dtype.removeprefix("torch.") not in (*_DTYPES, "auto"):
            raise ConfigError(f"unknown dtype {torch_dtype!r}; use one of {', '.join(_DTYPES)} or auto",
                              field="client_spec.args.torch_dtype")
        self.source = hf_loading.resolve_source(pretrained_model_name_or_path, gguf_file, revision)
        self.torch_dtype = torch_dtype.removeprefix("torch.") if torch_dtype else None
        self.device = device
        self.device_map = device_map
        self.quantization = quantization
        self.trust_remote_code = trust_remote_code
        # clembench's premade_chat_template=False means "do not use the tokenizer's template".
        self.apply_chat_template = apply_chat_template if premade_chat_template is None else (
            premade_chat_template or custom_chat_template is not None)
        self.custom_chat_template = custom_chat_template
        self.eos_to_cull = re.compile(eos_to_cull) if eos_to_cull else None
        self.output_split_prefix = output_split_prefix
        self.slow_tokenizer = slow_tokenizer
        self._batch_size = batch_size
        self.max_padding_ratio = max_padding_ratio
        # Requests sharing at least this many leading tokens compute them once (0: never).
        self.min_shared_prefix = min_shared_prefix
        self._prefixes: dict[tuple[Any, ...], SharedPrefix] = {}
        self._stops: dict[tuple[str, ...], Any] = {}

    # --- identity and loading ---------------------------------------------------------------

    def identity(self) -> dict[str, Any]:
        identity = hf_loading.weights_identity(self.source)
        identity.update(dtype=self.effective_dtype, quantization=self.quantization,
                        chat_template=self.apply_chat_template, custom_chat_template=self.custom_chat_template,
                        eos_to_cull=self.eos_to_cull.pattern if self.eos_to_cull else None,
                        output_split_prefix=self.output_split_prefix)
        return identity

    @property
    def tokenizer(self) -> Any:
        tokenizer = hf_loading.load_tokenizer(self.source, slow=self.slow_tokenizer,
                                              trust_remote_code=self.trust_remote_code)
        return tokenizer

    @property
    def token_counter(self) -> Any:
        """The tokenizer's ids for counting and fitting prompts, without importing transformers
        where the tokenizer folder allows it."""
        return hf_loading.load_token_counter(self.source, slow=self.slow_tokenizer,
                                             trust_remote_code=self.trust_remote_code)

    @property
    def model(self) -> Any:
        return hf_loading.load_model(self.source, self._model_kwargs(), self._device())

    def _device(self) -> str:
        if self.device:
            return self.device
        if not _gpu_driver_present():
            return "cpu"  # decided without importing torch, so a cached run stays light
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    @property
    def effective_dtype(self) -> str:
        """The dtype the weights run in: as configured, else bf16 on a GPU and fp32 on a CPU."""
        if self.torch_dtype:
            return self.torch_dtype
        return "bfloat16" if self._device().startswith("cuda") else "float32"

    def _model_kwargs(self) -> dict[str, Any]:
        import torch

        kwargs: dict[str, Any] = {"trust_remote_code": self.trust_remote_code}
        dtype = self.effective_dtype
        kwargs["dtype"] = "auto" if dtype == "auto" else getattr(torch, dtype)
        if self.device_map is not None:
            kwargs["device_map"] = self.device_map
        if self.quantization:
            kwargs["quantization_config"] = _quantization_config(self.quantization)
        return kwargs

    @property
    def batch_hint(self) -> int:
        return self.batch_size * 4

    @property
    def batch_size(self) -> int:
        if self._batch_size:
            return self._batch_size
        return 16 if self._device().startswith("cuda") else 8

    # --- prompts ------------------------------------------------------------------------------

    def render(self, request: Request) -> str:
        """The exact text the model sees: chat requests and (by default) prompts go through
        the chat template when the tokenizer has one, as HELM and clembench do."""
        tokenizer = self.tokenizer
        template = self.custom_chat_template or getattr(tokenizer, "chat_template", None)
        if request.messages is not None:
            merged = merge_same_role(request.messages)
            if not template:
                return "\n\n".join(m.content for m in merged)
            chat = [{"role": m.role, "content": m.content} for m in merged]
        else:
            use_template = bool(template) if self.apply_chat_template is None else self.apply_chat_template
            if not (use_template and template):
                return request.prompt
            chat = [{"role": "user", "content": request.prompt}]
        return str(tokenizer.apply_chat_template(chat, chat_template=self.custom_chat_template,
                                                 tokenize=False, add_generation_prompt=True))

    # --- generation ---------------------------------------------------------------------------

    def generate(self, requests: Sequence[Request]) -> list[RequestResult]:
        return collect(self.generate_stream(requests), len(requests))

    def generate_stream(self, requests: Sequence[Request]) -> Iterator[Finished]:
        """Plan batches over every request, run them, and hand back each batch when done."""
        _limit_threads()
        tokenizer = self.tokenizer
        texts = [self.render(r) for r in requests]
        encoded: list[list[int]] = list(tokenizer(texts, add_special_tokens=False)["input_ids"]) if texts else []
        # Requests that ask for the same kind of decoding run together; within those, requests
        # sharing a long token prefix (instructions, in-context examples) compute it once.
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, r in enumerate(requests):
            key = (r.max_tokens, r.temperature, r.stop_sequences, r.num_completions, r.top_k_per_token,
                   r.echo_prompt, r.top_p)
            groups.setdefault(key, []).append(i)
        for indices in groups.values():
            first = requests[indices[0]]
            for prefix_len, members in prefix_groups(indices, encoded, self.min_shared_prefix):
                started = time.perf_counter()
                prefix = self._prefix(encoded[members[0]][:prefix_len], first) if prefix_len else None
                shared_time = (time.perf_counter() - started) / len(members)  # each request's share
                members.sort(key=lambda i: len(encoded[i]))
                # Decoding steps cost the same for one row as for a batch, so generation batches
                # by count; one forward pass (answers, scoring) keeps padding bounded.
                padding = self.max_padding_ratio if _single_pass(first) else 1.0
                for batch in self._batches(members, encoded, prefix_len, padding):
                    started = time.perf_counter()
                    outputs = self._run_with_backoff(batch, requests, encoded, prefix)
                    elapsed = (time.perf_counter() - started) / len(batch) + shared_time
                    yield batch, [
                        RequestResult(
                            success=True, completions=completions, request_time=elapsed,
                            request_datetime=int(time.time()), raw_request={"prompt": texts[i]},
                            raw_response={"completions": [c.finish_reason for c in completions],
                                          "num_prompt_tokens": len(encoded[i]), "shared_prefix_tokens": prefix_len},
                        )
                        for i, completions in zip(batch, outputs)
                    ]

    def _run_with_backoff(self, batch: list[int], requests: Sequence[Request], encoded: list[list[int]],
                          prefix: SharedPrefix | None) -> list[list[GeneratedOutput]]:
        """Run a batch; on out-of-memory, halve it (and keep the smaller size) instead of failing."""
        try:
            return self._run_batch([requests[i] for i in batch], [encoded[i] for i in batch], prefix)
        except Exception as exc:
            if not (_is_oom(exc) and len(batch) > 1):
                raise
        _free_accelerator_memory()
        half = len(batch) // 2
        self._batch_size = max(1, half)
        log.warning("out of memory at batch size %d; continuing with batch size %d", len(batch), half)
        return (self._run_with_backoff(batch[:half], requests, encoded, prefix)
                + self._run_with_backoff(batch[half:], requests, encoded, prefix))

    def _batches(self, indices: list[int], encoded: list[list[int]], prefix_len: int = 0,
                 max_padding_ratio: float | None = None) -> list[list[int]]:
        """Length-sorted batches whose padding (of the part after the shared prefix) stays
        under ``max_padding_ratio`` (the client's, unless given)."""
        ratio = self.max_padding_ratio if max_padding_ratio is None else max_padding_ratio
        batches: list[list[int]] = []
        current: list[int] = []
        for i in indices:
            if current:
                shortest = len(encoded[current[0]]) - prefix_len
                longest = len(encoded[i]) - prefix_len
                too_padded = longest > 0 and (longest - shortest) / longest > ratio
                if len(current) >= self.batch_size or too_padded:
                    batches.append(current)
                    current = []
            current.append(i)
        if current:
            batches.append(current)
        return batches

    def _prefix(self, ids: list[int], request: Request) -> SharedPrefix:
        """Run the shared prefix once; keep its key/value cache (and logits when scoring).

        The last few prefixes are remembered, so runs sent in several calls (a test calling
        the model directly, a run split by the cache's hits) compute their instructions and
        examples only once.
        """
        import torch

        scoring = request.echo_prompt and request.max_tokens == 0
        key = (tuple(ids), scoring)
        if key in self._prefixes:
            return self._prefixes[key]
        model = self.model
        input_ids = torch.tensor([ids], dtype=torch.long, device=model.device)
        with torch.inference_mode():
            output = model(input_ids=input_ids, use_cache=True, logits_to_keep=0 if scoring else 1)
        logprobs = torch.log_softmax(output.logits[0].float(), dim=-1)
        prefix = SharedPrefix(ids=ids, cache=output.past_key_values, logprobs=logprobs,
                              attention=PrefixKV.of(output.past_key_values))
        self._prefixes[key] = prefix
        while len(self._prefixes) > 2:
            self._prefixes.pop(next(iter(self._prefixes)))
        return prefix

    def _run_batch(self, requests: list[Request], encoded: list[list[int]],
                   prefix: SharedPrefix | None = None) -> list[list[GeneratedOutput]]:
        import torch

        first = requests[0]
        model = self.model
        tokenizer = self.tokenizer
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        start = len(prefix.ids) if prefix is not None else 0
        tails = [ids[start:] for ids in encoded]
        width = max(len(t) for t in tails)
        input_ids = torch.full((len(tails), start + width), pad_id, dtype=torch.long)
        attention = torch.zeros((len(tails), start + width), dtype=torch.long)
        attention[:, :start] = 1
        for row, ids in enumerate(encoded):
            # Pads sit between the shared prefix and each tail, so every last token lines up.
            input_ids[row, :start] = torch.tensor(ids[:start], dtype=torch.long)
            input_ids[row, start + width - len(tails[row]):] = torch.tensor(tails[row], dtype=torch.long)
            attention[row, start + width - len(tails[row]):] = 1
        device = model.device
        input_ids, attention = input_ids.to(device), attention.to(device)
        if first.echo_prompt and first.max_tokens == 0:
            return self._score_prompts(model, input_ids, attention, encoded, first.top_k_per_token, prefix)
        if _single_pass(first):
            return self._one_token(model, input_ids, attention, first.top_k_per_token, prefix)
        if prefix is not None and _greedy_over_prefix_possible(model, prefix, first):
            decoded = self._greedy_over_prefix(model, input_ids, attention, first, prefix)
            if decoded is not None:
                return decoded
        cache = prefix.expanded(len(tails)) if prefix is not None else None
        return self._generate(model, tokenizer, input_ids, attention, first, pad_id, cache)

    def _forward(self, model: Any, input_ids: Any, attention: Any, prefix: SharedPrefix | None,
                 logits_to_keep: int) -> Any:
        """Logits for the tokens after the shared prefix (the last ``logits_to_keep``, or all).

        The prefix's keys and values are attended to where they are, once for the whole batch
        (see :mod:`prefix_attention`); a model whose attention that path cannot reproduce gets
        a per-batch copy of the prefix cache instead, with the same results.
        """
        import torch

        start = len(prefix.ids) if prefix is not None else 0
        tail_ids, positions = input_ids[:, start:], _positions(attention)[:, start:]
        with torch.inference_mode():
            if prefix is not None and prefix.attention is not None and _prefix_attention_on(model):
                batch = prefix.attention.batch(attention[:, start:].bool())
                logits = _over_prefix(model, batch, input_ids=tail_ids, attention_mask=batch.tail_mask(),
                                      position_ids=positions, use_cache=False, logits_to_keep=logits_to_keep)
                if logits is not None:
                    return logits
            cache = prefix.expanded(input_ids.shape[0]) if prefix is not None else None
            return model(input_ids=tail_ids, attention_mask=attention, position_ids=positions,
                         past_key_values=cache, logits_to_keep=logits_to_keep).logits

    def _one_token(self, model: Any, input_ids: Any, attention: Any, top_k: int,
                   prefix: SharedPrefix | None = None) -> list[list[GeneratedOutput]]:
        """One greedy token: a forward pass over what is not shared, projecting only the last
        position to the vocabulary."""
        import torch

        logits = self._forward(model, input_ids, attention, prefix, 1)[:, -1, :]
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        outputs = []
        eos_ids = _eos_ids(model, self.tokenizer)
        for row in range(logprobs.shape[0]):
            token_id = int(torch.argmax(logprobs[row]))
            token = self._token(token_id, logprobs[row], top_k)
            # An end-of-turn token is where the answer stops, not part of it (as in generation).
            ended = token_id in eos_ids
            text = "" if ended else self._clean(token.text)
            outputs.append([GeneratedOutput(text=text, logprob=token.logprob, tokens=[] if ended else [token],
                                            finish_reason={"reason": "endoftext" if ended else "length"})])
        return outputs

    def _generate(self, model: Any, tokenizer: Any, input_ids: Any, attention: Any, request: Request,
                  pad_id: int, cache: Any = None) -> list[list[GeneratedOutput]]:
        import torch

        greedy = request.temperature == 0
        kwargs: dict[str, Any] = {
            "max_new_tokens": request.max_tokens,
            "do_sample": not greedy,
            "num_return_sequences": request.num_completions,
            "return_dict_in_generate": True,
            "output_logits": True,
            "pad_token_id": pad_id,
        }
        if not greedy:
            kwargs.update(temperature=request.temperature, top_p=request.top_p)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if request.stop_sequences:
            kwargs.update(stopping_criteria=self._stop_criteria(request.stop_sequences))
        with torch.inference_mode():
            output = model.generate(input_ids=input_ids, attention_mask=attention, past_key_values=cache, **kwargs)
        new_tokens = output.sequences[:, input_ids.shape[1]:]
        step_logprobs = torch.stack([torch.log_softmax(s.float(), dim=-1) for s in output.logits], dim=1)
        eos_ids = _eos_ids(model, tokenizer)
        per_request: list[list[GeneratedOutput]] = []
        for row in range(new_tokens.shape[0]):
            ids: list[int] = []
            tokens: list[Token] = []
            ended = False
            for step in range(new_tokens.shape[1]):
                token_id = int(new_tokens[row, step])
                if token_id in eos_ids:
                    ended = True
                    break
                ids.append(token_id)
                tokens.append(self._token(token_id, step_logprobs[row, step], request.top_k_per_token,
                                          chosen=token_id))
            if row % request.num_completions == 0:
                per_request.append([])
            per_request[-1].append(self._completion(ids, tokens, ended, request))
        return per_request

    def _completion(self, ids: list[int], tokens: list[Token], ended: bool, request: Request) -> GeneratedOutput:
        """A generated text cut at the first stop sequence, with the tokens that made it."""
        reason = "endoftext" if ended else "length"
        text, hit = truncate_at_stop(self.tokenizer.decode(ids, skip_special_tokens=True), request.stop_sequences)
        if hit is not None:
            reason = "stop"
            tokens = _tokens_within(tokens, text)
        return GeneratedOutput(text=self._clean(text), logprob=sum(t.logprob for t in tokens), tokens=tokens,
                               finish_reason={"reason": reason})

    def _greedy_over_prefix(self, model: Any, input_ids: Any, attention: Any, request: Request,
                            prefix: SharedPrefix) -> list[list[GeneratedOutput]] | None:
        """Greedy decoding where every row attends to the one stored prefix.

        Each row's cache holds only its own tokens, so a decoding step reads the prefix once
        for the batch instead of copying it per row (and per attention head). None when the
        model turns out not to support it; the caller then decodes with a copied cache.
        """
        import torch
        from transformers import DynamicCache

        assert prefix.attention is not None
        start = len(prefix.ids)
        step_ids, valid = input_ids[:, start:], attention[:, start:].bool()
        rows = step_ids.shape[0]
        positions = start + (valid.long().cumsum(-1) - 1).clamp(min=0)
        batch = prefix.attention.batch(valid)
        mask = batch.tail_mask()
        cache = DynamicCache()
        eos_ids = _eos_ids(model, self.tokenizer)
        ids: list[list[int]] = [[] for _ in range(rows)]
        tokens: list[list[Token]] = [[] for _ in range(rows)]
        ended, running = [False] * rows, [True] * rows
        longest_stop = max((len(stop) for stop in request.stop_sequences), default=0)
        with torch.inference_mode():
            for _ in range(request.max_tokens):
                batch = prefix.attention.batch(valid)
                logits = _over_prefix(model, batch, input_ids=step_ids, attention_mask=mask, position_ids=positions,
                                      past_key_values=cache, use_cache=True, logits_to_keep=1)
                if logits is None:
                    return None
                logprobs = torch.log_softmax(logits[:, -1].float(), dim=-1)
                chosen = torch.argmax(logprobs, dim=-1)
                for row in range(rows):
                    if not running[row]:
                        continue
                    token_id = int(chosen[row])
                    if token_id in eos_ids:
                        ended[row], running[row] = True, False
                        continue
                    ids[row].append(token_id)
                    tokens[row].append(self._token(token_id, logprobs[row], request.top_k_per_token, chosen=token_id))
                    if longest_stop and _stopped(self.tokenizer, ids[row], request.stop_sequences, longest_stop):
                        running[row] = False
                if not any(running):
                    break
                valid = torch.cat([valid, torch.ones((rows, 1), dtype=torch.bool, device=valid.device)], dim=1)
                mask = valid[:, None, None, :]
                positions = positions[:, -1:] + 1
                step_ids = chosen[:, None]
        return [[self._completion(ids[row], tokens[row], ended[row], request)] for row in range(rows)]

    def _score_prompts(self, model: Any, input_ids: Any, attention: Any, encoded: list[list[int]], top_k: int,
                       prefix: SharedPrefix | None = None) -> list[list[GeneratedOutput]]:
        """Log-probabilities of the prompt's own tokens (``echo_prompt`` with 0 new tokens)."""
        import torch

        start = len(prefix.ids) if prefix is not None else 0
        logits = self._forward(model, input_ids, attention, prefix, 0)
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        width = input_ids.shape[1] - start
        outputs = []
        for row, ids in enumerate(encoded):
            first_column = width - (len(ids) - start)  # where ids[start] sits in this row's logits
            tokens = [Token(text=self.tokenizer.decode([ids[0]]), logprob=0.0)]
            for pos in range(1, len(ids)):
                before = pos - 1  # the position whose logits predict ids[pos]
                if before < start:
                    assert prefix is not None
                    dist = prefix.logprobs[before]
                else:
                    dist = logprobs[row, first_column + before - start]
                tokens.append(self._token(ids[pos], dist, top_k, chosen=ids[pos]))
            text = self.tokenizer.decode(ids)
            outputs.append([GeneratedOutput(text=text, logprob=sum(t.logprob for t in tokens), tokens=tokens,
                                            finish_reason={"reason": "length"})])
        return outputs

    def _stop_criteria(self, stops: tuple[str, ...]) -> Any:
        """Stop-string criteria, built once per set of stop strings (building one walks the
        whole vocabulary, about half a second)."""
        if stops not in self._stops:
            from transformers import StoppingCriteriaList, StopStringCriteria

            self._stops[stops] = StoppingCriteriaList([StopStringCriteria(self.tokenizer, list(stops))])
        return self._stops[stops]

    def _token(self, token_id: int, logprobs: Any, top_k: int, chosen: int | None = None) -> Token:
        import torch

        tokenizer = self.tokenizer
        top: dict[str, float] = {}
        if top_k > 1:
            values, ids = torch.topk(logprobs, top_k)
            top = {tokenizer.decode([int(i)]): float(v) for v, i in zip(values, ids)}
        chosen_id = token_id if chosen is None else chosen
        return Token(text=tokenizer.decode([chosen_id]), logprob=float(logprobs[chosen_id]), top_logprobs=top)

    def _clean(self, text: str) -> str:
        """clembench's output clean-up: cull the end-of-sequence pattern, split on a prefix."""
        if self.eos_to_cull is not None:
            text = self.eos_to_cull.sub("", text)
        if self.output_split_prefix and self.output_split_prefix in text:
            text = text.rsplit(self.output_split_prefix, 1)[1]
        return text


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
_PLAIN_GENERATION_KEYS = {"bos_token_id", "eos_token_id", "pad_token_id", "transformers_version", "do_sample",
                          "temperature", "top_p", "top_k", "max_length", "max_new_tokens", "_from_model_config",
                          "use_cache", "output_attentions", "output_hidden_states", "output_scores", "output_logits",
                          "return_dict_in_generate"}


def _greedy_over_prefix_possible(model: Any, prefix: SharedPrefix, request: Request) -> bool:
    """Our own greedy loop applies: one greedy completion, a stored prefix, the shared-prefix
    attention on, and no generation setting of the model that changes the argmax."""
    if request.temperature != 0 or request.num_completions != 1 or prefix.attention is None:
        return False
    config = getattr(model, "generation_config", None)
    changes = set(config.to_diff_dict()) if config is not None else set()
    return changes <= _PLAIN_GENERATION_KEYS and _prefix_attention_on(model)


def _stopped(tokenizer: Any, ids: list[int], stops: tuple[str, ...], longest: int) -> bool:
    """Whether the text's end contains a stop sequence (only the last few tokens are decoded)."""
    tail = tokenizer.decode(ids[-(longest + 4):], skip_special_tokens=True)
    return any(stop in tail for stop in stops)


def _single_pass(request: Request) -> bool:
    """Answered by one forward pass: one greedy token, or the prompt's own log-probabilities."""
    one_token = request.max_tokens == 1 and request.temperature == 0 and request.num_completions == 1
    return one_token or (request.echo_prompt and request.max_tokens == 0)


def _over_prefix(model: Any, batch: prefix_attention.PrefixBatch, **inputs: Any) -> Any | None:
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


def _prefix_attention_on(model: Any) -> bool:
    """Whether the model runs the shared-prefix attention (switched on at first use)."""
    if getattr(model, "_llmeval_prefix_attention", None) is None:
        model._llmeval_prefix_attention = prefix_attention.enable(model)
    return bool(model._llmeval_prefix_attention)


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


def merge_same_role(messages: Sequence[Message]) -> list[Message]:
    """Join consecutive messages of one role, as clembench does, so roles alternate."""
    merged: list[Message] = []
    for message in messages:
        if merged and merged[-1].role == message.role:
            merged[-1] = Message(message.role, merged[-1].content + "\n\n" + message.content)
        else:
            merged.append(message)
    return merged


def _positions(attention: Any) -> Any:
    """Position ids that start at 0 on each row's first real token (rows are left-padded)."""
    return (attention.cumsum(-1) - 1).clamp(min=0)


def _tokens_within(tokens: list[Token], text: str) -> list[Token]:
    """Keep the tokens whose text fits in the stop-truncated completion."""
    kept, length = [], 0
    for token in tokens:
        if length >= len(text):
            break
        kept.append(token)
        length += len(token.text)
    return kept


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids: set[int] = set()
    for value in (getattr(model.generation_config, "eos_token_id", None), tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list):
            ids.update(value)
    return ids


def _gpu_driver_present() -> bool:
    """False only where no GPU can be in use: Linux with neither an NVIDIA nor a ROCm driver."""
    if sys.platform != "linux":
        return True
    return any(Path(p).exists() for p in ("/proc/driver/nvidia/version", "/dev/nvidia0", "/dev/kfd"))


def _quantization_config(spec: str | dict[str, Any]) -> Any:
    import transformers

    if isinstance(spec, dict):
        return transformers.BitsAndBytesConfig(**spec)
    if spec in ("8bit", "int8"):
        return transformers.BitsAndBytesConfig(load_in_8bit=True)
    if spec in ("4bit", "int4", "nf4"):
        return transformers.BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4")
    raise ConfigError(f"unknown quantization {spec!r}; use 8bit, 4bit or a BitsAndBytesConfig mapping",
                      field="client_spec.args.quantization")


def _is_oom(exc: Exception) -> bool:
    return "out of memory" in str(exc).lower()


def _free_accelerator_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


_THREADS_SET = False


def _limit_threads() -> None:
    """Split the cores between xdist workers so they do not oversubscribe the CPU."""
    global _THREADS_SET
    if _THREADS_SET:
        return
    _THREADS_SET = True
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


class HuggingFaceTokenizer:
    """A tokenizer-only handle (HELM's tokenizer_spec); loads no weights."""

    def __init__(self, pretrained_model_name_or_path: str, *, gguf_file: str | None = None,
                 revision: str | None = None, slow_tokenizer: bool = False, trust_remote_code: bool = False,
                 **_: Any) -> None:
        self.source = hf_loading.resolve_source(pretrained_model_name_or_path, gguf_file, revision)
        self.slow = slow_tokenizer
        self.trust_remote_code = trust_remote_code

    def load(self) -> Any:
        return hf_loading.load_tokenizer(self.source, slow=self.slow, trust_remote_code=self.trust_remote_code)

    def counter(self) -> Any:
        return hf_loading.load_token_counter(self.source, slow=self.slow, trust_remote_code=self.trust_remote_code)
