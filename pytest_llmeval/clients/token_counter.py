"""Counting prompt tokens without importing transformers.

Fitting prompts into the context window and counting ``num_prompt_tokens`` only needs token
ids. A fast tokenizer's ``tokenizer.json`` gives exactly those ids through the small
``tokenizers`` library, which imports in milliseconds where transformers (and torch behind
it) takes seconds. That matters most for a fully cached run, which otherwise loads no model
at all. Anything beyond plain encoding (special tokens, decoding for truncation) goes to the
full tokenizer, loaded only if asked for.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# tokenizer_config.json keys with which transformers rewrites the tokenizer.json pipeline
# at load time; with any of these the full tokenizer counts.
_REWRITING_KEYS = ("add_prefix_space", "legacy", "from_slow", "auto_map", "split_special_tokens",
                   "do_lower_case", "strip_accents", "clean_up_tokenization_spaces_on_encode")


class TokenCounter:
    """Encodes with ``tokenizers`` straight from ``tokenizer.json``; decodes with the full one."""

    def __init__(self, tokenizer_json: Path, full: Callable[[], Any]) -> None:
        from tokenizers import Tokenizer

        self._file = tokenizer_json
        self._fast = Tokenizer.from_file(str(tokenizer_json))
        self._fast.no_truncation()
        self._fast.no_padding()
        self._load_full = full
        self._bytes_bound = self._fast.normalizer is None and _byte_level(self._fast)

    @property
    def identity(self) -> str:
        """What a remembered token count is keyed by: the tokenizer file's content."""
        from pytest_llmeval.paths import file_sha256

        return file_sha256(self._file)

    def upper_bound(self, text: str) -> int | None:
        """At most this many tokens, known without encoding: byte-level BPE with no normaliser
        never makes more tokens than the text has UTF-8 bytes. None when no cheap bound holds."""
        return len(text.encode("utf-8")) if self._bytes_bound else None

    @property
    def full(self) -> Any:
        return self._load_full()

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        if add_special_tokens:
            return list(self.full.encode(text, add_special_tokens=True))
        return list(self._fast.encode(text, add_special_tokens=False).ids)

    def count_many(self, texts: Sequence[str]) -> list[int]:
        """Token counts of many texts at once (encoded in parallel by the Rust library)."""
        return [len(e.ids) for e in self._fast.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, token_ids: list[int]) -> str:
        return str(self.full.decode(token_ids))


def _byte_level(tokenizer: Any) -> bool:
    """Whether every token stands for at least one byte of the text (byte-level pre-tokenising)."""
    from tokenizers import pre_tokenizers

    found = tokenizer.pre_tokenizer
    parts = getattr(found, "pretokenizers", None) or [found]
    return any(isinstance(part, pre_tokenizers.ByteLevel) for part in parts)


def light_counter(folder: Path, full: Callable[[], Any]) -> TokenCounter | None:
    """A :class:`TokenCounter` for a local tokenizer folder that transformers loads as is;
    None where only the full tokenizer gives the right ids."""
    tokenizer_json = folder / "tokenizer.json"
    config_file = folder / "tokenizer_config.json"
    if not (tokenizer_json.is_file() and config_file.is_file()):
        return None
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
        import tokenizers  # noqa: F401
    except (ValueError, OSError, ImportError):
        return None
    if not isinstance(config, dict) or any(key in config for key in _REWRITING_KEYS):
        return None
    return TokenCounter(tokenizer_json, full)
