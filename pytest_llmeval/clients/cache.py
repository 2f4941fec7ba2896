"""The caching client: answers from the request cache first, asks the model only for the rest.

Keys hash the deployment, the client's identity (weights, revision, dtype, endpoint) and the
whole request. Each batch's results are written as soon as they arrive, so an interrupted
run keeps everything it finished. The store is an SQLite file (:mod:`cache_sqlite`, the
default) or a PostgreSQL server shared by many hosts (:mod:`cache_postgres`).

Known secrets are redacted from each result as it comes back, before it is stored or
returned, and from stored results as they are read.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from pytest_llmeval.clients.cache_sqlite import CacheFileError, RequestCache
from pytest_llmeval.clients.cache_store import CacheServerError, CacheStore, TokenCountMemo, cache_key, open_store
from pytest_llmeval.clients.protocol import Capabilities, Client, ClientBase, Finished, client_identity, collect, stream
from pytest_llmeval.clients.redaction import Redactor
from pytest_llmeval.requests import Request, RequestResult

log = logging.getLogger("pytest_llmeval.cache")


class CachingClient(ClientBase):
    """Wraps a client: answers from the cache first, asks the model only for the rest.

    The wrapped client is built lazily, so a run whose requests are all cached never loads
    the model; its identity and capabilities, when given, are known without building it.
    ``redactor`` removes known secrets from every result before it is stored or returned,
    whatever the backend.
    """

    def __init__(self, deployment: str, make_client: Any, identity: dict[str, Any] | None,
                 cache: CacheStore | None, redactor: Redactor | None = None,
                 capabilities: Capabilities | None = None) -> None:
        self.deployment = deployment
        self.redactor = redactor or Redactor()
        self._make_client = make_client
        self._client: Client | None = None
        self._identity = identity
        self._capabilities = capabilities
        self.cache = cache
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()  # episodes played side by side share this client

    @property
    def client(self) -> Client:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make_client()
        return self._client

    def identity(self) -> dict[str, Any]:
        if self._identity is None:
            self._identity = client_identity(self.client)
        return self._identity

    def capabilities(self) -> Capabilities:
        if self._capabilities is None:
            self._capabilities = self.client.capabilities()
        return self._capabilities

    def prompt_tokenizer(self, counting: bool = False) -> Any | None:
        """The wrapped client's tokenizer; None, without building it, when it has none."""
        return self.client.prompt_tokenizer(counting) if self.capabilities().local_tokenizer else None

    def count_prompt_tokens(self, request: Request) -> int | None:
        return self.client.count_prompt_tokens(request) if self.capabilities().local_tokenizer else None

    def model_loads(self) -> int:
        """Loads of the wrapped client's weights; 0 while it is not built (a cached run)."""
        return self._client.model_loads() if self._client is not None else 0

    def generate(self, requests: Sequence[Request], together: bool = False) -> list[RequestResult]:
        return collect(self.generate_stream(requests, together), len(requests))

    def generate_stream(self, requests: Sequence[Request], together: bool = False) -> Iterator[Finished]:
        """Cached results first (read in bulk), then the model's, each batch stored as it finishes
        (``together``: the misses are one turn of conversations side by side, see :func:`stream`)."""
        keys: list[str] = []
        missing = list(range(len(requests)))
        if self.cache is not None:
            keys = [cache_key(self.deployment, self.identity(), r) for r in requests]
            stored = self.cache.get_many(keys, self.redactor)
            hits = [i for i, key in enumerate(keys) if key in stored]
            for i in hits:
                stored[keys[i]].cached = True
            missing = [i for i, key in enumerate(keys) if key not in stored]
            if requests:
                log.info("%s: %d of %d requests served from the cache", self.deployment, len(hits), len(requests))
            if hits:
                yield hits, [stored[keys[i]] for i in hits]
        with self._lock:
            self.hits += len(requests) - len(missing)
            self.misses += len(missing)
        if not missing:
            return
        for positions, answers in stream(self.client, [requests[i] for i in missing], together):
            if len(answers) != len(positions):
                raise RuntimeError(
                    f"{self.deployment}: client returned {len(answers)} results for {len(positions)} requests")
            indices = [missing[p] for p in positions]
            answers = [self.redactor.result(answer) for answer in answers]
            for answer in answers:
                answer.cached = False
            if self.cache is not None:
                self.cache.put_many((keys[i], self.deployment, requests[i], answer)
                                    for i, answer in zip(indices, answers) if answer.success)
            yield indices, answers


__all__ = ["CacheFileError", "CacheServerError", "CacheStore", "CachingClient", "RequestCache", "TokenCountMemo",
           "cache_key", "open_store"]
