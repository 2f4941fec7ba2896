"""HELM's client classes this plugin serves with its own backends, and how their ``args`` translate.

One row per HELM ``class_name`` (crfm-helm 0.5.16's ``helm/clients/``): the Hugging Face
client and every client that speaks the OpenAI HTTP protocol (subclasses of HELM's
``OpenAIClient`` and Together's OpenAI-compatible endpoint), with the base URL and the
model-name rule HELM's class uses. A deployment from HELM's own ``model_deployments.yaml``
then reaches the same endpoint with the same model name. Classes that need their vendor's SDK
(Anthropic, Vertex AI, Bedrock, Mistral's SDK, Azure's URL scheme, ...) are not rows: their
deployments need crfm-helm itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

HF = "huggingface"
OPENAI = "openai_compatible"

# What HELM's OpenAI-protocol classes send as ``model`` when no model argument is given.
ENGINE = "engine"  # the model name after its first "/" (HELM's ``request.model_engine``)
NAME = "name"  # the whole model name (HELM's ``request.model``)


@dataclass(frozen=True)
class HelmClient:
    """One HELM client class: the backend that serves it here and what its arguments mean."""

    backend: str
    api: str | None = None  # "chat" or "completions" for an OpenAI-protocol class
    base_url: str | None = None  # HELM's fixed endpoint; None: ``args.base_url``
    model_arg: str | None = None  # HELM's argument naming the served model
    sends: str = ENGINE  # without ``model_arg``
    request_args: tuple[str, ...] = ()  # HELM arguments sent as request fields (``reasoning_effort``)
    helm_only_args: tuple[str, ...] = ()  # arguments only crfm-helm's own code implements


_OPENAI_ONLY = ("output_processor",)

HELM_CLIENTS: Mapping[str, HelmClient] = MappingProxyType({
    "helm.clients.huggingface_client.HuggingFaceClient": HelmClient(HF),
    "helm.clients.openai_client.OpenAIClient": HelmClient(
        OPENAI, "chat", "https://api.openai.com/v1", "openai_model_name", ENGINE, ("reasoning_effort",), _OPENAI_ONLY),
    "helm.clients.openai_client.OpenAILegacyCompletionsClient": HelmClient(
        OPENAI, "completions", "https://api.openai.com/v1", "openai_model_name", ENGINE, (), _OPENAI_ONLY),
    "helm.clients.vllm_client.VLLMClient": HelmClient(OPENAI, "completions", None, "vllm_model_name", ENGINE),
    "helm.clients.vllm_client.VLLMChatClient": HelmClient(OPENAI, "chat", None, "vllm_model_name", ENGINE),
    # Together's /v1 endpoints are OpenAI's protocol; HELM sends the whole model name there.
    "helm.clients.together_client.TogetherClient": HelmClient(
        OPENAI, "completions", "https://api.together.xyz/v1", "together_model", NAME),
    "helm.clients.together_client.TogetherChatClient": HelmClient(
        OPENAI, "chat", "https://api.together.xyz/v1", "together_model", NAME, ("reasoning_effort",),
        ("output_processor", "parse_thinking")),
    "helm.clients.grok_client.GrokChatClient": HelmClient(OPENAI, "chat", "https://api.x.ai/v1"),
    "helm.clients.nvidia_nim_client.NvidiaNimClient": HelmClient(
        OPENAI, "chat", "https://integrate.api.nvidia.com/v1", None, NAME),
    "helm.clients.openrouter_client.OpenRouterClient": HelmClient(
        OPENAI, "chat", "https://openrouter.ai/api/v1", "model_name", NAME, (), _OPENAI_ONLY),
    "helm.clients.upstage_client.UpstageChatClient": HelmClient(OPENAI, "chat", "https://api.upstage.ai/v1/solar"),
    "helm.clients.yi_client.YiChatClient": HelmClient(OPENAI, "chat", "http://api.01ww.xyz/v1"),
    "helm.clients.palmyra_client.PalmyraChatClient": HelmClient(OPENAI, "chat", "https://api.writer.com/v1/chat"),
})

# Arguments HELM's classes take that change nothing here: OpenRouter's model override is
# ``model_name`` (HELM ignores ``openrouter_model_name`` when sending).
_IGNORED = {"helm.clients.openrouter_client.OpenRouterClient": ("openrouter_model_name",)}


def helm_only_arg(class_name: str, args: Mapping[str, Any]) -> str | None:
    """The first argument of ``args`` that only crfm-helm's own class implements, if any."""
    row = HELM_CLIENTS.get(class_name)
    if row is None:
        return None
    return next((name for name in row.helm_only_args if args.get(name)), None)


def huggingface_args(args: Mapping[str, Any], model_name: str) -> dict[str, Any]:
    """HELM's HuggingFaceClient arguments as this plugin's client takes them.

    ``quantization_config`` (a BitsAndBytesConfig mapping) is ``quantization``. The client
    answers as HELM's does (``answers: helm``: log-probabilities at HELM's temperature, its
    stopping and ``truncate_sequence``, no finish reason), so the deployment gives
    ``helm-run``'s numbers; ``end_of_text_token`` is where HELM's truncation cuts (by default
    the tokenizer's end-of-sequence token, as HELM's tokenizer configs have it).
    """
    out = dict(args)
    out.setdefault("pretrained_model_name_or_path", model_name)
    if "quantization_config" in out:
        out.setdefault("quantization", out.pop("quantization_config"))
    out.setdefault("answers", "helm")
    return out


def openai_args(class_name: str, args: Mapping[str, Any], model_name: str) -> dict[str, Any]:
    """A HELM OpenAI-protocol class's arguments as :class:`OpenAICompatibleClient` takes them.

    ``base_url`` and ``api`` come from HELM's class (``args.base_url`` may point a fixed-URL
    class elsewhere, e.g. at a proxy); ``model`` from HELM's model argument, else HELM's rule.
    Other arguments are this plugin's own (``concurrency``, ``timeout``, ...).
    """
    row = HELM_CLIENTS[class_name]
    out = {k: v for k, v in args.items() if k not in _IGNORED.get(class_name, ())}
    if row.base_url is not None:
        out.setdefault("base_url", row.base_url)
    if row.api is not None:
        out.setdefault("api", row.api)
    named = out.pop(row.model_arg, None) if row.model_arg else None
    if named:
        out.setdefault("model", named)
    elif row.sends == ENGINE:
        parts = model_name.split("/")
        out.setdefault("model", parts[1] if len(parts) > 1 else model_name)
    else:
        out.setdefault("model", model_name)
    extra = {name: out.pop(name) for name in row.request_args if out.get(name) is not None}
    if out.pop("disable_logprobs", False):
        extra.update(logprobs=None, top_logprobs=None)  # None removes the field from every request
    if extra:
        out["extra_body"] = {**extra, **dict(out.get("extra_body") or {})}
    return out
