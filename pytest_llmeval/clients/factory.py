"""From a deployment's ``client_spec`` to a ready client, with credentials filled in.

HELM's own class names are understood too, so an existing ``model_deployments.yaml`` works.
Anything else must be an importable Python object honouring the ``generate`` contract.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pytest_llmeval.clients.credentials import Credentials
from pytest_llmeval.clients.protocol import Capabilities, Client, client_identity
from pytest_llmeval.errors import ConfigError
from pytest_llmeval.registry.entries import ModelDeployment

if TYPE_CHECKING:
    from pytest_llmeval.clients.huggingface import HuggingFaceClient

HF = "huggingface"
OPENAI = "openai_compatible"

# class_name -> (backend, default args)
KNOWN_CLASSES: dict[str, tuple[str, dict[str, Any]]] = {
    "pytest_llmeval.clients.HuggingFaceClient": (HF, {}),
    "helm.clients.huggingface_client.HuggingFaceClient": (HF, {}),
    "pytest_llmeval.clients.OpenAICompatibleClient": (OPENAI, {}),
    "helm.clients.openai_client.OpenAIClient": (OPENAI, {"base_url": "https://api.openai.com/v1"}),
    "helm.clients.together_client.TogetherClient": (OPENAI, {"base_url": "https://api.together.xyz/v1"}),
    "helm.clients.together_client.TogetherChatClient": (OPENAI, {"base_url": "https://api.together.xyz/v1"}),
    "helm.clients.vllm_client.VLLMClient": (OPENAI, {"api": "completions"}),
    "helm.clients.vllm_client.VLLMChatClient": (OPENAI, {"api": "chat"}),
}

# HELM's own argument naming the served model, per HELM class. Without it HELM sends the model
# name, except that OpenAIClient drops the creator prefix ("openai/gpt-4o" -> "gpt-4o").
HELM_MODEL_ARGS = {
    "helm.clients.openai_client.OpenAIClient": "openai_model_name",
    "helm.clients.together_client.TogetherClient": "together_model",
    "helm.clients.together_client.TogetherChatClient": "together_model",
    "helm.clients.vllm_client.VLLMClient": "vllm_model_name",
    "helm.clients.vllm_client.VLLMChatClient": "vllm_model_name",
}
HELM_MODEL_ENGINE_CLASSES = ("helm.clients.openai_client.OpenAIClient",)

# clembench backends whose endpoint is fixed; the others take ``base_url`` from key.json.
CLEMBENCH_BASE_URLS = {"openai": "https://api.openai.com/v1"}


def _locate(deployment: ModelDeployment) -> tuple[str, Any]:
    """Which backend serves the deployment, or the imported user object."""
    class_name = deployment.client_spec.class_name
    if class_name in KNOWN_CLASSES:
        return KNOWN_CLASSES[class_name][0], None
    from pytest_llmeval.clients.python_callable import import_object

    try:
        return "callable", import_object(class_name)
    except (ImportError, AttributeError) as exc:
        supported = ", ".join(sorted(KNOWN_CLASSES))
        raise ConfigError(
            f"unknown client class {class_name!r} ({exc}). Use one of {supported}, or an importable "
            f"'module:function' whose generate(requests) follows the Python client contract",
            file=deployment.source, entry=deployment.name, field="client_spec.class_name",
        ) from exc


def check_client_spec(deployment: ModelDeployment) -> None:
    """Fail at start-up, not mid-run, when a selected deployment cannot be served."""
    _locate(deployment)


def identity_for(deployment: ModelDeployment, credentials: Credentials,
                 build: Callable[[], Client] | None = None) -> dict[str, Any] | None:
    """The cache identity, known without building a user's client (which may load a model).

    Built-in clients are cheap to construct (they load weights on first use), so they answer
    for themselves (``build`` hands over the one the caller will also use); a user's callable
    is identified by its spec.
    """
    backend, _ = _locate(deployment)
    if backend == "callable":
        return {"callable": deployment.client_spec.class_name, "args": deployment.client_spec.args}
    return client_identity(build() if build is not None else make_client(deployment, credentials))


def capabilities_for(deployment: ModelDeployment, build: Callable[[], Client]) -> Capabilities:
    """What the deployment's client can do, known without building a user's client; built-in
    clients (cheap to construct) answer for themselves."""
    backend, _ = _locate(deployment)
    return Capabilities() if backend == "callable" else build().capabilities()


def load_tokenizer(tokenizer_args: dict[str, Any], counting: bool = False) -> Any:
    """The tokenizer a tokenizer config names (HELM's ``tokenizer_spec``: a Hugging Face
    tokenizer); ``counting``: token ids only, without transformers where possible."""
    from pytest_llmeval.clients.huggingface import HuggingFaceTokenizer

    tokenizer = HuggingFaceTokenizer(**tokenizer_args)
    return tokenizer.counter() if counting else tokenizer.load()


def local_chat_client(deployment: ModelDeployment) -> HuggingFaceClient:
    """The deployment's local client, whose chat rendering ``llmeval-check-model`` checks;
    constructing it loads nothing. Any other backend is a ConfigError."""
    if KNOWN_CLASSES.get(deployment.client_spec.class_name, ("",))[0] != HF:
        raise ConfigError(
            f"is served by {deployment.client_spec.class_name}; the check reads a Hugging Face tokenizer, so "
            f"it works on HuggingFaceClient deployments only. Check 'huggingface/{deployment.model_name}' "
            f"instead", file=deployment.source, entry=deployment.name, field="client_spec.class_name")
    from pytest_llmeval.clients.huggingface import HuggingFaceClient

    client = make_client(deployment, Credentials())
    assert isinstance(client, HuggingFaceClient)
    return client


def make_client(deployment: ModelDeployment, credentials: Credentials) -> Client:
    backend, target = _locate(deployment)
    spec = deployment.client_spec
    args = {**KNOWN_CLASSES.get(spec.class_name, ("", {}))[1], **spec.args}
    try:
        if backend == HF:
            from pytest_llmeval.clients.huggingface import HuggingFaceClient

            args.setdefault("pretrained_model_name_or_path", deployment.model_name)
            return HuggingFaceClient(**args)
        if backend == OPENAI:
            from pytest_llmeval.clients.openai_compatible import OpenAICompatibleClient

            helm_model = args.pop(HELM_MODEL_ARGS.get(spec.class_name, ""), None)
            if helm_model:
                args.setdefault("model", helm_model)
            if spec.class_name in HELM_MODEL_ENGINE_CLASSES:
                args.setdefault("model", deployment.model_name.split("/", 1)[-1])
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
        from pytest_llmeval.clients.python_callable import CallableClient

        return CallableClient(target, args, name=spec.class_name, deployment=deployment.name)
    except ConfigError as exc:
        raise exc.located(file=deployment.source, entry=deployment.name) from exc
    except TypeError as exc:
        raise ConfigError(f"does not fit the client: {exc}", file=deployment.source, entry=deployment.name,
                          field="client_spec.args") from exc
