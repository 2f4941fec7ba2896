"""Per-run state (kept in ``config.stash``): settings, registry, cache and loaded models.

Each pytest process (the controller and every xdist worker) has its own session object, so
a model is loaded at most once per process and shared by all items that use it.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from dataclasses import dataclass, field
from typing import Any

import pytest

from pytest_llmeval.adapters.context_window import ContextWindow
from pytest_llmeval.clients.cache import CachingClient, RequestCache
from pytest_llmeval.clients.credentials import Credentials
from pytest_llmeval.clients.factory import HF, KNOWN_CLASSES, check_client_spec, identity_for, make_client
from pytest_llmeval.errors import ConfigError, LLMEvalError
from pytest_llmeval.gates import Gate
from pytest_llmeval.model import ModelHandle
from pytest_llmeval.options import Settings
from pytest_llmeval.pipeline import RunResult, execute
from pytest_llmeval.registry import Registry
from pytest_llmeval.runspec import Description, build_run_spec
from pytest_llmeval.scenarios.data import DataLocator

log = logging.getLogger("pytest_llmeval")

CACHE_FILE = "cache/requests.sqlite"


@dataclass
class LLMEvalSession:
    settings: Settings
    registry: Registry
    credentials: Credentials
    locator: DataLocator
    cache: RequestCache | None
    models: list[str]
    handles: dict[str, ModelHandle] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: pytest.Config) -> LLMEvalSession:
        settings = Settings.from_config(config)
        # Client classes named in a project's registry (``my_models:generate``) import from
        # the project root, in every xdist worker as in the controller.
        if str(config.rootpath) not in sys.path:
            sys.path.append(str(config.rootpath))
        try:
            registry = Registry.load(settings.local_path)
            models = registry.select(settings.models)
            for name in models:
                check_client_spec(registry.deployment(name))
            credentials = Credentials.load(settings.local_path)
        except ConfigError as exc:
            raise pytest.UsageError(f"pytest-llmeval: {exc}") from None
        cache = None if settings.disable_cache else RequestCache(settings.local_path / CACHE_FILE)
        return cls(settings, registry, credentials, DataLocator.from_settings(settings.data_dir), cache, models)

    def handle(self, name: str) -> ModelHandle:
        """The shared handle for a deployment, created on first use in this process."""
        if name not in self.handles:
            deployment = self.registry.deployment(name)
            check_client_spec(deployment)
            build = functools.cache(lambda: make_client(deployment, self.credentials))  # built once, lazily
            identity = identity_for(deployment, self.credentials, build) if self.cache is not None else None
            client = CachingClient(deployment.name, build, identity, self.cache)
            self.handles[name] = ModelHandle(deployment, self.registry.model_metadata(deployment.model_name),
                                             client)
        return self.handles[name]

    def tokenizer(self, name: str, *, counting: bool = False) -> Any:
        """The deployment's tokenizer (from its tokenizer config, else its local client).

        ``counting``: only token ids are needed (fitting and counting prompts), which a
        ``tokenizer.json`` gives without importing transformers.
        """
        deployment = self.registry.deployment(name)
        config = self.registry.tokenizers.get(deployment.tokenizer_name or "")
        from pytest_llmeval.clients.huggingface import HuggingFaceClient, HuggingFaceTokenizer

        if config is not None:
            tokenizer = HuggingFaceTokenizer(**config.tokenizer_spec.args)
            return tokenizer.counter() if counting else tokenizer.load()
        client = self.handle(name).client.client
        if isinstance(client, HuggingFaceClient):
            return client.token_counter if counting else client.tokenizer
        raise ConfigError(f"deployment {name!r} has no tokenizer_name with a tokenizer config",
                          file=deployment.source, entry=name, field="tokenizer_name")

    def context_window(self, name: str) -> ContextWindow | None:
        """The deployment's tokenizer and token limits, for fitting prompts and counting their
        tokens; None for a deployment with no tokenizer (a hosted model, a Python callable)."""
        deployment = self.registry.deployment(name)
        local = KNOWN_CLASSES.get(deployment.client_spec.class_name, ("",))[0] == HF
        if (deployment.tokenizer_name or "") not in self.registry.tokenizers and not local:
            return None
        try:
            tokenizer = self.tokenizer(name, counting=True)
        except (OSError, ValueError, ImportError, LLMEvalError) as exc:  # e.g. a hub tokenizer while offline
            log.warning("%s: tokenizer unavailable (%s); prompts are neither fitted nor counted", name, exc)
            return None
        identity = getattr(tokenizer, "identity", None)
        memo = self.cache.token_counts(identity) if self.cache is not None and isinstance(identity, str) else None
        return ContextWindow.for_deployment(deployment, tokenizer, memo)

    def run_entry(self, description: Description, deployment: str, progress: Any = None) -> RunResult:
        """Run ``description`` on ``deployment`` (any ``model=`` in it is ignored); a run that fails
        after sending requests raises :class:`~pytest_llmeval.run_result.RunFailed` with its result."""
        handle = self.handle(deployment)
        run_spec = build_run_spec(description, deployment, handle.deployment.model_name)
        return execute(run_spec, handle.client, self.locator, self.settings.output_path, self.settings.suite,
                       self.settings.max_eval_instances, progress, window=self.context_window(deployment))


def check_gates(result: RunResult, gates: list[Gate]) -> list[str]:
    return [message for gate in gates if (message := gate.check(result.stats)) is not None]


def worker_id() -> str:
    """``gw0``, ``gw1``, ... under pytest-xdist; ``master`` otherwise."""
    return os.environ.get("PYTEST_XDIST_WORKER", "master")


__all__ = ["LLMEvalError", "LLMEvalSession", "check_gates", "worker_id"]
