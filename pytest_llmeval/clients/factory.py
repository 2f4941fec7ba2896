"""From a deployment's ``client_spec`` to a ready client, with credentials filled in.

HELM's own class names are understood too (``helm_clients.py``), so an existing
``model_deployments.yaml`` works; :func:`unbuildable_reason` says which deployments need
crfm-helm itself.
Which class names select which backend is the session's ``clients`` registry (the built-ins
below, plus packages' ``pytest_llmeval.clients`` entry points and plugins). Anything else must
be an importable Python object honouring the ``generate`` contract.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from pytest_llmeval.clients.credentials import Credentials
from pytest_llmeval.clients.helm_bridge import HelmBridgeClient, is_helm_client_class
from pytest_llmeval.clients.helm_bridge import unbuildable_reason as bridge_reason
from pytest_llmeval.clients.helm_clients import (
    HELM_CLIENTS,
    HF,
    OPENAI,
    helm_only_arg,
    huggingface_args,
    openai_args,
)
from pytest_llmeval.clients.hf_loading import WeightsSource, resolve_source
from pytest_llmeval.clients.protocol import Capabilities, Client, client_identity
from pytest_llmeval.errors import ConfigError
from pytest_llmeval.registry.entries import ModelDeployment, TokenizerConfig

if TYPE_CHECKING:
    from pytest_llmeval.clients.huggingface import HuggingFaceClient

CALLABLE = "callable"
HELM_BRIDGE = "helm_bridge"  # any other helm.clients.* class, run by crfm-helm's own code
CLEMCORE = "clemcore"  # a clembench registry entry on one of clemcore's own backends
# What a deployment whose class only crfm-helm implements needs.
HELM_HINT = "pip install 'pytest-llmeval[helm]'"


@dataclass(frozen=True)
class ClientBackend:
    """What a ``client_spec.class_name`` selects: a built-in backend with default arguments, or
    (``callable``) a Python object honouring the ``generate`` contract, as ``module:function`` would."""

    backend: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    target: Any = None


# The built-in class names (read-only); a session's ``clients`` registry starts with these:
# the plugin's own two and HELM's classes that speak a protocol it serves (helm_clients.py).
BUILTIN_BACKENDS: Mapping[str, ClientBackend] = MappingProxyType({
    "pytest_llmeval.clients.HuggingFaceClient": ClientBackend(HF),
    "pytest_llmeval.clients.OpenAICompatibleClient": ClientBackend(OPENAI),
    "pytest_llmeval.clients.ClemcoreBackendClient": ClientBackend(CLEMCORE),
    **{name: ClientBackend(row.backend) for name, row in HELM_CLIENTS.items()},
})
Backends = Mapping[str, ClientBackend]

# HELM's own argument naming the served model, per HELM class (see helm_clients.py for the
# rule each class follows without it).
HELM_MODEL_ARGS = {name: row.model_arg for name, row in HELM_CLIENTS.items() if row.model_arg}

# clembench backends whose endpoint is fixed; the others take ``base_url`` from key.json.
CLEMBENCH_BASE_URLS = {"openai": "https://api.openai.com/v1"}


def unbuildable_reason(deployment: ModelDeployment, backends: Backends = BUILTIN_BACKENDS) -> str | None:
    """Why this plugin cannot build the deployment's client, or None when it can.

    The one place that decides: model groups skip such deployments, a deployment named
    explicitly fails with this reason. The reason names no deployment, so equal reasons group.
    """
    spec = deployment.client_spec
    if spec.class_name in backends:
        if backends[spec.class_name].backend == CLEMCORE:
            from pytest_llmeval.clients.clemcore_backend import CLEMCORE_HINT, clemcore_version

            return None if clemcore_version() else f"needs clemcore ({CLEMCORE_HINT})"
        arg = helm_only_arg(spec.class_name, spec.args)
        return f"client_spec.args.{arg} needs crfm-helm ({HELM_HINT})" if arg else None
    if is_helm_client_class(spec.class_name):  # served by crfm-helm's own code, when installed
        bridge = bridge_reason(spec.class_name)
        return f"the client class {bridge}" if bridge else None
    if spec.class_name.startswith("helm."):
        return f"the client class needs crfm-helm ({HELM_HINT})"
    from pytest_llmeval.clients.python_callable import import_object

    try:
        import_object(spec.class_name)
    except (ImportError, AttributeError) as exc:
        return f"the client class cannot be imported ({exc})"
    return None


def _locate(deployment: ModelDeployment, backends: Backends) -> tuple[str, Any]:
    """Which backend serves the deployment, or the imported user object."""
    class_name = deployment.client_spec.class_name
    reason = unbuildable_reason(deployment, backends)
    if reason is not None and (class_name in backends or class_name.startswith("helm.")):
        raise ConfigError(f"{class_name}: {reason}", file=deployment.source, entry=deployment.name,
                          field="client_spec.class_name")
    if class_name in backends:
        return backends[class_name].backend, backends[class_name].target
    if is_helm_client_class(class_name):
        return HELM_BRIDGE, None
    from pytest_llmeval.clients.python_callable import import_object

    try:
        return CALLABLE, import_object(class_name)
    except (ImportError, AttributeError) as exc:
        supported = ", ".join(sorted(backends))
        raise ConfigError(
            f"unknown client class {class_name!r} ({exc}). Use one of {supported}, or an importable "
            f"'module:function' whose generate(requests) follows the Python client contract",
            file=deployment.source, entry=deployment.name, field="client_spec.class_name",
        ) from exc


def check_client_spec(deployment: ModelDeployment, backends: Backends = BUILTIN_BACKENDS) -> None:
    """Fail at start-up, not mid-run, when a selected deployment cannot be served."""
    _locate(deployment, backends)


def backend_of(deployment: ModelDeployment, backends: Backends = BUILTIN_BACKENDS) -> str:
    """The backend a deployment's class name selects (``callable`` for anything else)."""
    known = backends.get(deployment.client_spec.class_name)
    if known is None and is_helm_client_class(deployment.client_spec.class_name):
        return HELM_BRIDGE
    return known.backend if known is not None else CALLABLE


def identity_for(deployment: ModelDeployment, credentials: Credentials,
                 build: Callable[[], Client] | None = None,
                 backends: Backends = BUILTIN_BACKENDS) -> dict[str, Any] | None:
    """The cache identity, known without building a user's client (which may load a model).

    Built-in clients are cheap to construct (they load weights on first use), so they answer
    for themselves (``build`` hands over the one the caller will also use); a user's callable
    is identified by its spec.
    """
    backend, _ = _locate(deployment, backends)
    if backend == CALLABLE:
        return {"callable": deployment.client_spec.class_name, "args": deployment.client_spec.args}
    return client_identity(build() if build is not None else make_client(deployment, credentials, backends))


def capabilities_for(deployment: ModelDeployment, build: Callable[[], Client],
                     backends: Backends = BUILTIN_BACKENDS) -> Capabilities:
    """What the deployment's client can do, known without building a user's client; built-in
    clients (cheap to construct) answer for themselves."""
    backend, _ = _locate(deployment, backends)
    return Capabilities() if backend == CALLABLE else build().capabilities()


# Tokenizer classes read through transformers; HELM's other tokenizers (tiktoken, vendors' APIs)
# are not loaded here, so prompts for their deployments are neither fitted nor counted.
HF_TOKENIZER_CLASSES = ("helm.tokenizers.huggingface_tokenizer.HuggingFaceTokenizer",
                        "pytest_llmeval.clients.HuggingFaceTokenizer")


def load_tokenizer(config: TokenizerConfig, counting: bool = False) -> Any:
    """The tokenizer a tokenizer config names (HELM's ``tokenizer_spec``; the Hub id defaults to
    the config's name, as in HELM); ``counting``: token ids only, without transformers where possible."""
    from pytest_llmeval.clients.huggingface import HuggingFaceTokenizer

    spec = config.tokenizer_spec
    if spec.class_name.strip() not in HF_TOKENIZER_CLASSES:
        raise ConfigError(f"tokenizer class {spec.class_name} is not loaded by pytest-llmeval",
                          entry=config.name, field="tokenizer_spec.class_name")
    tokenizer = HuggingFaceTokenizer(**{"pretrained_model_name_or_path": config.name, **spec.args})
    return tokenizer.counter() if counting else tokenizer.load()


def local_chat_client(deployment: ModelDeployment, backends: Backends = BUILTIN_BACKENDS) -> HuggingFaceClient:
    """The deployment's local client, whose chat rendering ``llmeval-check-model`` checks;
    constructing it loads nothing. Any other backend is a ConfigError."""
    if backend_of(deployment, backends) != HF:
        raise ConfigError(
            f"is served by {deployment.client_spec.class_name}; the check reads a Hugging Face tokenizer, so "
            f"it works on HuggingFaceClient deployments only. Check 'huggingface/{deployment.model_name}' "
            f"instead", file=deployment.source, entry=deployment.name, field="client_spec.class_name")
    from pytest_llmeval.clients.huggingface import HuggingFaceClient

    client = make_client(deployment, Credentials(), backends)
    assert isinstance(client, HuggingFaceClient)
    return client


def _local_args(deployment: ModelDeployment, args: dict[str, Any]) -> dict[str, Any]:
    if deployment.client_spec.class_name in HELM_CLIENTS:
        args = huggingface_args(args, deployment.model_name)
    args.setdefault("pretrained_model_name_or_path", deployment.model_name)
    return args


def gguf_weights(deployment: ModelDeployment, backends: Backends = BUILTIN_BACKENDS) -> WeightsSource | None:
    """The GGUF file a local deployment loads (converted once per machine), found without
    importing torch; None for any other deployment."""
    if backend_of(deployment, backends) != HF:
        return None
    known = backends.get(deployment.client_spec.class_name)
    args = _local_args(deployment, {**(known.defaults if known is not None else {}), **deployment.client_spec.args})
    if not args.get("gguf_file"):
        return None
    return resolve_source(str(args["pretrained_model_name_or_path"]), str(args["gguf_file"]), args.get("revision"))


def make_client(deployment: ModelDeployment, credentials: Credentials, backends: Backends = BUILTIN_BACKENDS) -> Client:
    backend, target = _locate(deployment, backends)
    spec = deployment.client_spec
    known = backends.get(spec.class_name)
    args = {**(known.defaults if known is not None else {}), **spec.args}
    try:
        if backend == HF:
            from pytest_llmeval.clients.huggingface import HuggingFaceClient

            return HuggingFaceClient(**_local_args(deployment, args))
        if backend == OPENAI:
            from pytest_llmeval.clients.openai_compatible import OpenAICompatibleClient

            if spec.class_name in HELM_CLIENTS:
                # HELM's <host>BaseUrl credential, as HELM's OpenAIClient reads openaiBaseUrl
                base_url = credentials.values.get(f"{deployment.host_organization}BaseUrl")
                if base_url and "base_url" not in args:
                    args["base_url"] = base_url
                args = openai_args(spec.class_name, args, deployment.model_name)
            args.setdefault("model", deployment.model_name)
            clembench_backend = args.pop("backend", None)
            if clembench_backend:
                entry = credentials.clembench_entry(clembench_backend)
                base_url = entry.get("base_url") or CLEMBENCH_BASE_URLS.get(clembench_backend)
                if base_url:
                    args.setdefault("base_url", base_url)
            if "api_key" not in args:
                key = credentials.api_key(clembench_backend or deployment.host_organization,
                                          args.pop("api_key_env", None))
                if key:
                    args["api_key"] = key
            else:
                args.pop("api_key_env", None)
            if "base_url" not in args:
                raise ConfigError("is required for an OpenAI-compatible deployment", file=deployment.source,
                                  entry=deployment.name, field="client_spec.args.base_url")
            return OpenAICompatibleClient(**args)
        if backend == HELM_BRIDGE:
            return HelmBridgeClient(deployment, credentials)
        if backend == CLEMCORE:  # clemcore's backends read their own key.json
            from pytest_llmeval.clients.clemcore_backend import ClemcoreBackendClient

            return ClemcoreBackendClient(**args, label=deployment.name)
        from pytest_llmeval.clients.python_callable import CallableClient

        return CallableClient(target, args, name=spec.class_name, deployment=deployment.name)
    except ConfigError as exc:
        raise exc.located(file=deployment.source, entry=deployment.name) from exc
    except TypeError as exc:
        raise ConfigError(f"does not fit the client: {exc}", file=deployment.source, entry=deployment.name,
                          field="client_spec.args") from exc
