"""HELM's tokenizer and metric services, answered by the deployment's own tokenizer.

HELM's adapters and metrics reach a tokenizer through a ``Context`` (``tokenize``, ``decode``)
and a window service that HELM's factory builds from its model-deployment and tokenizer
registries. Here the context answers with the tokenizer our run already uses
(:class:`~pytest_llmeval.adapters.context_window.ContextWindow`: the same ids HELM's
``HuggingFaceTokenizer`` gives, ``encode`` without special tokens), and the deployment and
its tokenizer's special tokens are put into HELM's registries, so the window service HELM
builds has the deployment's limits. Any other service a metric asks for (a judge model,
Perspective API, file uploads) is one clear error naming it.
"""

from __future__ import annotations

import threading
from typing import Any

from pytest_llmeval.errors import ConfigError

_HELM_STATE = threading.Lock()  # HELM's registries are process-global


class OurTokenizerContext:
    """HELM's ``Context``, its tokenizer half, answered by our tokenizer; the rest refuses."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def tokenize(self, request: Any) -> Any:
        from helm.common.tokenization_request import TokenizationRequestResult, TokenizationToken

        ids = list(self.tokenizer.encode(request.text, add_special_tokens=False))
        if request.truncation:
            ids = ids[:request.max_length]
        if request.encode:
            tokens = [TokenizationToken(value=i) for i in ids]
        else:  # token strings, as HELM's HuggingFaceTokenizer gives them
            full = getattr(self.tokenizer, "full", self.tokenizer)
            tokens = [TokenizationToken(value=t) for t in full.convert_ids_to_tokens(ids)]
        return TokenizationRequestResult(success=True, cached=False, text=request.text, tokens=tokens)

    def decode(self, request: Any) -> Any:
        from helm.common.tokenization_request import DecodeRequestResult

        full = getattr(self.tokenizer, "full", self.tokenizer)
        text = full.decode(list(request.tokens), clean_up_tokenization_spaces=request.clean_up_tokenization_spaces)
        return DecodeRequestResult(success=True, cached=False, text=str(text))

    def __getattr__(self, name: str) -> Any:
        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError(f"HELM's {name} service is not available here")

        return refuse


def register_for_helm(deployment: Any, end_of_text_token: str | None, prefix_token: str | None) -> None:
    """The deployment (its name, model, tokenizer and limits) and its tokenizer's special tokens
    in HELM's registries, where HELM's window-service factory looks them up."""
    from helm.benchmark.model_deployment_registry import ClientSpec, register_model_deployment
    from helm.benchmark.model_deployment_registry import ModelDeployment as HelmDeployment
    from helm.benchmark.tokenizer_config_registry import TokenizerConfig, TokenizerSpec, register_tokenizer_config

    with _HELM_STATE:
        if deployment.tokenizer_name:
            register_tokenizer_config(TokenizerConfig(
                name=deployment.tokenizer_name, end_of_text_token=end_of_text_token, prefix_token=prefix_token,
                tokenizer_spec=TokenizerSpec(class_name="helm.tokenizers.huggingface_tokenizer.HuggingFaceTokenizer",
                                             args={})))
        register_model_deployment(HelmDeployment(
            name=deployment.name, model_name=deployment.model_name, tokenizer_name=deployment.tokenizer_name,
            client_spec=ClientSpec(class_name=deployment.client_spec.class_name, args={}),
            max_sequence_length=deployment.max_sequence_length, max_request_length=deployment.max_request_length))


def tokenizer_context(window: Any) -> OurTokenizerContext:
    if window is None:
        raise ConfigError("HELM's adapter or metric needs the deployment's tokenizer, and this deployment has "
                          "none (give it a tokenizer_name with a tokenizer config)", field="tokenizer_name")
    return OurTokenizerContext(window.tokenizer)


def helm_tokenizer_service(window: Any) -> Any:
    from helm.benchmark.window_services.tokenizer_service import TokenizerService

    return TokenizerService(tokenizer_context(window))


def helm_metric_service(window: Any) -> Any:
    """HELM's MetricService on our tokenizer; None without one (metrics that count tokens then fail)."""
    from helm.benchmark.metrics.metric_service import MetricService

    return MetricService(tokenizer_context(window)) if window is not None else None
