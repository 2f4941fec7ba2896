"""The client protocol: a list of requests in, one result per request out.

Clients are the only code that knows a model backend; everything else (the run pipeline, the
session, the games, the JUnit properties) talks to a :class:`Client` and asks it what it can
do. Taking a *list* lets local backends batch and remote ones run requests concurrently.

Every backend implements the whole protocol; :class:`ClientBase` gives the defaults, so a
backend writes ``generate`` (or ``generate_stream``) and whatever else it actually has.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from pytest_llmeval.requests import Request, RequestResult

Finished = tuple[list[int], list[RequestResult]]
"""A finished batch: positions in the request list, and their results."""


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do beyond answering requests, known without loading a model."""

    prompt_logprobs: bool = False
    """``echo_prompt`` with ``max_tokens=0`` returns the prompt's own token log-probabilities."""
    local_tokenizer: bool = False
    """``prompt_tokenizer()`` gives the ids the model sees, so prompts can be fitted into the
    context window and counted."""
    loads_weights: bool = False
    """The model runs in this process (``model_loads()`` counts its loads)."""
    raw_prompts: bool = True
    """A prompt can be sent as the exact text the model sees (``verbatim``); a chat endpoint
    takes messages only."""


@runtime_checkable
class Client(Protocol):
    """What every model backend offers (see :class:`ClientBase` for the defaults)."""

    @property
    def batch_hint(self) -> int:
        """How many requests the client likes per ``generate`` call: results are cached after
        each call."""
        ...

    def identity(self) -> dict[str, Any]:
        """What makes the client's answers what they are (weights, revision, dtype, endpoint).

        It is part of every cache key, so swapping a checkpoint never returns stale results.
        It must never contain credentials.
        """
        ...

    def capabilities(self) -> Capabilities:
        """What the backend can do beyond answering requests."""
        ...

    def generate(self, requests: Sequence[Request]) -> list[RequestResult]:
        """Return exactly one :class:`RequestResult` per request, in order."""
        ...

    def generate_stream(self, requests: Sequence[Request]) -> Iterator[Finished]:
        """Results batch by batch, as they finish, each request answered exactly once."""
        ...

    def prompt_tokenizer(self, counting: bool = False) -> Any | None:
        """The tokenizer whose ids the model sees; None for a backend with none.

        ``counting``: only token ids are needed (fitting and counting prompts), which a light
        :class:`~pytest_llmeval.clients.token_counter.TokenCounter` may answer.
        """
        ...

    def count_prompt_tokens(self, request: Request) -> int | None:
        """How many tokens the model sees for ``request``, rendered exactly as it is sent (chat
        template included); None for a backend that cannot tell."""
        ...

    def model_loads(self) -> int:
        """How many times this process loaded the client's weights since the client was made (0 for
        remote backends)."""
        ...


class ClientBase:
    """The protocol's defaults: streaming from ``generate`` a ``batch_hint`` at a time, and
    ``generate`` from ``generate_stream``. A backend overrides at least one of the two."""

    batch_hint: int = 16

    def identity(self) -> dict[str, Any]:
        return {"class": f"{type(self).__module__}.{type(self).__qualname__}"}

    def capabilities(self) -> Capabilities:
        return Capabilities()

    def generate(self, requests: Sequence[Request]) -> list[RequestResult]:
        if type(self).generate_stream is ClientBase.generate_stream:
            raise NotImplementedError(f"{type(self).__qualname__} defines neither generate nor generate_stream")
        return collect(self.generate_stream(requests), len(requests))

    def generate_stream(self, requests: Sequence[Request]) -> Iterator[Finished]:
        """Plain clients are called ``batch_hint`` requests at a time; a client that plans its
        own batches over the whole list overrides this (to group shared prefixes, say)."""
        step = self.batch_hint if isinstance(self.batch_hint, int) and self.batch_hint > 0 else 16
        for start in range(0, len(requests), step):
            chunk = list(requests[start:start + step])
            answers = self.generate(chunk)
            if len(answers) != len(chunk):
                raise RuntimeError(f"client returned {len(answers)} results for {len(chunk)} requests")
            yield list(range(start, start + len(chunk))), list(answers)

    def prompt_tokenizer(self, counting: bool = False) -> Any | None:
        return None

    def count_prompt_tokens(self, request: Request) -> int | None:
        return None

    def model_loads(self) -> int:
        return 0


@runtime_checkable
class TurnBatching(Protocol):
    """A client that can answer requests arriving together, one step of several conversations
    played side by side (a lockstep turn), as one batch where memory allows, rather than in its
    usual batch size: each turn then costs one decoding loop, not several."""

    def generate_together(self, requests: Sequence[Request]) -> Iterator[Finished]:
        ...


def client_identity(client: Client) -> dict[str, Any]:
    """The client's cache identity, as a fresh dict."""
    return dict(client.identity())


def batch_hint(client: Client, default: int = 16) -> int:
    """How many requests the client likes per call, ``default`` when it names no positive count."""
    hint = client.batch_hint
    return int(hint) if isinstance(hint, int) and hint > 0 else default


def stream(client: Client, requests: Sequence[Request], together: bool = False) -> Iterator[Finished]:
    """Results batch by batch, as they finish, so the caller can cache and report each batch
    as soon as it is done; ``together``: one turn of conversations side by side (see
    :class:`TurnBatching`; other clients plan as usual)."""
    if together and isinstance(client, TurnBatching):
        return client.generate_together(requests)
    return client.generate_stream(requests)


def collect(batches: Iterator[Finished], count: int) -> list[RequestResult]:
    """The results of a stream, back in request order."""
    results: list[RequestResult | None] = [None] * count
    for indices, answers in batches:
        for i, answer in zip(indices, answers):
            results[i] = answer
    missing = [i for i, r in enumerate(results) if r is None]
    if missing:
        raise RuntimeError(f"client returned no result for {len(missing)} of {count} requests")
    return [r for r in results if r is not None]
