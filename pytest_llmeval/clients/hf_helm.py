"""HELM's answer rules for the local client (``answers: helm``), as crfm-helm's HuggingFaceClient has them.

A deployment naming HELM's ``helm.clients.huggingface_client.HuggingFaceClient`` gets these
rules, so a HELM user's ``model_deployments.yaml`` yields ``helm-run``'s numbers:

- a generated token's log-probability comes from the distribution HELM's client reads
  (``output.scores``): the logits divided by the temperature, with temperature 0 sent as
  1e-7, so a greedy token's log-probability is (about) 0;
- generation stops as HELM's stopping rule says: a single stop sequence of one token replaces
  the end-of-text token, other stop sequences end generation when their token ids are the
  last ones generated;
- the text keeps special tokens and is then cut by HELM's ``truncate_sequence``: at each stop
  sequence and the end-of-text token, dropping the tokens from the first one that starts
  with it, and the completion's log-probability is recomputed from the tokens kept;
- no finish reason (HELM's stats count it as ``finish_reason_unknown``).

Pure Python apart from :func:`scaled_logprobs` and :func:`stopping_criteria`, which import
torch and transformers when called.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pytest_llmeval.requests import GeneratedOutput, Request, Token

HELM = "helm"
ANSWERS = ("llmeval", HELM)

# HELM's client sends temperature 0 as this value (and samples).
ZERO_TEMPERATURE = 1e-7


def helm_temperature(temperature: float) -> float:
    return temperature if temperature > 0 else ZERO_TEMPERATURE


def scaled_logprobs(logits: Any, temperature: float) -> Any:
    """Log-probabilities after HELM's temperature: ``log_softmax(logits / T)``, T = 1e-7 for 0."""
    import torch

    return torch.log_softmax(logits.float() / helm_temperature(temperature), dim=-1)


@dataclass(frozen=True)
class StopRule:
    """When HELM's generation stops: at one of ``end_ids``, or when a suffix of ids matches."""

    end_ids: frozenset[int]
    suffixes: tuple[tuple[int, ...], ...] = ()

    def stops(self, ids: Sequence[int], prompt: Sequence[int] = ()) -> bool:
        """Whether generation stops after ``ids`` (HELM matches suffixes over prompt and output)."""
        if ids and ids[-1] in self.end_ids:
            return True
        if not self.suffixes or not ids:
            return False
        longest = max(len(s) for s in self.suffixes)
        tail = (list(prompt[-longest:]) + list(ids))[-longest:] if len(ids) < longest else list(ids[-longest:])
        return any(len(tail) >= len(s) and tuple(tail[-len(s):]) == s for s in self.suffixes)

    @property
    def replaces_eos(self) -> bool:
        """A single one-token stop sequence is HELM's ``eos_token_id`` (the model's is dropped)."""
        return not self.suffixes


def stop_rule(tokenizer: Any, stop_sequences: Sequence[str], eos_ids: set[int]) -> StopRule:
    """HELM's rule for ``stop_sequences`` (huggingface_client.py ``serve_request``)."""
    if not stop_sequences:
        return StopRule(frozenset(eos_ids))
    ids = [list(x) for x in tokenizer(list(stop_sequences), add_special_tokens=False)["input_ids"]]
    if len(ids) == 1 and len(ids[0]) == 1:
        return StopRule(frozenset(ids[0]))
    return StopRule(frozenset(eos_ids), tuple(tuple(x) for x in ids if x))


def stopping_criteria(rule: StopRule) -> Any:
    """``rule``'s stop sequences as transformers' stopping criteria (None when there are none)."""
    if not rule.suffixes:
        return None
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _Suffixes(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
            for suffix in rule.suffixes:
                if input_ids.shape[1] >= len(suffix):
                    tail = torch.tensor(suffix, device=input_ids.device, dtype=input_ids.dtype)
                    done |= (input_ids[:, -len(suffix):] == tail).all(dim=-1)
            return done

    return StoppingCriteriaList([_Suffixes()])


def generated_ids(row: Sequence[int], rule: StopRule, prompt: Sequence[int] = ()) -> list[int]:
    """A row's generated ids up to and including the one where HELM's generation stopped
    (what follows is padding of a batch)."""
    ids: list[int] = []
    for token_id in row:
        ids.append(int(token_id))
        if rule.stops(ids, prompt):
            break
    return ids


def truncate_sequence(text: str, tokens: list[Token], request: Request, end_of_text: str | None) -> GeneratedOutput:
    """HELM's ``truncate_sequence`` (helm/clients/client.py): cut at each stop sequence and the
    end-of-text token, then to ``max_tokens`` tokens; no finish reason."""
    if request.echo_prompt:
        return GeneratedOutput(text=text, logprob=sum(t.logprob for t in tokens), tokens=tokens)
    stops = list(request.stop_sequences) + ([end_of_text] if end_of_text else [])
    logprob = sum(t.logprob for t in tokens)
    for stop in stops:
        at = text.find(stop)
        text = text[:at] if at >= 0 else text
        kept: list[Token] = []
        for token in tokens:
            if token.text.startswith(stop):
                break
            kept.append(token)
        tokens = kept
        logprob = sum(t.logprob for t in tokens)
    if len(tokens) > request.max_tokens:
        tokens = tokens[:request.max_tokens]
        text = "".join(t.text for t in tokens)
        logprob = sum(t.logprob for t in tokens)
    return GeneratedOutput(text=text, logprob=logprob, tokens=tokens)
