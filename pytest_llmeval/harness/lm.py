"""Our clients as lm-eval's model: lm-eval's ``TemplateLM`` interface over the client protocol.

lm-eval hands a model every request of a run at once. :class:`ClientLM` turns them into our
requests and sends them through the session's client in one stream, so the client batches
them, computes shared prefixes once (a document's choices share its context, documents share
the few-shot examples), and the cache answers what an earlier run already asked.

Token splits are lm-eval's own (``TemplateLM._encode_pair``, its empty-context and rolling
window rules), on the deployment's tokenizer: a log-likelihood request is the context and
continuation as one verbatim prompt whose own token log-probabilities come back
(``echo_prompt`` with no new tokens); the continuation is its last tokens.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

from lm_eval.api.model import TemplateLM
from lm_eval.models.utils import (
    _add_special_kwargs,
    handle_stop_sequences,
    has_bos_prefix,
    normalize_gen_kwargs,
    postprocess_generated_text,
)
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

from pytest_llmeval.clients.protocol import Client, stream
from pytest_llmeval.errors import ClientError
from pytest_llmeval.harness.outcome import Exchange, Ledger
from pytest_llmeval.requests import Message, Request, RequestResult

DEFAULT_MAX_LENGTH = 2048  # lm-eval's HFLM default when the model names no length
DEFAULT_MAX_GEN_TOKS = 256  # lm-eval's HFLM default
# Two alternatives per token: enough to tell whether the continuation was the greedy one.
GREEDY_TOP_K = 2

Progress = Callable[[int, int], None]


class ClientLM(TemplateLM):
    """lm-eval's model interface, answered by one of our clients (see the module)."""

    def __init__(self, client: Client, deployment: str, model: str, tokenizer: Any, *,
                 max_length: int | None = None, progress: Progress | None = None, ledger: Ledger | None = None,
                 add_bos_token: bool | None = None) -> None:
        super().__init__()
        self.client = client
        self.deployment = deployment
        self.model_name = model
        self.tokenizer = tokenizer
        self._max_length = max_length or DEFAULT_MAX_LENGTH
        self.progress = progress
        self.ledger = ledger if ledger is not None else Ledger()
        self.add_bos_token = add_bos_token
        # A chat endpoint takes messages, never raw text: chats go to it as messages (as lm-eval's
        # local-chat-completions sends them) and log-likelihoods cannot be asked.
        self.messages_only = not client.capabilities().raw_prompts

    # --- lm-eval's tokenization (HFLM's rules) -------------------------------------------

    @property
    def eot_token_id(self) -> int:
        return int(self._require_tokenizer().eos_token_id)

    @property
    def prefix_token_id(self) -> int:
        tokenizer = self._require_tokenizer()
        return int(tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id)

    @property
    def max_length(self) -> int:
        return self._max_length

    @property
    def tokenizer_name(self) -> str:
        name = getattr(self.tokenizer, "name_or_path", None) or self.deployment
        return str(name).replace("/", "__")

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kwargs: Any) -> list[int]:
        tokenizer = self._require_tokenizer()
        special = _add_special_kwargs(add_special_tokens, self.add_bos_token)
        if add_special_tokens is None and has_bos_prefix(string, tokenizer.decode(self.prefix_token_id)):
            special["add_special_tokens"] = False
        return list(tokenizer.encode(string, **special))

    def _require_tokenizer(self) -> Any:
        if self.tokenizer is None:
            raise ClientError(f"deployment {self.deployment!r} has no tokenizer: lm-eval's log-likelihood "
                              f"requests need one (set tokenizer_name in its model deployment)")
        return self.tokenizer

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """The chat through the tokenizer's template, as HFLM renders it; without a local
        tokenizer, the messages as JSON for a chat endpoint (as lm-eval's API models do)."""
        if self.tokenizer is None or self.messages_only:
            return json.dumps(chat_history, ensure_ascii=False)
        import jinja2

        options = {"tokenize": False, "add_generation_prompt": add_generation_prompt,
                   "continue_final_message": not add_generation_prompt}
        try:
            return str(self.tokenizer.apply_chat_template(chat_history, **options))
        except jinja2.exceptions.TemplateError:  # HFLM's fallback: no system turn
            chat = [m for m in chat_history if m["role"] != "system"]
            return str(self.tokenizer.apply_chat_template(chat, **options))

    # --- the three request kinds ----------------------------------------------------------

    def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        self._current = requests  # _loglikelihood_tokens gets lm-eval's pairs in the same order
        return list(super().loglikelihood(requests, disable_tqdm=True))

    def _loglikelihood_tokens(self, requests: list[Any], **kwargs: Any) -> list[tuple[float, bool]]:
        if self.messages_only:
            raise ClientError(f"{self.deployment} is a chat endpoint: it cannot score text, so lm-eval's "
                              f"log-likelihood tasks need a completions endpoint (api: completions) or a local model")
        instances = getattr(self, "_current", None) or [None] * len(requests)
        self._current = []
        sent = [self._scoring_request(context_enc, continuation_enc, pair)
                for pair, context_enc, continuation_enc in requests]
        results = self._send("loglikelihood", instances, sent)
        return [self._scored(result, len(cont), req) for result, (_, _, cont), req in zip(results, requests, sent)]

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        windows: list[tuple[int, list[int], list[int]]] = []
        for n, request in enumerate(requests):
            (string,) = request.args
            for context, continuation in map(make_disjoint_window, get_rolling_token_windows(
                    token_list=self.tok_encode(string), prefix_token=self.prefix_token_id,
                    max_seq_len=self.max_length, context_len=1)):
                windows.append((n, context, continuation))
        sent = [self._window_request(context, continuation) for _, context, continuation in windows]
        results = self._send("loglikelihood_rolling", [requests[n] for n, _, _ in windows], sent)
        totals = [0.0] * len(requests)
        for (n, _, continuation), result, request in zip(windows, results, sent):
            totals[n] += self._scored(result, len(continuation), request)[0]
        return totals

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        eos = self.tokenizer.decode([self.eot_token_id], skip_special_tokens=False) if self.tokenizer else None
        sent, stops = [], []
        for request in requests:
            context, gen_kwargs = request.args
            options = normalize_gen_kwargs(dict(gen_kwargs), DEFAULT_MAX_GEN_TOKS)
            until = handle_stop_sequences(options.pop("until", None), eos=eos)
            stops.append(until)
            sent.append(self._generation_request(context, options, until))
        results = self._send("generate_until", requests, sent)
        return [postprocess_generated_text(result.text, until, None) for result, until in zip(results, stops)]

    # --- our requests ---------------------------------------------------------------------

    def _base(self) -> dict[str, Any]:
        return {"model_deployment": self.deployment, "model": self.model_name, "verbatim": True}

    def _scoring_request(self, context_enc: list[int], continuation_enc: list[int], pair: tuple[str, str]) -> Request:
        context, continuation = pair
        if context:  # _encode_pair's ids are the tokens of context + continuation as one text
            text = context + continuation
        else:  # lm-eval's empty context: the prefix token, then the continuation's tokens
            text = self.tokenizer.decode(context_enc + continuation_enc, skip_special_tokens=False)
        return self._checked(Request(prompt=text, echo_prompt=True, max_tokens=0, top_k_per_token=GREEDY_TOP_K,
                                     **self._base()), context_enc + continuation_enc)

    def _window_request(self, context: list[int], continuation: list[int]) -> Request:
        text = self.tokenizer.decode(context + continuation, skip_special_tokens=False)
        return self._checked(Request(prompt=text, echo_prompt=True, max_tokens=0, top_k_per_token=GREEDY_TOP_K,
                                     **self._base()), context + continuation)

    def _checked(self, request: Request, ids: list[int]) -> Request:
        """The request, if the model will see exactly lm-eval's tokens (a window whose text
        tokenizes otherwise, or one longer than the model, cannot be scored exactly)."""
        if len(ids) > self.max_length + 1:
            raise ClientError(f"{self.deployment}: a request of {len(ids)} tokens is longer than the model's "
                              f"{self.max_length}; lm-eval would cut its context, which is not done here")
        plain = list(self.tokenizer.encode(request.prompt, add_special_tokens=False))
        if plain != ids and plain == ids[1:]:  # lm-eval's tokenizer added a BOS token: send it as text
            request = dataclasses.replace(request, prompt=self.tokenizer.decode(ids[:1], skip_special_tokens=False)
                                          + request.prompt)
            plain = list(self.tokenizer.encode(request.prompt, add_special_tokens=False))
        if plain != ids:
            raise ClientError(f"{self.deployment}: the text of a scored request does not tokenize back to "
                              f"lm-eval's tokens: {request.prompt[:80]!r}")
        return request

    def _generation_request(self, context: str, options: dict[str, Any], until: list[str]) -> Request:
        max_tokens = int(options.pop("max_gen_toks", DEFAULT_MAX_GEN_TOKS))
        sampling = bool(options.pop("do_sample", False))
        temperature = float(options.pop("temperature", 0.0)) if sampling else 0.0
        top_p = options.pop("top_p", None)
        top_p = 1.0 if top_p is None else float(top_p)
        base = self._base()
        if (self.tokenizer is None or self.messages_only) and context.startswith("["):  # apply_chat_template's JSON
            try:
                messages = tuple(Message(m["role"], m["content"]) for m in json.loads(context))
            except (ValueError, KeyError, TypeError):
                messages = None
            if messages is not None:
                base["verbatim"] = False
                return Request(messages=messages, max_tokens=max_tokens, temperature=temperature, top_p=top_p,
                               stop_sequences=tuple(until), **base)
        if self.messages_only:
            raise ClientError(f"{self.deployment} is a chat endpoint, which takes messages only: run lm-eval "
                              f"tasks on it with apply_chat_template=true (as lm_eval's local-chat-completions)")
        return Request(prompt=context, max_tokens=max_tokens, temperature=temperature, top_p=top_p,
                       stop_sequences=tuple(until), **base)

    def _send(self, kind: str, instances: list[Any], requests: list[Request]) -> list[RequestResult]:
        """All requests through the client in one stream; each batch counted as it finishes."""
        ledger = self.ledger
        exchanges = [Exchange(kind, instance, request) for instance, request in zip(instances, requests)]
        ledger.exchanges.extend(exchanges)
        done = 0
        for indices, answers in stream(self.client, requests):
            for i, answer in zip(indices, answers):
                exchanges[i].result = answer
                ledger.cache_hits += int(answer.cached)
            done += len(indices)
            ledger.requests += len(indices)
            if self.progress is not None:
                self.progress(done, len(requests))
        failed = [e for e in exchanges if e.result is None or not e.result.success]
        if failed:
            ledger.failures.extend(f"{_doc_label(e.instance)}: {e.result.error if e.result else 'no answer'}"
                                   for e in failed)
            first = ledger.failures[-len(failed)]
            raise ClientError(f"{len(failed)} of {len(requests)} {kind} requests failed; first: {first}")
        return [e.result for e in exchanges if e.result is not None]

    def _scored(self, result: RequestResult, count: int, request: Request) -> tuple[float, bool]:
        """(log-likelihood, greedy) of the last ``count`` prompt tokens."""
        tokens = result.completions[0].tokens if result.completions else []
        if len(tokens) < count or count == 0:
            raise ClientError(f"{self.deployment}: {len(tokens)} prompt tokens came back for a request whose "
                              f"continuation has {count}: {request.prompt[:80]!r}")
        scored = tokens[len(tokens) - count:]
        greedy = all(bool(t.top_logprobs) and t.logprob >= max(t.top_logprobs.values()) for t in scored)
        return float(sum(t.logprob for t in scored)), greedy


def _doc_label(instance: Any) -> str:
    if instance is None:
        return "request"
    return f"doc {getattr(instance, 'doc_id', '?')}"
