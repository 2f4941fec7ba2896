"""Model clients behind one protocol: Hugging Face local, OpenAI-compatible HTTP, Python callables, any
other HELM client class through crfm-helm, and clembench entries on clemcore's own backends."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_llmeval.clients.cache import CachingClient, RequestCache, cache_key
from pytest_llmeval.clients.cache_postgres import PostgresCache
from pytest_llmeval.clients.cache_store import CacheStore, open_store
from pytest_llmeval.clients.credentials import Credentials
from pytest_llmeval.clients.factory import check_client_spec, make_client
from pytest_llmeval.clients.helm_bridge import HelmBridgeClient
from pytest_llmeval.clients.protocol import Capabilities, Client, ClientBase, client_identity
from pytest_llmeval.clients.python_callable import CallableClient
from pytest_llmeval.clients.replicas import FleetDown, ReplicaPool

if TYPE_CHECKING:
    from pytest_llmeval.clients.clemcore_backend import ClemcoreBackendClient
    from pytest_llmeval.clients.huggingface import HuggingFaceClient, HuggingFaceTokenizer
    from pytest_llmeval.clients.openai_compatible import OpenAICompatibleClient

__all__ = [
    "CacheStore", "CachingClient", "CallableClient", "Capabilities",
    "ClemcoreBackendClient", "Client", "ClientBase", "Credentials",
    "FleetDown",
    "HelmBridgeClient",
    "HuggingFaceClient",
    "HuggingFaceTokenizer",
    "OpenAICompatibleClient", "PostgresCache", "ReplicaPool", "RequestCache",
    "cache_key", "check_client_spec", "client_identity", "make_client",
    "open_store",
]


def __getattr__(name: str) -> Any:
    """Backends import lazily: torch is only needed when a local model is used."""
    if name in ("HuggingFaceClient", "HuggingFaceTokenizer"):
        from pytest_llmeval.clients import huggingface

        return getattr(huggingface, name)
    if name == "ClemcoreBackendClient":
        from pytest_llmeval.clients.clemcore_backend import ClemcoreBackendClient

        return ClemcoreBackendClient
    if name == "OpenAICompatibleClient":
        from pytest_llmeval.clients.openai_compatible import OpenAICompatibleClient

        return OpenAICompatibleClient
    raise AttributeError(name)
