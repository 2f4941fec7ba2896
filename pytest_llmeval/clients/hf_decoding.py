"""Decoding with torch for the local client: one forward pass, scoring, and generation, over
a shared prefix computed once.

The prefix and how it is attended to are :mod:`hf_prefix`'s. torch and transformers are
imported only inside the functions, so importing this module costs nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from pytest_llmeval.clients import hf_helm, hf_prefix
from pytest_llmeval.clients.hf_chat import stop_token_ids
from pytest_llmeval.clients.hf_planning import single_pass
from pytest_llmeval.clients.hf_prefix import PrefixKV, SharedPrefix
from pytest_llmeval.requests import GeneratedOutput, Request, Token, truncate_at_stop

log = logging.getLogger("pytest_llmeval.models")


class TorchDecoding:
    """The decoding half of the Hugging Face client: it supplies the model, the tokenizer,
    the output clean-up and the two small memories (prefixes, stop criteria)."""

    _prefixes: dict[tuple[Any, ...], SharedPrefix]
    _stops: dict[tuple[str, ...], Any]
    answers: str = "llmeval"  # "helm": HELM's client's answer rules (see :mod:`hf_helm`)
    end_of_text_token: str | None = None

    @property
    def helm_answers(self) -> bool:
        return self.answers == hf_helm.HELM

    @property
    def model(self) -> Any:
        raise NotImplementedError

    @property
    def tokenizer(self) -> Any:
        raise NotImplementedError

    def _clean(self, text: str) -> str:
        raise NotImplementedError

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
        if single_pass(first):
            return self._one_token(model, input_ids, attention, first.top_k_per_token, prefix, first)
        if prefix is not None and hf_prefix.greedy_over_prefix_possible(model, prefix, first):
            decoded = self._greedy_over_prefix(model, input_ids, attention, first, prefix, encoded)
            if decoded is not None:
                return decoded
        cache = prefix.expanded(len(tails)) if prefix is not None else None
        return self._generate(model, tokenizer, input_ids, attention, first, pad_id, cache, encoded)

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
            if prefix is not None and prefix.attention is not None and hf_prefix.prefix_attention_on(model):
                batch = prefix.attention.batch(attention[:, start:].bool())
                logits = hf_prefix.over_prefix(model, batch, input_ids=tail_ids, attention_mask=batch.tail_mask(),
                                               position_ids=positions, use_cache=False, logits_to_keep=logits_to_keep)
                if logits is not None:
                    return logits
            cache = prefix.expanded(input_ids.shape[0]) if prefix is not None else None
            return model(input_ids=tail_ids, attention_mask=attention, position_ids=positions,
                         past_key_values=cache, logits_to_keep=logits_to_keep).logits

    def _one_token(self, model: Any, input_ids: Any, attention: Any, top_k: int,
                   prefix: SharedPrefix | None = None, request: Request | None = None) -> list[list[GeneratedOutput]]:
        """One greedy token: a forward pass over what is not shared, projecting only the last
        position to the vocabulary."""
        import torch

        logits = self._forward(model, input_ids, attention, prefix, 1)[:, -1, :]
        if self.helm_answers and request is not None:
            helm = hf_helm.scaled_logprobs(logits, request.temperature)
            return [[self._helm_completion([int(torch.argmax(helm[row]))], [helm[row]], request)]
                    for row in range(helm.shape[0])]
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
                  pad_id: int, cache: Any = None,
                  encoded: list[list[int]] | None = None) -> list[list[GeneratedOutput]]:
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
        rule = self._helm_rule(model, request) if self.helm_answers else None
        if rule is not None:
            # HELM's stopping rule; sampled tokens' log-probabilities are read after the warpers.
            kwargs.update(output_scores=not greedy, eos_token_id=sorted(rule.end_ids))
            criteria = hf_helm.stopping_criteria(rule)
            if criteria is not None:
                kwargs.update(stopping_criteria=criteria)
        elif request.stop_sequences:
            kwargs.update(stopping_criteria=self._stop_criteria(request.stop_sequences))
        with torch.inference_mode():
            output = model.generate(input_ids=input_ids, attention_mask=attention, past_key_values=cache, **kwargs)
        new_tokens = output.sequences[:, input_ids.shape[1]:]
        if rule is not None:
            return self._helm_generated(new_tokens, output, request, rule, encoded or [])
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

    def _helm_rule(self, model: Any, request: Request) -> hf_helm.StopRule:
        return hf_helm.stop_rule(self.tokenizer, request.stop_sequences, _eos_ids(model, self.tokenizer))

    def _helm_generated(self, new_tokens: Any, output: Any, request: Request, rule: hf_helm.StopRule,
                        encoded: list[list[int]]) -> list[list[GeneratedOutput]]:
        """``generate``'s rows under HELM's rules: greedy tokens scored by the temperature-scaled
        logits, sampled ones by the scores after transformers' warpers (HELM's ``output.scores``)."""
        import torch

        if request.temperature == 0:
            steps = [hf_helm.scaled_logprobs(s, 0.0) for s in output.logits]
        else:
            steps = [torch.log_softmax(s.float(), dim=-1) for s in output.scores]
        per_request: list[list[GeneratedOutput]] = []
        for row in range(new_tokens.shape[0]):
            prompt = encoded[row // request.num_completions] if encoded else []
            ids = hf_helm.generated_ids(new_tokens[row].tolist(), rule, prompt)
            if row % request.num_completions == 0:
                per_request.append([])
            per_request[-1].append(self._helm_completion(ids, [steps[k][row] for k in range(len(ids))], request))
        return per_request

    def _helm_completion(self, ids: list[int], dists: list[Any], request: Request) -> GeneratedOutput:
        """HELM's completion of ``ids`` (each scored by its step's distribution): the text with
        special tokens, cut by HELM's ``truncate_sequence``; no finish reason."""
        tokens = [self._token(token_id, dist, request.top_k_per_token) for token_id, dist in zip(ids, dists)]
        end_of_text = self.end_of_text_token or getattr(self.tokenizer, "eos_token", None)
        out = hf_helm.truncate_sequence(self.tokenizer.decode(ids), tokens, request, end_of_text)
        out.text = self._clean(out.text)
        return out

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
                            prefix: SharedPrefix, encoded: list[list[int]] | None = None,
                            ) -> list[list[GeneratedOutput]] | None:
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
        rule = self._helm_rule(model, request) if self.helm_answers else None
        dists: list[list[Any]] = [[] for _ in range(rows)]
        with torch.inference_mode():
            for _ in range(request.max_tokens):
                batch = prefix.attention.batch(valid)
                logits = hf_prefix.over_prefix(model, batch, input_ids=step_ids, attention_mask=mask,
                                               position_ids=positions, past_key_values=cache, use_cache=True,
                                               logits_to_keep=1)
                if logits is None:
                    return None
                logprobs = torch.log_softmax(logits[:, -1].float(), dim=-1)
                chosen = torch.argmax(logprobs, dim=-1)
                if rule is not None:
                    helm = hf_helm.scaled_logprobs(logits[:, -1], 0.0)
                    for row in range(rows):
                        if running[row]:
                            ids[row].append(int(chosen[row]))
                            dists[row].append(helm[row])
                            running[row] = not rule.stops(ids[row], encoded[row] if encoded else ())
                for row in range(rows):
                    if not running[row] or rule is not None:
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
        if rule is not None:
            return [[self._helm_completion(ids[row], dists[row], request)] for row in range(rows)]
        return [[self._completion(ids[row], tokens[row], ended[row], request)] for row in range(rows)]

    def _score_prompts(self, model: Any, input_ids: Any, attention: Any, encoded: list[list[int]], top_k: int,
                       prefix: SharedPrefix | None = None) -> list[list[GeneratedOutput]]:
        """Log-probabilities of the prompt's own tokens (``echo_prompt`` with 0 new tokens)."""
        import torch

        start = len(prefix.ids) if prefix is not None else 0
        logits = self._forward(model, input_ids, attention, prefix, 0)
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        width = input_ids.shape[1] - start
        piece = self._piece
        outputs = []
        for row, ids in enumerate(encoded):
            # The distributions predicting ids[1:], gathered at once: the prefix's, then the row's own.
            first_column = width - (len(ids) - start)  # where ids[start] sits in this row's logits
            shared = min(start, len(ids) - 1)
            parts = [prefix.logprobs[:shared]] if prefix is not None and shared else []
            if len(ids) - 1 > start:
                parts.append(logprobs[row, first_column:first_column + len(ids) - 1 - start])
            tokens = [Token(text=piece(ids[0]), logprob=0.0)]
            if parts:
                dists = torch.cat(parts) if len(parts) > 1 else parts[0]
                chosen = torch.tensor(ids[1:], dtype=torch.long, device=dists.device)
                values = dists.gather(1, chosen[:, None])[:, 0].tolist()
                tops: list[dict[str, float]] = [{} for _ in values]
                if top_k > 1:
                    top_values, top_ids = torch.topk(dists, top_k, dim=-1)
                    tops = [{piece(i): v for v, i in zip(vs, is_)}
                            for vs, is_ in zip(top_values.tolist(), top_ids.tolist())]
                tokens.extend(Token(text=piece(i), logprob=v, top_logprobs=t)
                              for i, v, t in zip(ids[1:], values, tops))
            text = self.tokenizer.decode(ids)
            outputs.append([GeneratedOutput(text=text, logprob=sum(t.logprob for t in tokens), tokens=tokens,
                                            finish_reason=None if self.helm_answers else {"reason": "length"})])
        return outputs

    def _piece(self, token_id: int) -> str:
        """One token's text, decoded once per client (a scored prompt decodes every token)."""
        pieces: dict[int, str] = self.__dict__.setdefault("_pieces", {})
        text = pieces.get(token_id)
        if text is None:
            text = pieces[token_id] = self.tokenizer.decode([token_id])
        return text

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


def _stopped(tokenizer: Any, ids: list[int], stops: tuple[str, ...], longest: int) -> bool:
    """Whether the text's end contains a stop sequence (only the last few tokens are decoded)."""
    tail = tokenizer.decode(ids[-(longest + 4):], skip_special_tokens=True)
    return any(stop in tail for stop in stops)


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
    return stop_token_ids(tokenizer, model.generation_config)
