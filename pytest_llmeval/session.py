"""Per-run state (kept in ``config.stash``): settings, model registry, the registries of scenarios,
metrics, games and client backends, cache and loaded models.

Each pytest process (the controller and every xdist worker) has its own session object, so
a model is loaded at most once per process and shared by all items that use it.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from pytest_llmeval.adapters.context_window import ContextWindow
from pytest_llmeval.builtins import builtin_registries
from pytest_llmeval.clients.cache import CacheStore, CachingClient, open_store
from pytest_llmeval.clients.credentials import Credentials
from pytest_llmeval.clients.factory import (
    capabilities_for,
    check_client_spec,
    gguf_weights,
    identity_for,
    load_tokenizer,
    make_client,
    unbuildable_reason,
)
from pytest_llmeval.clients.hf_loading import converted_copy, is_converted
from pytest_llmeval.clients.redaction import LogRedaction, Redactor
from pytest_llmeval.entry_points import load_entry_points
from pytest_llmeval.errors import ConfigError, LLMEvalError
from pytest_llmeval.extensions import Registries
from pytest_llmeval.gates import Gate
from pytest_llmeval.model import ModelHandle
from pytest_llmeval.option_values import project_dir
from pytest_llmeval.options import Settings
from pytest_llmeval.pipeline import RunResult, execute
from pytest_llmeval.registry import Registry
from pytest_llmeval.registry.selection import Pick, Selection, skipped_summary
from pytest_llmeval.runspec import Description, build_run_spec
from pytest_llmeval.scenarios.data import DataLocator
from pytest_llmeval.scenarios.declarations import DeclaredScenarios

log = logging.getLogger("pytest_llmeval")

CACHE_FILE = "cache/requests.sqlite"


@dataclass
class LLMEvalSession:
    settings: Settings
    registry: Registry
    credentials: Credentials
    locator: DataLocator
    cache: CacheStore | None
    models: list[str]
    registries: Registries = field(default_factory=builtin_registries)
    redactor: Redactor = field(default_factory=Redactor)
    handles: dict[str, ModelHandle] = field(default_factory=dict)
    # per deployment, for the games' context-window checks (built on first use)
    chat_token_counters: dict[str, Any] = field(default_factory=dict)
    log_redaction: LogRedaction | None = None
    # --llmeval-models as picks (deployment, model, item label)
    selection: Selection = field(default_factory=Selection)
    # deployments model groups left out (start-up and entries' `model=`), and why
    skipped: dict[str, str] = field(default_factory=dict)
    choices: dict[str, Selection] = field(default_factory=dict)  # an entry's `model=` -> its expansion

    @classmethod
    def from_config(cls, config: pytest.Config) -> LLMEvalSession:
        settings = Settings.from_config(config)
        # Client classes named in a project's registry (``my_models:generate``) import from
        # the project root, in every xdist worker as in the controller (not from ``/``).
        for root in (project_dir(config), config.rootpath):
            if root.parent != root and str(root) not in sys.path:
                sys.path.append(str(root))
        try:
            registries = load_entry_points(builtin_registries())
            # conftest files and plugins: those loaded later (during collection) are called then
            config.hook.pytest_llmeval_register.call_historic(kwargs={"registries": registries})
            config.pluginmanager.register(DeclaredScenarios(registries), "llmeval-declared-scenarios")
            registry = Registry.load(settings.local_path)
            selection = registry.choose(settings.models, functools.partial(unbuildable_reason,
                                                                            backends=registries.clients))
            if not selection.picks:
                raise ConfigError(f"{settings.models!r} selects no deployment that can run here"
                                  + (f" ({skipped_summary(selection.skipped)})" if selection.skipped else ""),
                                  field="--llmeval-models")
            models = selection.deployments
            for name in models:
                check_client_spec(registry.deployment(name), registries.clients)
            credentials = Credentials.load(settings.local_path)
            cache = None if settings.disable_cache else open_store(settings.cache_uri,
                                                                   settings.local_path / CACHE_FILE)
        except ConfigError as exc:
            raise pytest.UsageError(f"pytest-llmeval: {exc}") from None
        redactor = Redactor(credentials.secrets(registry.deployments.values()))
        session = cls(settings, registry, credentials, DataLocator.from_settings(settings.data_dir), cache, models,
                      registries, redactor, selection=selection, skipped=dict(selection.skipped))
        session.log_redaction = LogRedaction(redactor).install()
        return session

    def entry_picks(self, model: str | None, deployment: str | None) -> list[Pick]:
        """The picks of an entry's ``model=`` / ``model_deployment=``, as helm-run expands them.

        With --llmeval-models given, a group or a missing ``model=`` means the selected models,
        and an entry naming one model or deployment runs only if that one is selected
        (``--models-to-run``); without it, the entry's own ``model=`` decides.
        """
        explicit = self.settings.models_explicit
        if not deployment and (not model or (explicit and "/" not in model)):
            return list(self.selection.picks)
        wanted = str(deployment or model)
        if wanted not in self.choices:  # entries repeat `model=text`: expand it once
            self.choices[wanted] = self.registry.choose(
                wanted, functools.partial(unbuildable_reason, backends=self.registries.clients), keep_named=True)
        chosen = self.choices[wanted]
        self.skipped.update(chosen.skipped)
        if not explicit:
            return chosen.picks
        selected = {p.deployment for p in self.selection.picks} | {p.model for p in self.selection.picks if p.by_model}
        return [p for p in chosen.picks if p.deployment in selected or p.model in selected]

    def convert_weights(self, announce: Callable[[str], None]) -> None:
        """Convert the selected local models' GGUF files now, where ``announce`` is seen, rather
        than silently inside the first item (or every xdist worker at once) that loads them."""
        for name in self.models:
            deployment = self.registry.deployment(name)
            source = gguf_weights(deployment, self.registries.clients)
            try:
                if source is not None and not is_converted(source):
                    converted_copy(source, announce)
            except ConfigError as exc:  # the items that load these weights fail with it too
                announce(str(exc.located(file=deployment.source, entry=name)))
            except Exception as exc:  # e.g. a damaged GGUF file; the items say it again
                reason = next(iter(str(exc).splitlines()), "") or type(exc).__name__
                announce(f"file {deployment.source}, entry {name}: its weights could not be converted: {reason}")

    def skipped_line(self) -> str | None:
        """One line for the terminal: deployments model groups skipped, and why."""
        return skipped_summary(self.skipped)

    def close(self) -> None:
        """Detach what the session attached to shared objects (the log redaction); close the cache."""
        if self.log_redaction is not None:
            self.log_redaction.remove()
        if self.cache is not None:
            self.cache.close()

    def handle(self, name: str) -> ModelHandle:
        """The shared handle for a deployment, created on first use in this process."""
        if name not in self.handles:
            deployment = self.registry.deployment(name)
            backends = self.registries.clients
            check_client_spec(deployment, backends)
            build = functools.cache(lambda: make_client(deployment, self.credentials, backends))  # once, lazily
            identity = identity_for(deployment, self.credentials, build, backends) if self.cache is not None else None
            client = CachingClient(deployment.name, build, identity, self.cache, self.redactor,
                                   capabilities_for(deployment, build, backends))
            self.handles[name] = ModelHandle(deployment, self.registry.model_metadata(deployment.model_name),
                                             client)
        return self.handles[name]

    def tokenizer(self, name: str, *, counting: bool = False) -> Any:
        """The deployment's tokenizer (from its tokenizer config, else its client's own).

        ``counting``: only token ids are needed (fitting and counting prompts), which a
        ``tokenizer.json`` gives without importing transformers.
        """
        deployment = self.registry.deployment(name)
        config = self.registry.tokenizers.get(deployment.tokenizer_name or "")
        if config is not None:
            return load_tokenizer(config, counting)
        tokenizer = self.handle(name).client.prompt_tokenizer(counting)
        if tokenizer is not None:
            return tokenizer
        raise ConfigError(f"deployment {name!r} has no tokenizer_name with a tokenizer config",
                          file=deployment.source, entry=name, field="tokenizer_name")

    def context_window(self, name: str) -> ContextWindow | None:
        """The deployment's tokenizer and token limits, for fitting prompts and counting their
        tokens; None for a deployment with no tokenizer (a hosted model, a Python callable)."""
        deployment = self.registry.deployment(name)
        local = self.handle(name).client.capabilities().local_tokenizer
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

    def run_entry(self, description: Description, deployment: str, progress: Any = None,
                  max_eval_instances: int | None = None, groups: Sequence[str] | None = None) -> RunResult:
        """Run ``description`` on ``deployment`` (any ``model=`` in it is ignored), evaluating at most
        ``max_eval_instances`` unless the description names its own limit, as in helm-run, with the
        run entry's ``groups`` added to the run spec's; a run that fails after sending requests
        raises :class:`~pytest_llmeval.run_result.RunFailed` with its result."""
        handle = self.handle(deployment)
        model = handle.deployment.model_name
        run_spec = build_run_spec(description, deployment, model, self.registries, groups=groups,
                                  model_tags=self.registry.model_metadata(model).tags,
                                  default_deployment=self.registry.default_deployment(model), locator=self.locator)
        if run_spec.harness is not None:  # lm-eval's evaluator runs the task against our client
            return self._run_harness(run_spec, handle, progress, max_eval_instances)
        if run_spec.helm_bridge is not None:  # crfm-helm's window services look the deployment up
            config = self.registry.tokenizers.get(handle.deployment.tokenizer_name or "")
            run_spec.helm_bridge.deployment = handle.deployment
            run_spec.helm_bridge.special_tokens = (config.end_of_text_token, config.prefix_token) if config else (
                None, None)
        return execute(run_spec, handle.client, self.locator, self.settings.output_path, self.settings.suite,
                       max_eval_instances, progress, window=self.context_window(deployment))

    def _run_harness(self, run_spec: Any, handle: ModelHandle, progress: Any, limit: int | None) -> RunResult:
        from pytest_llmeval.harness.entries import complete
        from pytest_llmeval.harness.task_run import execute_task

        deployment = handle.deployment
        return execute_task(complete(run_spec, self.settings.lm_eval_include), handle.client, self.locator,
                            self.settings.output_path, self.settings.suite, limit, progress,
                            tokenizer=_harness_tokenizer(self, deployment.name),
                            max_length=deployment.max_sequence_length)


def _harness_tokenizer(session: LLMEvalSession, name: str) -> Any:
    """The deployment's full tokenizer for lm-eval's token splits; None for one without any."""
    try:
        return session.tokenizer(name)
    except (OSError, ValueError, ImportError, LLMEvalError) as exc:
        log.warning("%s: no tokenizer (%s); lm-eval's log-likelihood requests cannot run", name, exc)
        return None


def check_gates(result: RunResult, gates: list[Gate]) -> list[str]:
    return [message for gate in gates if (message := gate.check(result.stats)) is not None]


def worker_id() -> str:
    """``gw0``, ``gw1``, ... under pytest-xdist; ``master`` otherwise."""
    return os.environ.get("PYTEST_XDIST_WORKER", "master")


__all__ = ["LLMEvalError", "LLMEvalSession", "check_gates", "worker_id"]
