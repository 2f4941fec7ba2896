"""Prompt token counts: a cheap bound that spares encoding, and counts remembered across runs."""

from __future__ import annotations

from pathlib import Path

from pytest_llmeval.adapters import ContextWindow
from pytest_llmeval.clients.cache import RequestCache


class CountingTokenizer:
    """One token per character; counts how many texts it had to encode."""

    def __init__(self, bound: bool = False) -> None:
        self.encoded: list[str] = []
        self.bound = bound

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        self.encoded.append(text)
        return [ord(c) for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(chr(i) for i in ids)

    def upper_bound(self, text: str) -> int | None:
        return len(text.encode()) if self.bound else None


def test_a_text_under_the_bound_fits_without_encoding() -> None:
    tokenizer = CountingTokenizer(bound=True)
    window = ContextWindow(tokenizer, max_request_length=10)
    assert window.fits("short", completion_tokens=5)
    assert tokenizer.encoded == []
    assert window.fits("é" * 8, completion_tokens=1)  # 16 bytes is over the budget, so it is counted: 8 tokens
    assert tokenizer.encoded == ["é" * 8]
    assert window.fits("é" * 8, completion_tokens=2) and not window.fits("é" * 8, completion_tokens=3)


def test_counts_are_remembered_per_tokenizer_across_windows(tmp_path: Path) -> None:
    cache = RequestCache(tmp_path / "requests.sqlite")
    first = CountingTokenizer()
    window = ContextWindow(first, 100, cache.token_counts("tok-a"))
    window.prime(["one", "three", "one"])
    assert sorted(first.encoded) == ["one", "three"]
    assert window.count("fifty") == 5  # counted during fitting, stored at the next prime
    window.prime([])

    again = CountingTokenizer()
    rerun = ContextWindow(again, 100, cache.token_counts("tok-a"))
    rerun.prime(["one", "three", "fifty"])
    assert [rerun.count(t) for t in ("one", "three", "fifty")] == [3, 5, 5]
    assert again.encoded == []  # everything came from the cache
    assert rerun.count("seven") == 5 and again.encoded == ["seven"]

    other = CountingTokenizer()
    ContextWindow(other, 100, cache.token_counts("tok-b")).prime(["one"])
    assert other.encoded == ["one"]  # another tokenizer's counts are its own


def test_bulk_counting_uses_count_many_when_there_is_one() -> None:
    class Batched(CountingTokenizer):
        def count_many(self, texts: list[str]) -> list[int]:
            self.batches = list(texts)
            return [len(t) for t in texts]

    tokenizer = Batched()
    window = ContextWindow(tokenizer, None)
    window.prime(["ab", "abc", "ab"])
    assert tokenizer.batches == ["ab", "abc"] and tokenizer.encoded == []
    assert window.count("abc") == 3
