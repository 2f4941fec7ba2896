"""Adapters: how instances become prompts and requests (and fit the context window)."""

from __future__ import annotations

from pytest_llmeval.adapters.adapter_spec import (
    ADAPT_GENERATION,
    ADAPT_MULTIPLE_CHOICE_JOINT,
    ADAPT_MULTIPLE_CHOICE_SEPARATE_ORIGINAL,
    AdapterSpec,
    RequestState,
)
from pytest_llmeval.adapters.context_window import ContextWindow
from pytest_llmeval.adapters.in_context import adapt, build_prompt, make_prompt, sample_examples
from pytest_llmeval.adapters.prompt import Prompt

__all__ = [
    "ADAPT_GENERATION", "ADAPT_MULTIPLE_CHOICE_JOINT", "ADAPT_MULTIPLE_CHOICE_SEPARATE_ORIGINAL", "AdapterSpec",
    "ContextWindow", "Prompt", "RequestState", "adapt", "build_prompt", "make_prompt", "sample_examples",
]
