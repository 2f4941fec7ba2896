"""HELM's model deployment generators: a deployment made from its name when no file lists it.

crfm-helm 0.5.16 (``helm/benchmark/model_deployments/``) makes ``together/<org>/<model>``,
``openrouter/...``, ``anthropic/...`` and others on the fly; helm-run also falls back to them for
a model with no deployment of its own (``cohere/command`` -> the ``cohere`` generator). Whether
the plugin can then build the client is :func:`~pytest_llmeval.clients.factory.unbuildable_reason`'s
call. ``huggingface/<org>/<repo>`` and checkpoint folders are :meth:`Registry._on_the_fly`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pytest_llmeval.registry.entries import ModelDeployment, ObjectSpec

_Args = Callable[[list[str]], "dict[str, Any] | None"]


def _google(parts: list[str]) -> dict[str, Any] | None:
    return {"genai_model": parts[-1] if parts[-2] == "google" else "/".join(parts[-2:])}


def _gemini(parts: list[str]) -> dict[str, Any] | None:
    if len(parts) < 3 or parts[-2] != "google":
        return None  # HELM: "Model name must be in the format gemini/google/model"
    return {"genai_model": parts[-1], "genai_use_vertexai": False}


def _vertexai(parts: list[str]) -> dict[str, Any] | None:
    if len(parts) < 3:
        return None  # HELM: "Model name must be in the format vertexai/publisher/model"
    return {"genai_model": parts[-1] if parts[-2] == "google" else "/".join(parts[-2:]), "genai_use_vertexai": True}


def _no_args(parts: list[str]) -> dict[str, Any] | None:
    return {}


# prefix -> (HELM client class, its args from the name's parts)
GENERATORS: dict[str, tuple[str, _Args]] = {
    "anthropic": ("helm.clients.anthropic_client.AnthropicMessagesClient", _no_args),
    "cohere": ("helm.clients.cohere_client.CohereChatClient", _no_args),
    "google": ("helm.clients.google_genai_client.GoogleGenAIClient", _google),
    "gemini": ("helm.clients.google_genai_client.GoogleGenAIClient", _gemini),
    "vertexai": ("helm.clients.google_genai_client.GoogleGenAIClient", _vertexai),
    "huggingface-inference-providers": (
        "helm.clients.huggingface_inference_providers_client.HuggingFaceInferenceProvidersClient", _no_args),
    "litellm": ("helm.clients.litellm_client.LiteLLMCompletionClient",
                lambda parts: {"litellm_model": "/".join(parts[1:])}),
    "mistralai": ("helm.clients.mistral_client.MistralAIClient", _no_args),
    "openai": ("helm.clients.openai_responses_client.OpenAIResponseClient", _no_args),
    "openrouter": ("helm.clients.openrouter_client.OpenRouterClient",
                   lambda parts: {"openrouter_model_name": "/".join(parts[-2:])}),
    "together": ("helm.clients.together_client.TogetherChatClient", _no_args),
    "writer": ("helm.clients.writer_client.WriterClient", _no_args),
    "xai": ("helm.clients.grok_client.GrokChatClient", _no_args),
}


def generated_deployment(name: str) -> ModelDeployment | None:
    """The deployment HELM's generator for ``name``'s prefix makes, or None."""
    parts = name.split("/")
    if len(parts) < 2 or parts[0] not in GENERATORS or not all(parts):
        return None
    class_name, make_args = GENERATORS[parts[0]]
    args = make_args(parts)
    if args is None:
        return None
    tokenizer = None
    if parts[0] == "huggingface-inference-providers":
        tokenizer = "huggingface/" + "/".join(parts[1:]).split(":")[0]
    return ModelDeployment(name=name, model_name="/".join(parts[-2:]), client_spec=ObjectSpec(class_name, args),
                           tokenizer_name=tokenizer, source="<generated>")
