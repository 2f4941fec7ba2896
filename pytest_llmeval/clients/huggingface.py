"""A local Hugging Face (transformers) client: batched, greedy at temperature 0.

Arguments follow HELM's client (``pretrained_model_name_or_path``, ``revision``,
``torch_dtype``, ``device``, ``device_map``, ``quantization``, ``trust_remote_code``,
``attn_implementation``) and
clembench's chat options (``premade_chat_template``, ``custom_chat_template``,
``eos_to_cull``, ``output_split_prefix``, ``slow_tokenizer``).

The client ties four parts together: batch planning (:mod:`hf_planning`, pure Python), chat
rendering (:mod:`hf_chat`, shared with ``llmeval-check-model``), decoding with torch
(:mod:`hf_decoding`, over a shared prefix from :mod:`hf_prefix`) and the device and
out-of-memory handling (:mod:`accelerators`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from typing import Any

from pytest_llmeval.clients import accelerators, hf_chat, hf_contexts, hf_helm, hf_loading, hf_planning
from pytest_llmeval.clients.hf_decoding import TorchDecoding
from pytest_llmeval.clients.hf_prefix import SharedPrefix
from pytest_llmeval.clients.protocol import Capabilities, ClientBase, Finished, collect
from pytest_llmeval.errors import ConfigError
from pytest_llmeval.requests import GeneratedOutput, Request, RequestResult

_DTYPES = ("float32", "float16", "bfloat16")
# The most memory one CPU batch's attention scores may take in a forward pass (see _max_cells).
CPU_ATTENTION_BYTES = 2 * 1024**3


class HuggingFaceClient(TorchDecoding, ClientBase):
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
        attn_implementation: str | None = None,
        apply_chat_template: bool | None = None,
        premade_chat_template: bool | None = None,
        custom_chat_template: str | None = None,
        eos_to_cull: str | None = None,
        output_split_prefix: str | None = None,
        slow_tokenizer: bool = False,
        batch_size: int | None = None,
        max_padding_ratio: float = 0.25,
        min_shared_prefix: int = 32,
        answers: str = "llmeval",
        end_of_text_token: str | None = None,
        **unknown: Any,
    ) -> None:
        if unknown:
            raise ConfigError(f"unknown Hugging Face client argument(s): {', '.join(sorted(unknown))}",
                              field="client_spec.args")
        if torch_dtype is not None and torch_dtype.removeprefix("torch.") not in (*_DTYPES, "auto"):
            raise ConfigError(f"unknown dtype {torch_dtype!r}; use one of {', '.join(_DTYPES)} or auto",
                              field="client_spec.args.torch_dtype")
        if answers not in hf_helm.ANSWERS:
            raise ConfigError(f"unknown answers {answers!r}; use one of {', '.join(hf_helm.ANSWERS)}",
                              field="client_spec.args.answers")
        # "helm": HELM's HuggingFaceClient's answer rules (log-probabilities at its temperature,
        # its stopping and truncation, no finish reason), see hf_helm.
        self.answers = answers
        self.end_of_text_token = end_of_text_token  # HELM's truncation token (default: the tokenizer's eos)
        self.source = hf_loading.resolve_source(pretrained_model_name_or_path, gguf_file, revision)
        self.torch_dtype = torch_dtype.removeprefix("torch.") if torch_dtype else None
        self.attn_implementation = attn_implementation  # transformers' choice of attention kernel
        self.device = device
        self.device_map = device_map
        self.quantization = quantization
        self.trust_remote_code = trust_remote_code
        # clembench's premade_chat_template=False means "do not use the tokenizer's template".
        self.apply_chat_template = apply_chat_template if premade_chat_template is None else (
            premade_chat_template or custom_chat_template is not None)
        self.custom_chat_template = custom_chat_template
        if end_of_text_token and not eos_to_cull and answers != hf_helm.HELM:
            eos_to_cull = re.escape(end_of_text_token) + r"[\s\S]*"  # the completion ends there
        self.eos_to_cull = re.compile(eos_to_cull) if eos_to_cull else None
        self.output_split_prefix = output_split_prefix
        self.slow_tokenizer = slow_tokenizer
        self._batch_size = batch_size
        self.max_padding_ratio = max_padding_ratio
        # Requests sharing at least this many leading tokens compute them once (0: never).
        self.min_shared_prefix = min_shared_prefix
        self._prefixes: dict[tuple[Any, ...], SharedPrefix] = {}
        self._stops: dict[tuple[str, ...], Any] = {}
        # Loads are counted from here on, so a session reports its own and not its process's.
        self._loads_before = hf_loading.load_count(self.source)


    # --- identity, capabilities and loading -----------------------------------------------------

    def identity(self) -> dict[str, Any]:
        identity = hf_loading.weights_identity(self.source)
        if self.half_on_cpu:  # other answers than the plain half-precision model gives
            identity.update(logits="float32")
        identity.update(dtype=self.effective_dtype, quantization=self.quantization,
                        chat_template=self.apply_chat_template, custom_chat_template=self.custom_chat_template,
                        eos_to_cull=self.eos_to_cull.pattern if self.eos_to_cull else None,
                        output_split_prefix=self.output_split_prefix)
        if self.helm_answers:  # different answers, so a different cache identity
            identity.update(answers=self.answers, end_of_text_token=self.end_of_text_token)
        return identity

    def capabilities(self) -> Capabilities:
        return Capabilities(prompt_logprobs=True, local_tokenizer=True, loads_weights=True)

    def prompt_tokenizer(self, counting: bool = False) -> Any:
        return self.token_counter if counting else self.tokenizer

    def count_prompt_tokens(self, request: Request) -> int:
        return len(self.tokenizer(self.render(request), add_special_tokens=False)["input_ids"])

    def model_loads(self) -> int:
        return hf_loading.load_count(self.source) - self._loads_before

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
        return hf_loading.load_model(self.source, self._model_kwargs(), self._device(), half_on_cpu=self.half_on_cpu)

    def _device(self) -> str:
        return self.device or accelerators.default_device()

    @property
    def effective_dtype(self) -> str:
        """The dtype the weights run in: as configured, else bf16 on a GPU and fp32 on a CPU."""
        if self.torch_dtype:
            return self.torch_dtype
        return "bfloat16" if self._device().startswith("cuda") else "float32"

    @property
    def half_on_cpu(self) -> bool:
        """Half-precision weights on a CPU: they project to the vocabulary in fp32, so the answers
        keep fp32's order (see :func:`hf_loading.project_in_float32`; an accelerator keeps its
        memory for the weights), and a CPU without the units for them warns."""
        return self.effective_dtype in ("bfloat16", "float16") and self.device_map is None \
            and self._device().startswith("cpu")

    def _model_kwargs(self) -> dict[str, Any]:
        import torch

        kwargs: dict[str, Any] = {"trust_remote_code": self.trust_remote_code}
        dtype = self.effective_dtype
        kwargs["dtype"] = "auto" if dtype == "auto" else getattr(torch, dtype)
        if self.device_map is not None:
            kwargs["device_map"] = self.device_map
        if self.quantization:
            kwargs["quantization_config"] = _quantization_config(self.quantization)
        if self.attn_implementation:
            kwargs["attn_implementation"] = self.attn_implementation
        return kwargs

    @property
    def batch_hint(self) -> int:  # type: ignore[override]  # a read-only property over ClientBase's default
        return self.batch_size * 4

    @property
    def batch_size(self) -> int:
        if self._batch_size:
            return self._batch_size
        return 16 if self._device().startswith("cuda") else 8

    # --- prompts ------------------------------------------------------------------------------

    def render(self, request: Request) -> str:
        """The exact text the model sees (see :func:`hf_chat.render_prompt`)."""
        return hf_chat.render_prompt(self.tokenizer, request, self.custom_chat_template, self.apply_chat_template)

    def stop_token_ids(self) -> set[int]:
        """The token ids generation stops at, read without loading the weights."""
        return hf_chat.stop_token_ids(self.tokenizer, hf_loading.load_generation_config(self.source))

    def _clean(self, text: str) -> str:
        """clembench's output clean-up: cull the end-of-sequence pattern, split on a prefix."""
        if self.eos_to_cull is not None:
            text = self.eos_to_cull.sub("", text)
        if self.output_split_prefix and self.output_split_prefix in text:
            text = text.rsplit(self.output_split_prefix, 1)[1]
        return text

    # --- generation ---------------------------------------------------------------------------

    def generate(self, requests: Sequence[Request]) -> list[RequestResult]:
        return collect(self.generate_stream(requests), len(requests))

    def generate_stream(self, requests: Sequence[Request]) -> Iterator[Finished]:
        """Plan batches over every request, run them, and hand back each batch when done."""
        return self._planned(requests, self.batch_size)

    def generate_together(self, requests: Sequence[Request]) -> Iterator[Finished]:
        """One turn of conversations side by side: generated as one batch (bounded only by the
        attention-score budget), since a decoding step costs about as much for many rows as for
        one and the turn's slowest reply sets its time anyway."""
        return self._planned(requests, max(self.batch_size, len(requests)))

    def _planned(self, requests: Sequence[Request], generation_batch: int) -> Iterator[Finished]:
        """The batches of :meth:`generate_stream`, generation at most ``generation_batch`` rows."""
        accelerators.limit_threads()
        tokenizer = self.tokenizer
        texts = [self.render(r) for r in requests]
        encoded: list[list[int]] = list(tokenizer(texts, add_special_tokens=False)["input_ids"]) if texts else []
        for indices in hf_planning.decoding_groups(requests):
            first = requests[indices[0]]
            planned = hf_planning.prefix_groups(indices, encoded, self.min_shared_prefix)
            if first.echo_prompt and first.max_tokens == 0 and self._contexts_on():
                # Long prefixes many requests share keep their own pass; short contexts a few
                # requests share (a document's choices) are scored many documents per batch.
                alone = sorted(i for length, members in planned
                               if not (length and len(members) > hf_contexts.MAX_ROWS // 2) for i in members)
                planned = [(length, members) for length, members in planned
                           if length and len(members) > hf_contexts.MAX_ROWS // 2]
                yield from self._score_contexts(alone, requests, encoded, texts)
            for prefix_len, members in planned:
                started = time.perf_counter()
                prefix = self._prefix(encoded[members[0]][:prefix_len], first) if prefix_len else None
                shared_time = (time.perf_counter() - started) / len(members)  # each request's share
                members.sort(key=lambda i: len(encoded[i]))
                # Decoding steps cost the same for one row as for a batch, so generation batches
                # by count; one forward pass (answers, scoring) keeps padding bounded.
                one_pass = hf_planning.single_pass(first)
                padding = self.max_padding_ratio if one_pass else 1.0
                size = self.batch_size if one_pass else min(generation_batch, self._batch_size or generation_batch)
                for batch in self._batches(members, encoded, prefix_len, padding, size):
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

    def _contexts_on(self) -> bool:
        """Batched contexts go with prefix sharing (``min_shared_prefix: 0`` turns both off); HELM's
        answer rules keep the one-prefix-per-pass path they were checked on."""
        return self.min_shared_prefix > 0 and not self.helm_answers

    def _score_contexts(self, indices: list[int], requests: Sequence[Request], encoded: list[list[int]],
                        texts: list[str]) -> Iterator[Finished]:
        """Score ``indices`` a batch of shared contexts at a time (see :mod:`hf_contexts`)."""
        tokenizer = self.tokenizer
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        groups = hf_contexts.context_groups([i for i in indices if len(encoded[i]) > 1], encoded)
        single = [i for i in indices if len(encoded[i]) <= 1]
        if single:  # one token: nothing to share, the usual pass scores it
            yield from self._score_plain(single, requests, encoded, texts)
        top_k = requests[indices[0]].top_k_per_token if indices else 1
        finish = None if self.helm_answers else {"reason": "length"}
        for batch in hf_contexts.batches_of_groups(groups):
            started = time.perf_counter()
            outputs = hf_contexts.score_batch(self.model, batch, encoded, top_k, pad_id, self._piece,
                                              tokenizer.decode, finish)
            members = [i for _, group in batch for i in group]
            elapsed = (time.perf_counter() - started) / len(members)
            yield members, [self._result(outputs[i], texts[i], len(encoded[i]), elapsed, batch_prefix=0)
                            for i in members]

    def _score_plain(self, indices: list[int], requests: Sequence[Request], encoded: list[list[int]],
                     texts: list[str]) -> Iterator[Finished]:
        for batch in self._batches(sorted(indices, key=lambda i: len(encoded[i])), encoded):
            started = time.perf_counter()
            outputs = self._run_with_backoff(batch, requests, encoded, None)
            elapsed = (time.perf_counter() - started) / len(batch)
            yield batch, [self._result(out[0], texts[i], len(encoded[i]), elapsed, batch_prefix=0)
                          for i, out in zip(batch, outputs)]

    @staticmethod
    def _result(output: GeneratedOutput, text: str, tokens: int, elapsed: float, batch_prefix: int) -> RequestResult:
        return RequestResult(success=True, completions=[output], request_time=elapsed,
                             request_datetime=int(time.time()), raw_request={"prompt": text},
                             raw_response={"completions": [output.finish_reason], "num_prompt_tokens": tokens,
                                           "shared_prefix_tokens": batch_prefix})

    def _run_with_backoff(self, batch: list[int], requests: Sequence[Request], encoded: list[list[int]],
                          prefix: SharedPrefix | None) -> list[list[GeneratedOutput]]:
        """Run a batch; on out-of-memory, halve it (and keep the smaller size) instead of failing."""
        def run(part: list[int]) -> list[list[GeneratedOutput]]:
            return self._run_batch([requests[i] for i in part], [encoded[i] for i in part], prefix)

        return accelerators.halving_on_oom(run, batch, self._shrink_batch)

    def _shrink_batch(self, size: int) -> None:
        self._batch_size = size

    def _batches(self, indices: list[int], encoded: list[list[int]], prefix_len: int = 0,
                 max_padding_ratio: float | None = None, size: int | None = None) -> list[list[int]]:
        """Length-sorted batches of at most ``size`` rows (the client's batch size, unless given)
        whose padding stays under ``max_padding_ratio`` (the client's, unless given)."""
        ratio = self.max_padding_ratio if max_padding_ratio is None else max_padding_ratio
        return hf_planning.batches(indices, encoded, size or self.batch_size, ratio, prefix_len, self._max_cells())

    def _max_cells(self) -> int | None:
        """On CPU a batch's first forward pass holds its attention scores and their softmax in
        full; this keeps them within :data:`CPU_ATTENTION_BYTES`, so a long prompt is not padded
        into a batch of short ones (accelerators run fused kernels: no bound)."""
        if not self._device().startswith("cpu"):
            return None
        heads = int(getattr(getattr(self.model, "config", None), "num_attention_heads", 0) or 32)
        return CPU_ATTENTION_BYTES // (heads * 4 * 2)


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
