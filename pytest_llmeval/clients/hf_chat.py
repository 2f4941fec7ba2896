"""Chat rendering for local models: the exact text the model sees, and where it stops.

The Hugging Face client and ``llmeval-check-model`` both render through these functions, so
the check shows exactly what the client sends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pytest_llmeval.requests import Message, Request


def merge_same_role(messages: Sequence[Message]) -> list[Message]:
    """Join consecutive messages of one role, as clembench does, so roles alternate."""
    merged: list[Message] = []
    for message in messages:
        if merged and merged[-1].role == message.role:
            merged[-1] = Message(message.role, merged[-1].content + "\n\n" + message.content)
        else:
            merged.append(message)
    return merged


def chat_template(tokenizer: Any, custom_chat_template: str | None) -> str | None:
    """The template in force: the registry entry's custom one, else the tokenizer's own."""
    return custom_chat_template or getattr(tokenizer, "chat_template", None)


def apply_template(tokenizer: Any, messages: Sequence[Message], custom_chat_template: str | None) -> str:
    """The messages, as given, through the chat template, ending with the generation prompt."""
    chat = [{"role": m.role, "content": m.content} for m in messages]
    return str(tokenizer.apply_chat_template(chat, chat_template=custom_chat_template, tokenize=False,
                                             add_generation_prompt=True))


def render_prompt(tokenizer: Any, request: Request, custom_chat_template: str | None,
                  apply_chat_template: bool | None) -> str:
    """The exact text the model sees: chat requests and (by default) prompts go through
    the chat template when the tokenizer has one, as HELM and clembench do; a verbatim prompt
    never does. Chat messages
    are merged by role first; with no template their contents are joined by blank lines."""
    template = chat_template(tokenizer, custom_chat_template)
    if request.messages is not None:
        merged = merge_same_role(request.messages)
        if not template:
            return "\n\n".join(m.content for m in merged)
        return apply_template(tokenizer, merged, custom_chat_template)
    use_template = bool(template) if apply_chat_template is None else apply_chat_template
    if request.verbatim or not (use_template and template):
        return request.prompt
    return apply_template(tokenizer, [Message("user", request.prompt)], custom_chat_template)


def stop_token_ids(tokenizer: Any, generation_config: Any) -> set[int]:
    """Token ids generation stops at: the generation config's eos ids and the tokenizer's eos."""
    ids: set[int] = set()
    for value in (getattr(generation_config, "eos_token_id", None), tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list):
            ids.update(v for v in value if isinstance(v, int))
    return ids
