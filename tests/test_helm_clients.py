"""HELM's client classes served by the plugin's own backends: endpoints, model names, arguments,
credentials, and which deployments need crfm-helm itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.clients import hf_loading, make_client
from pytest_llmeval.clients.credentials import Credentials
from pytest_llmeval.clients.factory import BUILTIN_BACKENDS, unbuildable_reason
from pytest_llmeval.clients.helm_clients import HELM_CLIENTS
from pytest_llmeval.clients.huggingface import HuggingFaceClient
from pytest_llmeval.clients.openai_compatible import OpenAICompatibleClient
from pytest_llmeval.errors import ConfigError
from pytest_llmeval.registry import ModelDeployment, ObjectSpec
from pytest_llmeval.requests import Request
from tests.test_openai_compatible import ScriptedServer

SOURCE = "/prod_env/model_deployments.yaml"
SECRET = "sk-helm-clients-test-0123456789"


def _deployment(class_name: str, args: dict[str, Any] | None = None, name: str = "host/engine-1",
                model_name: str = "creator/engine-1") -> ModelDeployment:
    return ModelDeployment(name=name, model_name=model_name, client_spec=ObjectSpec(class_name, dict(args or {})),
                           source=SOURCE)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("OPENAI_API_KEY", "TOGETHER_API_KEY", "HOST_API_KEY", "OPENROUTER_API_KEY"):
        monkeypatch.delenv(name, raising=False)

    def no_loading(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("constructing a client must not load a model or tokenizer")

    monkeypatch.setattr(hf_loading, "load_model", no_loading)
    monkeypatch.setattr(hf_loading, "load_tokenizer", no_loading)


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    scripted = ScriptedServer()
    try:
        yield scripted
    finally:
        scripted.close()


def _openai(deployment: ModelDeployment, credentials: Credentials | None = None) -> OpenAICompatibleClient:
    client = make_client(deployment, credentials or Credentials())
    assert isinstance(client, OpenAICompatibleClient)
    return client


# crfm-helm 0.5.16: each class's endpoint, API and the model it sends without a model argument
# ("engine": the model name after its first "/", "name": the whole model name).
HELM_ENDPOINTS = [
    ("helm.clients.openai_client.OpenAIClient", "https://api.openai.com/v1", "chat", "engine-1"),
    ("helm.clients.openai_client.OpenAILegacyCompletionsClient", "https://api.openai.com/v1", "completions",
     "engine-1"),
    ("helm.clients.together_client.TogetherClient", "https://api.together.xyz/v1", "completions", "creator/engine-1"),
    ("helm.clients.together_client.TogetherChatClient", "https://api.together.xyz/v1", "chat", "creator/engine-1"),
    ("helm.clients.grok_client.GrokChatClient", "https://api.x.ai/v1", "chat", "engine-1"),
    ("helm.clients.nvidia_nim_client.NvidiaNimClient", "https://integrate.api.nvidia.com/v1", "chat",
     "creator/engine-1"),
    ("helm.clients.openrouter_client.OpenRouterClient", "https://openrouter.ai/api/v1", "chat", "creator/engine-1"),
    ("helm.clients.upstage_client.UpstageChatClient", "https://api.upstage.ai/v1/solar", "chat", "engine-1"),
    ("helm.clients.yi_client.YiChatClient", "http://api.01ww.xyz/v1", "chat", "engine-1"),
    ("helm.clients.palmyra_client.PalmyraChatClient", "https://api.writer.com/v1/chat", "chat", "engine-1"),
]


@pytest.mark.parametrize(("class_name", "base_url", "api", "model"), HELM_ENDPOINTS)
def test_helm_openai_protocol_classes(class_name: str, base_url: str, api: str, model: str) -> None:
    assert class_name in BUILTIN_BACKENDS and unbuildable_reason(_deployment(class_name)) is None
    client = _openai(_deployment(class_name))
    assert (client.base_url, client.api, client.model) == (base_url.rstrip("/"), api, model)


def test_every_table_row_is_tested() -> None:
    tested = {row[0] for row in HELM_ENDPOINTS} | {"helm.clients.huggingface_client.HuggingFaceClient",
                                                   "helm.clients.vllm_client.VLLMClient",
                                                   "helm.clients.vllm_client.VLLMChatClient"}
    assert set(HELM_CLIENTS) == tested


@pytest.mark.parametrize(("class_name", "arg"), [
    ("helm.clients.openai_client.OpenAIClient", "openai_model_name"),
    ("helm.clients.together_client.TogetherClient", "together_model"),
    ("helm.clients.together_client.TogetherChatClient", "together_model"),
    ("helm.clients.vllm_client.VLLMChatClient", "vllm_model_name"),
    ("helm.clients.openrouter_client.OpenRouterClient", "model_name"),
])
def test_helm_model_argument_names_the_served_model(class_name: str, arg: str) -> None:
    client = _openai(_deployment(class_name, {arg: "served/Model-X", "base_url": "http://127.0.0.1:9/v1"}))
    assert client.model == "served/Model-X"


def test_vllm_needs_a_base_url() -> None:
    with pytest.raises(ConfigError) as excinfo:
        make_client(_deployment("helm.clients.vllm_client.VLLMClient"), Credentials())
    assert (excinfo.value.file, excinfo.value.entry, excinfo.value.field) == (
        SOURCE, "host/engine-1", "client_spec.args.base_url")


def test_base_url_from_args_or_credentials() -> None:
    together = _deployment("helm.clients.together_client.TogetherClient", {"base_url": "http://127.0.0.1:9/v1"})
    assert _openai(together).base_url == "http://127.0.0.1:9/v1"
    # HELM's <host>BaseUrl credential (as HELM's OpenAIClient reads openaiBaseUrl); args win over it
    credentials = Credentials(values={"hostBaseUrl": "http://127.0.0.1:8/v1"})
    assert _openai(_deployment("helm.clients.openai_client.OpenAIClient"), credentials).base_url == \
        "http://127.0.0.1:8/v1"
    assert _openai(together, credentials).base_url == "http://127.0.0.1:9/v1"


def test_helm_credential_names() -> None:
    for key_name, class_name, deployment_name in (
            ("togetherApiKey", "helm.clients.together_client.TogetherChatClient", "together/m"),
            ("openrouterApiKey", "helm.clients.openrouter_client.OpenRouterClient", "openrouter/m")):
        deployment = _deployment(class_name, name=deployment_name)
        client = _openai(deployment, Credentials(values={key_name: SECRET}))
        assert client._auth is not None and SECRET not in repr(client)


def test_request_arguments_reach_the_request() -> None:
    deployment = _deployment("helm.clients.together_client.TogetherChatClient",
                             {"reasoning_effort": "low", "disable_logprobs": True})
    body = _openai(deployment).build_body(Request("x", prompt="hi", max_tokens=3, top_k_per_token=5))
    assert body["reasoning_effort"] == "low"
    assert "logprobs" not in body and "top_logprobs" not in body  # HELM's disable_logprobs
    plain = _openai(_deployment("helm.clients.together_client.TogetherChatClient"))
    assert plain.build_body(Request("x", prompt="hi", max_tokens=3, top_k_per_token=5))["logprobs"] is True


def test_huggingface_args_translate() -> None:
    deployment = _deployment("helm.clients.huggingface_client.HuggingFaceClient", {
        "pretrained_model_name_or_path": "org/repo", "revision": "abc", "torch_dtype": "torch.float16",
        "device_map": "auto", "trust_remote_code": True, "apply_chat_template": False,
        "quantization_config": {"load_in_4bit": True}, "attn_implementation": "sdpa",
        "end_of_text_token": "<|endoftext|>"})
    client = make_client(deployment, Credentials())
    assert isinstance(client, HuggingFaceClient)
    assert (client.source.path, client.source.revision, client.torch_dtype) == ("org/repo", "abc", "float16")
    assert client.quantization == {"load_in_4bit": True} and client.attn_implementation == "sdpa"
    assert client.apply_chat_template is False and client.trust_remote_code is True
    # HELM's answer rules, with its end_of_text_token as the truncation token
    assert client.answers == "helm" and client.end_of_text_token == "<|endoftext|>"


# --- what needs crfm-helm ----------------------------------------------------------------------------


def test_unbuildable_reason() -> None:
    claude = _deployment("helm.clients.anthropic_client.AnthropicMessagesClient")
    assert unbuildable_reason(claude) == "the client class needs crfm-helm (pip install 'pytest-llmeval[helm]')"
    thinking = _deployment("helm.clients.together_client.TogetherChatClient", {"parse_thinking": True})
    assert "client_spec.args.parse_thinking needs crfm-helm" in str(unbuildable_reason(thinking))
    assert unbuildable_reason(_deployment("helm.clients.together_client.TogetherChatClient",
                                          {"parse_thinking": False})) is None
    assert "cannot be imported" in str(unbuildable_reason(_deployment("no_such_module_here:generate")))
    assert unbuildable_reason(_deployment("pytest_llmeval.clients.OpenAICompatibleClient")) is None


def test_building_an_unbuildable_class_is_one_line() -> None:
    with pytest.raises(ConfigError) as excinfo:
        make_client(_deployment("helm.clients.anthropic_client.AnthropicMessagesClient"), Credentials())
    error = excinfo.value
    assert (error.file, error.entry, error.field) == (SOURCE, "host/engine-1", "client_spec.class_name")
    assert "helm.clients.anthropic_client.AnthropicMessagesClient" in str(error) and "crfm-helm" in str(error)
    assert "\n" not in str(error)


# --- on a real HTTP server ---------------------------------------------------------------------------


def test_together_client_answers_from_a_loopback_server(server: ScriptedServer) -> None:
    deployment = _deployment("helm.clients.together_client.TogetherClient", {"base_url": server.base_url},
                             name="together/llama-7b", model_name="meta/llama-7b")
    client = _openai(deployment, Credentials(values={"togetherApiKey": SECRET}))
    [result] = client.generate([Request("together/llama-7b", prompt="Answer:", max_tokens=2)])
    assert result.success and result.completions[0].text == "echo: Answer:"
    [seen] = server.seen
    assert seen.path == "/v1/completions"
    assert seen.body["model"] == "meta/llama-7b" and seen.body["prompt"] == "Answer:"
    assert seen.headers["authorization"] == f"Bearer {SECRET}"
