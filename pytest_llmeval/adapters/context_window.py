"""Fitting prompts into a deployment's context window, measured with its own tokenizer.

A prompt fits when its tokens plus the tokens asked for (``max_tokens``) stay within the
deployment's ``max_request_length`` (``max_sequence_length`` when that is not set). As in
HELM, in-context examples are dropped from the end first; a prompt that still does not fit is
then cut to size. HELM cuts from the right; we cut from the left, so the question and the
answer cue (``Answer:``), which the model needs to answer at all, survive.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from pytest_llmeval.adapters.prompt import Prompt
from pytest_llmeval.errors import ConfigError

log = logging.getLogger("pytest_llmeval.run")


class Tokenizer(Protocol):
    """What fitting needs from a tokenizer; every Hugging Face tokenizer has it."""

    def encode(self, text: str, add_special_tokens: bool = ...) -> list[int]: ...

    def decode(self, token_ids: list[int]) -> str: ...


class CountMemo(Protocol):
    """Token counts remembered across runs (the request cache keeps them)."""

    def get_counts(self, texts: Sequence[str]) -> dict[str, int]: ...

    def put_counts(self, counts: Sequence[tuple[str, int]]) -> None: ...


class ContextWindow:
    """A tokenizer and the token budget of one deployment (no budget: count, never fit)."""

    def __init__(self, tokenizer: Tokenizer | Any, max_request_length: int | None = None,
                 memo: CountMemo | None = None) -> None:
        self.tokenizer = tokenizer
        self.max_request_length = max_request_length
        self.memo = memo
        self._counts: dict[str, int] = {}
        self._unsaved: list[str] = []

    @classmethod
    def for_deployment(cls, deployment: Any, tokenizer: Tokenizer | Any,
                       memo: CountMemo | None = None) -> ContextWindow:
        """The budget of a ``ModelDeployment``: max_request_length, else max_sequence_length."""
        limit = deployment.max_request_length or deployment.max_sequence_length
        return cls(tokenizer, limit, memo)

    def prime(self, texts: Sequence[str]) -> None:
        """Count many texts at once: remembered counts first (``memo``), the rest encoded in one
        batch where the tokenizer can, then remembered. A cached rerun encodes nothing."""
        if self._unsaved and self.memo is not None:
            self.memo.put_counts([(text, self._counts[text]) for text in self._unsaved])
        self._unsaved.clear()
        todo = [text for text in dict.fromkeys(texts) if text not in self._counts]
        if todo and self.memo is not None:
            found = self.memo.get_counts(todo)
            self._counts.update(found)
            todo = [text for text in todo if text not in found]
        if not todo:
            return
        many = getattr(self.tokenizer, "count_many", None)
        counts = list(many(todo)) if callable(many) else [len(self.encode(text)) for text in todo]
        self._counts.update(zip(todo, counts))
        if self.memo is not None:
            self.memo.put_counts(list(zip(todo, counts)))

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def count(self, text: str) -> int:
        """Tokens in ``text`` (HELM's ``num_prompt_tokens``), remembered per text (and across
        runs with a ``memo``; new counts are stored at the next :meth:`prime`)."""
        if text not in self._counts:
            remembered = self.memo.get_counts([text]) if self.memo is not None else {}
            if text in remembered:
                self._counts[text] = remembered[text]
            else:
                self._counts[text] = len(self.encode(text))
                self._unsaved.append(text)
        return self._counts[text]

    def fits(self, text: str, completion_tokens: int = 0) -> bool:
        if self.max_request_length is None:
            return True
        bound = self._upper_bound(text)
        if bound is not None and bound + completion_tokens <= self.max_request_length:
            return True  # clearly short enough: no need to encode it
        return self.count(text) + completion_tokens <= self.max_request_length

    def _upper_bound(self, text: str) -> int | None:
        if text in self._counts:
            return self._counts[text]
        bound = getattr(self.tokenizer, "upper_bound", None)
        return bound(text) if callable(bound) else None

    def truncate_left(self, text: str, completion_tokens: int = 0) -> str:
        """The end of ``text`` that fits; characters are shaved off where decoding re-tokenises."""
        assert self.max_request_length is not None
        budget = self.max_request_length - completion_tokens
        if budget <= 0:
            raise ConfigError(f"max_tokens={completion_tokens} leaves no room for a prompt in a context window of "
                              f"{self.max_request_length} tokens", field="max_tokens")
        ids = self.encode(text)
        result = str(self.tokenizer.decode(ids[-budget:])) if len(ids) > budget else text
        while result and not self.fits(result, completion_tokens):
            result = result[1:]
        return result

    def fit(self, prompt: Prompt, completion_tokens: int = 0) -> Prompt:
        """Drop in-context examples from the end until the prompt fits, then truncate."""
        if self.max_request_length is None:
            return prompt
        original = prompt.num_train_instances
        while not self.fits(prompt.text, completion_tokens):
            if prompt.num_train_instances == 0:
                text = prompt.text
                truncated = self.truncate_left(text, completion_tokens)
                log.info("prompt of %d tokens truncated to fit %d (with %d to generate)", self.count(text),
                            self.max_request_length, completion_tokens)
                return prompt.truncate(truncated) if len(truncated) < len(text) else prompt
            prompt = prompt.without_last_example()
        if prompt.num_train_instances < original:
            log.info("removed %d in-context examples to fit the context window",
                     original - prompt.num_train_instances)
        return prompt
