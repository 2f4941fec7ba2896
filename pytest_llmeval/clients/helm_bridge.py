"""Any other HELM client class, run by crfm-helm's own code (the optional ``helm`` extra).

A deployment whose ``client_spec.class_name`` is a ``helm.clients.*`` class that no built-in
backend maps is served here when crfm-helm is importable, so a HELM user keeps every provider
HELM has. The class is built by HELM's own factory, :class:`helm.clients.auto_client.AutoClient`,
exactly as ``helm-run`` builds it: HELM's registries (its built-in configs, then the deployment
itself) and HELM's dependency injection of ``cache_config``, ``api_key``, ``tokenizer``,
``base_url`` and the rest. Requests go through ``AutoClient.make_request``, so HELM's own
retries apply.

What stays ours: the cache (HELM gets a cache config that stores nothing; the
:class:`~pytest_llmeval.clients.cache.CachingClient` in front of every client is the cache),
the credentials (our ``credentials.conf`` values under HELM's key names, plus the
``<ORGANIZATION>_API_KEY`` environment variable as ``<organization>ApiKey``), the concurrency
(``concurrency`` in ``client_spec.args``, taken out before HELM sees the args) and the error
path (a request that still fails is ``RequestResult(success=False, error=...)``).

Without crfm-helm such a deployment cannot be built; :func:`unbuildable_reason` says why.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
import importlib.util
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_llmeval.clients.concurrent_requests import map_concurrently
from pytest_llmeval.clients.credentials import Credentials
from pytest_llmeval.clients.protocol import ClientBase
from pytest_llmeval.clients.redaction import Redactor
from pytest_llmeval.errors import ClientError, ConfigError
from pytest_llmeval.registry.entries import ModelDeployment
from pytest_llmeval.requests import GeneratedOutput, Request, RequestResult, Token

HELM_CLIENTS = "helm.clients."
"""The package every HELM client class lives under."""
NEEDS_HELM = "needs crfm-helm (pip install 'pytest-llmeval[helm]')"
OWN_ARGS = ("concurrency",)
"""``client_spec.args`` keys that configure the bridge itself; HELM's class never sees them."""
DEFAULT_CONCURRENCY = 4
"""Requests in flight at once, as ``helm-run --num-threads`` defaults to."""

_HELM_STATE = threading.Lock()  # HELM's registries are process-global
_builtins_registered = False


def is_helm_client_class(class_name: str) -> bool:
    """A class name in HELM's client package (``helm.clients.simple_client.SimpleClient``)."""
    return class_name.startswith(HELM_CLIENTS) and "." in class_name[len(HELM_CLIENTS):]


def helm_version() -> str | None:
    """The installed crfm-helm's version, or None when it is not installed."""
    try:
        return importlib.metadata.version("crfm-helm")
    except importlib.metadata.PackageNotFoundError:
        return None


def _module_found(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:  # a parent package is missing
        return False


def unbuildable_reason(class_name: str) -> str | None:
    """Why the bridge cannot serve ``class_name`` here (crfm-helm missing, or no such HELM
    module), or None when it can. Known without importing the class's module."""
    if not _module_found("helm.clients.client"):
        return NEEDS_HELM
    module = class_name.rpartition(".")[0]
    if not _module_found(module):
        return f"names no module of crfm-helm {helm_version() or ''}".rstrip() + f" ({module} not found)"
    return None


def helm_credentials(deployment: ModelDeployment, credentials: Credentials) -> dict[str, Any]:
    """HELM's credentials mapping: our ``credentials.conf`` values under their own (HELM's) key
    names, plus the host organization's key from the environment or ``key.json`` as
    ``<organization>ApiKey`` when ``credentials.conf`` has none."""
    values: dict[str, Any] = dict(credentials.values)
    name = f"{deployment.host_organization}ApiKey"
    if name not in values:
        key = credentials.api_key(deployment.host_organization, deployment.client_spec.args.get("api_key_env"))
        if key:
            values[name] = key
    return values


# --- requests and results, ours <-> HELM's -----------------------------------------------------


def to_helm_request(request: Request, deployment: ModelDeployment) -> Any:
    """HELM's ``Request`` for ours: a chat as ``messages`` (then no prompt, as HELM requires),
    else the prompt; sent to the deployment this client serves."""
    from helm.common.request import Request as HelmRequest

    messages = None if request.messages is None else [m.to_dict() for m in request.messages]
    return HelmRequest(
        model_deployment=deployment.name, model=request.model or deployment.model_name,
        prompt="" if messages is not None else request.prompt, messages=messages,
        temperature=request.temperature, max_tokens=request.max_tokens, num_completions=request.num_completions,
        top_k_per_token=request.top_k_per_token, stop_sequences=list(request.stop_sequences),
        echo_prompt=request.echo_prompt, top_p=request.top_p,
    )


def from_helm_result(result: Any, raw_request: dict[str, Any], redactor: Redactor) -> RequestResult:
    """Our ``RequestResult`` for HELM's: completions with their tokens and finish reasons, the
    timings, and HELM's error (with its error flags in ``raw_response``) on failure."""
    completions = [
        GeneratedOutput(
            text=output.text, logprob=float(output.logprob or 0.0),
            tokens=[Token(text=t.text, logprob=float(t.logprob or 0.0),
                          top_logprobs=dict(getattr(t, "top_logprobs", None) or {})) for t in output.tokens],
            finish_reason=dict(output.finish_reason) if output.finish_reason else None,
        )
        for output in result.completions or []
    ]
    flags = getattr(result, "error_flags", None)
    return RequestResult(
        success=bool(result.success), completions=completions, request_time=result.request_time,
        request_datetime=result.request_datetime,
        error=None if result.error is None else redactor.text(str(result.error)),
        embedding=list(result.embedding or []), raw_request=raw_request,
        raw_response={"error_flags": dataclasses.asdict(flags)} if flags is not None else None,
    )


# --- HELM's registries and factory -------------------------------------------------------------


def _register(deployment: ModelDeployment, helm_args: dict[str, Any]) -> None:
    """Put the deployment into HELM's registries, after HELM's built-in configs (once per process),
    as ``helm-run`` does; a tokenizer config HELM lacks comes from ``tokenizer_configs.yaml`` beside
    the deployment's file, read by HELM."""
    global _builtins_registered
    from helm.benchmark.config_registry import register_builtin_configs_from_helm_package
    from helm.benchmark.model_deployment_registry import ClientSpec, register_model_deployment
    from helm.benchmark.model_deployment_registry import ModelDeployment as HelmDeployment
    from helm.benchmark.tokenizer_config_registry import get_tokenizer_config, register_tokenizer_configs_from_path

    with _HELM_STATE:
        if not _builtins_registered:
            register_builtin_configs_from_helm_package()
            _builtins_registered = True
        beside = Path(deployment.source).with_name("tokenizer_configs.yaml")
        if deployment.tokenizer_name and get_tokenizer_config(deployment.tokenizer_name) is None and beside.is_file():
            register_tokenizer_configs_from_path(str(beside))
        register_model_deployment(HelmDeployment(
            name=deployment.name, model_name=deployment.model_name, tokenizer_name=deployment.tokenizer_name,
            client_spec=ClientSpec(class_name=deployment.client_spec.class_name, args=dict(helm_args)),
            max_sequence_length=deployment.max_sequence_length, max_request_length=deployment.max_request_length,
            deprecated=deployment.deprecated,
        ))


def _file_storage(deployment: ModelDeployment) -> str:
    """Where HELM's clients keep lock files and media: ``cache/`` beside the deployment's file
    (the local path, as HELM's own ``prod_env/cache``), else a temporary folder."""
    source = Path(deployment.source)
    return str(source.parent / "cache") if source.is_file() else tempfile.gettempdir()


class HelmBridgeClient(ClientBase):
    """Serves one deployment through the HELM client class it names, built by HELM's ``AutoClient``.

    Constructing it is cheap: the HELM class is built on the first ``generate``, so a run whose
    answers are all cached never builds it.
    """

    def __init__(self, deployment: ModelDeployment, credentials: Credentials) -> None:
        concurrency = deployment.client_spec.args.get("concurrency", DEFAULT_CONCURRENCY)
        if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
            raise ConfigError("must be an integer >= 1", field="client_spec.args.concurrency")
        self.deployment = deployment
        self.class_name = deployment.client_spec.class_name
        self.helm_args = {k: v for k, v in deployment.client_spec.args.items() if k not in OWN_ARGS}
        self.concurrency = concurrency
        self.batch_hint = concurrency
        self._credentials = helm_credentials(deployment, credentials)
        self._redactor = Redactor([v for v in self._credentials.values() if isinstance(v, str)]
                                  + [str(self.helm_args.get("api_key") or "")])
        self._auto: Any = None
        self._building = threading.Lock()

    def __repr__(self) -> str:
        return f"HelmBridgeClient({self.deployment.name!r}, {self.class_name!r})"

    def identity(self) -> dict[str, Any]:
        """HELM's class, its args (never a key), the model and crfm-helm's version: HELM's code
        shapes each request, so a new crfm-helm is a new cache identity."""
        args = {k: v for k, v in self.helm_args.items() if k != "api_key"}
        return {"class": "pytest_llmeval.clients.HelmBridgeClient", "helm_class": self.class_name,
                "args": self._redactor.value(args), "model": self.deployment.model_name,
                "crfm_helm": helm_version()}

    def auto_client(self) -> Any:
        """HELM's ``AutoClient`` with the deployment's client built in it (once, in this thread,
        before any request runs concurrently); a class that cannot be built is one clear error."""
        with self._building:
            if self._auto is None:
                self._auto = self._build()
            return self._auto

    def _build(self) -> Any:
        where = {"file": self.deployment.source, "entry": self.deployment.name}
        reason = unbuildable_reason(self.class_name)
        if reason:
            raise ConfigError(f"{self.class_name} {reason}", field="client_spec.class_name", **where)
        from helm.clients.auto_client import AutoClient
        from helm.common.cache_backend_config import BlackHoleCacheBackendConfig

        _register(self.deployment, self.helm_args)
        auto = AutoClient(self._credentials, _file_storage(self.deployment), BlackHoleCacheBackendConfig())
        try:
            auto._get_client(self.deployment.name)  # HELM's factory: injects cache config, api_key, tokenizer, ...
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"crfm-helm cannot import {self.class_name}: {self._describe(exc)}",
                              field="client_spec.class_name", **where) from exc
        except TypeError as exc:
            raise ConfigError(f"do not fit {self.class_name}: {self._describe(exc)}", field="client_spec.args",
                              **where) from exc
        except Exception as exc:
            raise ClientError(f"{self.deployment.name}: crfm-helm could not build {self.class_name}: "
                              f"{self._describe(exc)}") from exc
        return auto

    def generate(self, requests: Sequence[Request]) -> list[RequestResult]:
        """One result per request, in order, ``concurrency`` at a time; failures come back unsuccessful."""
        if not requests:
            return []
        auto = self.auto_client()
        return map_concurrently(functools.partial(self._run, auto), requests, self.concurrency, "llmeval-helm")

    def _run(self, auto: Any, request: Request) -> RequestResult:
        started_at, started = int(time.time()), time.perf_counter()
        helm_request = to_helm_request(request, self.deployment)
        raw_request = self._redactor.value(dataclasses.asdict(helm_request))
        try:
            result = auto.make_request(helm_request)
        except Exception as exc:  # HELM's client raised past its retries: this request fails, the others count
            return RequestResult(success=False, error=f"{self.deployment.name}: {self.class_name} raised "
                                 f"{self._describe(exc)}", request_time=time.perf_counter() - started,
                                 request_datetime=started_at, raw_request=raw_request)
        answer = from_helm_result(result, raw_request, self._redactor)
        if answer.request_time is None:
            answer.request_time = time.perf_counter() - started
        if answer.request_datetime is None:
            answer.request_datetime = started_at
        return self._redactor.result(answer)  # a server may echo the key HELM's class sent

    def _describe(self, exc: BaseException) -> str:
        first = (str(exc).strip().splitlines() or [""])[0]
        return self._redactor.text(f"{type(exc).__name__}: {first}" if first else type(exc).__name__)
