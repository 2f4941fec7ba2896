"""The local Hugging Face client on the real bundled model: batching, shared prefixes, chat."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from pytest_llmeval.adapters import adapt
from pytest_llmeval.clients import Credentials, accelerators, hf_loading, make_client
from pytest_llmeval.clients.hf_chat import merge_same_role
from pytest_llmeval.clients.hf_planning import prefix_groups
from pytest_llmeval.clients.huggingface import HuggingFaceClient
from pytest_llmeval.registry import DEFAULT_MODEL, Registry
from pytest_llmeval.requests import Message, Request
from pytest_llmeval.runspec import Description, build_run_spec
from pytest_llmeval.scenarios import DataLocator

pytest.importorskip("torch")


def test_prefix_groups_keep_a_token_of_their_own() -> None:
    encoded = [[1, 2, 3, 4, 9], [1, 2, 3, 4, 8, 7], [5, 6], [1, 2, 3, 4]]
    groups = prefix_groups([0, 1, 2, 3], encoded, minimum=3)
    assert sorted((p, sorted(m)) for p, m in groups) == [(0, [2]), (3, [0, 1, 3])]
    lonely = [[1, 2], [3, 4], [5, 6, 7, 8], [5, 6, 7, 9]]
    assert sorted((p, sorted(m)) for p, m in prefix_groups([0, 1, 2, 3], lonely, minimum=3)) == [
        (0, [0, 1]), (3, [2, 3])]
    assert prefix_groups([0, 1], encoded, minimum=0) == [(0, [0, 1])]


def test_merge_same_role_alternates() -> None:
    merged = merge_same_role([Message("user", "a"), Message("user", "b"), Message("assistant", "c")])
    assert [(m.role, m.content) for m in merged] == [("user", "a\n\nb"), ("assistant", "c")]


@pytest.fixture(scope="module")
def mmlu_requests() -> list[Request]:
    deployment = Registry.load().deployment(DEFAULT_MODEL)
    spec = build_run_spec(Description.parse("mmlu:subject=anatomy,eval_split=test"), DEFAULT_MODEL,
                          deployment.model_name)
    instances = spec.build_scenario(DataLocator.from_settings(None)).get_instances()
    states = adapt(spec.adapter_spec, instances)
    return [dataclasses.replace(s.request, top_k_per_token=4) for s in states[:6]]


@pytest.fixture(scope="module")
def clients() -> Iterator[tuple[HuggingFaceClient, HuggingFaceClient]]:
    """The same model twice: every prompt in full, one at a time; and shared prefixes, batched."""
    deployment = Registry.load().deployment(DEFAULT_MODEL)
    full = make_client(deployment, Credentials())
    shared = make_client(deployment, Credentials())
    assert isinstance(full, HuggingFaceClient) and isinstance(shared, HuggingFaceClient)
    full.min_shared_prefix, full._batch_size = 0, 1
    shared.min_shared_prefix, shared._batch_size = 32, 4
    yield full, shared


@pytest.mark.slow
def test_shared_prefix_gives_the_full_prompt_logprobs(clients: tuple[HuggingFaceClient, HuggingFaceClient],
                                                      mmlu_requests: list[Request]) -> None:
    full, shared = clients
    expected, got = full.generate(mmlu_requests), shared.generate(mmlu_requests)
    assert got[0].raw_response["shared_prefix_tokens"] > 200
    assert shared.model._llmeval_prefix_attention is True  # the prefix was attended to where it was stored
    for a, b in zip(expected, got, strict=True):
        assert a.text == b.text
        top_a, top_b = a.completions[0].tokens[0].top_logprobs, b.completions[0].tokens[0].top_logprobs
        assert set(top_a) == set(top_b) and len(top_a) == 4
        for letter, value in top_a.items():
            assert top_b[letter] == pytest.approx(value, abs=1e-4)


@pytest.mark.slow
def test_shared_prefix_scoring_and_generation_match(clients: tuple[HuggingFaceClient, HuggingFaceClient],
                                                     mmlu_requests: list[Request]) -> None:
    full, shared = clients
    scoring = [dataclasses.replace(r, prompt=r.prompt + " C", echo_prompt=True, max_tokens=0, top_k_per_token=1)
               for r in mmlu_requests[:4]]
    for a, b in zip(full.generate(scoring), shared.generate(scoring), strict=True):
        tokens_a, tokens_b = a.completions[0].tokens, b.completions[0].tokens
        assert [t.text for t in tokens_a] == [t.text for t in tokens_b]
        assert max(abs(x.logprob - y.logprob) for x, y in zip(tokens_a, tokens_b)) < 1e-4
    generation = [dataclasses.replace(r, max_tokens=5, top_k_per_token=1, stop_sequences=("Question",))
                  for r in mmlu_requests[:4]]
    for a, b in zip(full.generate(generation), shared.generate(generation), strict=True):
        assert a.text == b.text and "Question" not in a.text
        assert a.completions[0].logprob == pytest.approx(b.completions[0].logprob, abs=1e-4)


@pytest.mark.slow
def test_prompt_tokens_are_counted_without_transformers_as_with_it(mmlu_requests: list[Request]) -> None:
    from pytest_llmeval.clients.token_counter import TokenCounter

    client = make_client(Registry.load().deployment(DEFAULT_MODEL), Credentials())
    assert isinstance(client, HuggingFaceClient)
    counter, tokenizer = client.token_counter, client.tokenizer
    assert isinstance(counter, TokenCounter)
    texts = [r.prompt for r in mmlu_requests] + ["  odd  spacing\n\ttabs <|im_start|> é ü 中文"]
    for text in texts:
        assert counter.encode(text) == tokenizer.encode(text, add_special_tokens=False)
        assert counter.upper_bound(text) >= len(counter.encode(text))  # byte-level BPE: at most a token a byte
    assert counter.count_many(texts) == [len(tokenizer.encode(t, add_special_tokens=False)) for t in texts]
    ids = tokenizer.encode(texts[0], add_special_tokens=False)[-20:]
    assert counter.decode(ids) == tokenizer.decode(ids)


@pytest.mark.slow
def test_chat_and_plain_prompts(clients: tuple[HuggingFaceClient, HuggingFaceClient]) -> None:
    full, _ = clients
    chat = Request(DEFAULT_MODEL, messages=(Message("user", "Say hello to Bob."),), max_tokens=12)
    assert full.render(chat).startswith("<|im_start|>system")
    plain = Request(DEFAULT_MODEL, prompt="The capital of France is", max_tokens=3)
    assert full.render(plain) == "The capital of France is"  # the bundled deployment sends plain text
    [greeting, completion] = full.generate([chat, plain])
    assert "bob" in greeting.text.lower()
    assert greeting.completions[0].finish_reason in ({"reason": "length"}, {"reason": "endoftext"})
    assert len(completion.completions[0].tokens) <= 3


@pytest.mark.slow
def test_a_turn_of_conversations_side_by_side_is_one_batch() -> None:
    """``generate_together`` (a lockstep turn) decodes all of its requests in one batch, beyond
    the client's batch size, with the answers ``generate_stream`` gives in batches of that size."""
    client = make_client(Registry.load().deployment(DEFAULT_MODEL), Credentials())
    assert isinstance(client, HuggingFaceClient) and client.batch_size == 8  # the CPU default
    names = ["Ann", "Bob", "Cid", "Dee", "Eve", "Fay", "Gus", "Hal", "Ida", "Jo", "Kim", "Lu"]
    turn = [Request(DEFAULT_MODEL, messages=(Message("user", f"Say hello to {name}."),), max_tokens=4)
            for name in names]
    together = list(client.generate_together(turn))
    planned = list(client.generate_stream(turn))
    assert [len(indices) for indices, _ in together] == [12]
    assert sorted(len(indices) for indices, _ in planned) == [4, 8]
    texts = {i: r.text for indices, results in planned for i, r in zip(indices, results)}
    assert {i: r.text for i, r in zip(together[0][0], together[0][1])} == texts


@pytest.mark.slow
@pytest.mark.parametrize("units", [False, True])
def test_half_precision_weights_warn_on_a_cpu_without_their_matrix_units(
        units: bool, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(hf_loading, "_MODELS", {})  # a load of its own, not a resident model
    monkeypatch.setattr(accelerators, "cpu_has_matrix_units", lambda dtype: units)
    deployment = Registry.load().deployment(DEFAULT_MODEL)
    half = dataclasses.replace(deployment, client_spec=dataclasses.replace(
        deployment.client_spec, args={**deployment.client_spec.args, "torch_dtype": "bfloat16", "device": "cpu"}))
    client = make_client(half, Credentials())
    assert isinstance(client, HuggingFaceClient)
    with caplog.at_level("WARNING", logger="pytest_llmeval.models"):
        client.model  # noqa: B018 (loads it)
    slow = [r.getMessage() for r in caplog.records if "slower than float32" in r.getMessage()]
    if units:
        assert slow == []
    else:
        assert len(slow) == 1 and "bfloat16 weights on a CPU without AVX-512 BF16 or AMX" in slow[0]
        assert "client_spec.args.torch_dtype: float32" in slow[0]


def test_this_cpus_matrix_units_are_read_from_torch() -> None:
    import torch

    assert accelerators.cpu_has_matrix_units("float32")
    assert accelerators.cpu_has_matrix_units("bfloat16") == (
        torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def test_half_precision_on_a_cpu_projects_to_the_vocabulary_in_fp32(mmlu_requests: list[Request]) -> None:
    import torch

    deployment = Registry.load().deployment(DEFAULT_MODEL)
    half = dataclasses.replace(deployment, client_spec=dataclasses.replace(
        deployment.client_spec, args={**deployment.client_spec.args, "torch_dtype": "bfloat16", "device": "cpu"}))
    client, plain = make_client(half, Credentials()), make_client(deployment, Credentials())
    assert isinstance(client, HuggingFaceClient) and isinstance(plain, HuggingFaceClient)
    assert client.identity()["logits"] == "float32" and "logits" not in plain.identity()
    model = client.model
    assert model.dtype == torch.bfloat16 and model.get_output_embeddings().weight.dtype == torch.float32
    ids = client.tokenizer(mmlu_requests[0].prompt, return_tensors="pt").input_ids
    with torch.inference_mode():
        logits = model(input_ids=ids, logits_to_keep=1).logits[0, -1]
    # fp32 values, not bf16 ones widened: most are not representable in bf16
    assert logits.dtype == torch.float32 and (logits.to(torch.bfloat16).float() != logits).float().mean() > 0.9
    got, expected = client.generate(mmlu_requests), plain.generate(mmlu_requests)
    assert [r.text for r in got] == [r.text for r in expected]
    for a, b in zip(got, expected, strict=True):
        assert a.completions[0].logprob == pytest.approx(b.completions[0].logprob, abs=0.1)
