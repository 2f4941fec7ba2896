"""The light token counter is used only where transformers would load tokenizer.json unchanged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.clients.token_counter import TokenCounter, light_counter

tokenizers = pytest.importorskip("tokenizers")


def _folder(tmp_path: Path, config: dict[str, Any]) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"[UNK]": 0, "hello": 1, "world": 2, "!": 3}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    return tmp_path


class Full:
    """Stands in for the transformers tokenizer; counts how often it is needed."""

    loads = 0

    def __call__(self) -> Full:
        Full.loads += 1
        return self

    def decode(self, ids: list[int]) -> str:
        return " ".join(str(i) for i in ids)

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return [99]


def test_counts_without_the_full_tokenizer(tmp_path: Path) -> None:
    Full.loads = 0
    counter = light_counter(_folder(tmp_path, {"tokenizer_class": "TokenizersBackend"}), Full())
    assert isinstance(counter, TokenCounter)
    assert counter.encode("hello world !") == [1, 2, 3]
    assert counter.count_many(["hello", "hello world", ""]) == [1, 2, 0]
    assert Full.loads == 0
    assert counter.decode([1, 2]) == "1 2" and Full.loads == 1  # decoding asks the full tokenizer
    assert counter.encode("x", add_special_tokens=True) == [99]


@pytest.mark.parametrize("key", ["add_prefix_space", "legacy", "auto_map"])
def test_configs_that_rewrite_the_pipeline_use_the_full_tokenizer(tmp_path: Path, key: str) -> None:
    assert light_counter(_folder(tmp_path, {key: True}), Full()) is None


def test_folders_without_tokenizer_json_use_the_full_tokenizer(tmp_path: Path) -> None:
    (tmp_path / "tokenizer_config.json").write_text("{}")
    assert light_counter(tmp_path, Full()) is None
    (tmp_path / "tokenizer.json").write_text("{not json")
    (tmp_path / "tokenizer_config.json").write_text("{not json")
    assert light_counter(tmp_path, Full()) is None
