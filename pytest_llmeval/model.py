"""The ``llm`` fixture's object: one deployment behind the cache, with conveniences."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pytest_llmeval.clients.cache import CachingClient
from pytest_llmeval.registry.entries import ModelDeployment, ModelMetadata
from pytest_llmeval.requests import Message, Request, RequestResult


@dataclass
class ModelHandle:
    """A ready client for one model. The model itself loads on first use, not before."""

    deployment: ModelDeployment
    metadata: ModelMetadata
    client: CachingClient

    @property
    def name(self) -> str:
        return self.deployment.name

    def generate(self, requests: Sequence[Request], together: bool = False) -> list[RequestResult]:
        """Answer many requests in one call (batched locally, concurrent remotely);
        ``together``: they are one turn of conversations played side by side, which a local
        model answers as one batch where memory allows."""
        return self.client.generate(requests, together)

    def request(self, **fields: Any) -> Request:
        """A :class:`Request` addressed to this deployment."""
        fields.setdefault("model", self.deployment.model_name)
        return Request(model_deployment=self.deployment.name, **fields)

    def complete(self, prompt: str, *, max_tokens: int = 100, temperature: float = 0.0,
                 stop: Sequence[str] = (), top_k_per_token: int = 1) -> RequestResult:
        """Plain-text completion (wrapped in the chat template for chat models, as HELM does)."""
        request = self.request(prompt=prompt, max_tokens=max_tokens, temperature=temperature,
                               stop_sequences=tuple(stop), top_k_per_token=top_k_per_token)
        return self.generate([request])[0]

    def chat(self, messages: Sequence[Message | dict[str, str]] | str, *, max_tokens: int = 100,
             temperature: float = 0.0, stop: Sequence[str] = ()) -> RequestResult:
        """A chat turn: a string is one user message; dicts need ``role`` and ``content``."""
        if isinstance(messages, str):
            messages = [Message("user", messages)]
        chat = tuple(m if isinstance(m, Message) else Message(m["role"], m["content"]) for m in messages)
        request = self.request(messages=chat, max_tokens=max_tokens, temperature=temperature,
                               stop_sequences=tuple(stop))
        return self.generate([request])[0]

    def __repr__(self) -> str:
        return f"ModelHandle({self.deployment.name!r})"
