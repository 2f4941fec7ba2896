"""The context-window check made before every model call.

A dialogue grows each turn; a prompt that no longer fits the model's window must end the
episode cleanly (aborted, reason logged), not raise deep inside a backend or loop forever.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pytest_llmeval.clients.protocol import Client
from pytest_llmeval.requests import Message, Request

CHARS_PER_TOKEN = 3  # without a tokenizer we over-count tokens rather than under-count them


@dataclass
class ChatTokenCounter:
    """Counts a chat's prompt tokens with the model's tokenizer, else estimates from characters."""

    tokenizer: Any = None
    #: a local model's client, which counts the prompt exactly as it renders it for sending
    client: Client | None = None

    def count(self, messages: Sequence[Message]) -> tuple[int, str]:
        """The prompt's length in tokens and how it was measured (``tokenizer`` or ``estimate``)."""
        if self.client is not None:
            counted = self.client.count_prompt_tokens(Request(model_deployment="", messages=tuple(messages)))
            if counted is not None:
                return counted, "tokenizer"
        if self.tokenizer is not None:
            chat = [{"role": m.role, "content": m.content} for m in messages]
            if getattr(self.tokenizer, "chat_template", None):
                text = str(self.tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True))
            else:
                text = "\n\n".join(m.content for m in messages)
            return len(self.tokenizer(text, add_special_tokens=False)["input_ids"]), "tokenizer"
        characters = sum(len(m.content) + len(m.role) + 4 for m in messages)
        return math.ceil(characters / CHARS_PER_TOKEN), "estimate"


class ContextOverflowError(Exception):
    """The prompt plus the reply's token budget exceeds the model's context window."""

    def __init__(self, reason: str, prompt_tokens: int, max_tokens: int, window: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.prompt_tokens = prompt_tokens
        self.max_tokens = max_tokens
        self.window = window


def check_window(messages: Sequence[Message], window: int | None, max_tokens: int, counter: ChatTokenCounter,
                 model: str) -> None:
    """Raise :class:`ContextOverflowError` when ``prompt + max_tokens`` exceeds ``window``."""
    if window is None:
        return
    tokens, how = counter.count(messages)
    if tokens + max_tokens > window:
        raise ContextOverflowError(
            f"context window exceeded for {model}: the prompt has {tokens} tokens ({how}) and the reply may "
            f"take {max_tokens} more, but max_sequence_length is {window}", tokens, max_tokens, window)
