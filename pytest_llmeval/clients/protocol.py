"""The client protocol: a list of requests in, one result per request out.

Clients are the only code that knows a model backend. Taking a *list* lets local backends
batch and remote ones run requests concurrently.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

from pytest_llmeval.requests import Request, RequestResult


@runtime_checkable
class Client(Protocol):
    """Anything with ``generate``; ``identity``, ``batch_hint`` and ``generate_stream`` are
    optional extras."""

    def generate(self, requests: Sequence[Request]) -> list[RequestResult]:
        """Return exactly one :class:`RequestResult` per request, in order."""
        ...


def client_identity(client: object) -> dict[str, Any]:
    """What makes a client's answers what they are (weights, revision, dtype, endpoint).

    It is part of every cache key, so swapping a checkpoint never returns stale results. It
    must never contain credentials.
    """
    identity = getattr(client, "identity", None)
    if callable(identity):
        return dict(identity())
    return {"class": f"{type(client).__module__}.{type(client).__qualname__}"}


def batch_hint(client: object, default: int = 16) -> int:
    """How many requests the client likes per call: results are cached after each call."""
    hint = getattr(client, "batch_hint", None)
    return int(hint) if isinstance(hint, int) and hint > 0 else default


Finished = tuple[list[int], list[RequestResult]]
"""A finished batch: positions in the request list, and their results."""


def stream(client: object, requests: Sequence[Request]) -> Iterator[Finished]:
    """Results batch by batch, as they finish.

    A client that plans its own batches over the whole list (``generate_stream``) sees every
    request at once, so it can group shared prefixes and sort by length across the run;
    others are called ``batch_hint`` requests at a time. Either way the caller can cache and
    report each batch as soon as it is done.
    """
    planned = getattr(client, "generate_stream", None)
    if callable(planned):
        yield from planned(requests)
        return
    step = batch_hint(client)
    for start in range(0, len(requests), step):
        chunk = list(requests[start:start + step])
        answers = client.generate(chunk)  # type: ignore[attr-defined]
        if len(answers) != len(chunk):
            raise RuntimeError(f"client returned {len(answers)} results for {len(chunk)} requests")
        yield list(range(start, start + len(chunk))), list(answers)


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
