"""numpy's legacy ``RandomState`` draws, without numpy: HELM seeds its generators and samples
with them, so matching its instances means drawing exactly as numpy does."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


class LegacyNumpyRandom:
    """The draws of numpy's legacy ``RandomState(seed)`` that HELM's generator makes.

    Both are MT19937; numpy seeds it with Knuth's initialisation of the 624 state words and
    bounds integers by masked rejection on 32-bit outputs, which Python's ``random`` does not.
    """

    def __init__(self, seed: int) -> None:
        state = [seed & 0xFFFFFFFF]
        for i in range(1, 624):
            previous = state[-1]
            state.append((1812433253 * (previous ^ (previous >> 30)) + i) & 0xFFFFFFFF)
        self._mt = random.Random()
        self._mt.setstate((3, (*state, 624), None))

    def _at_most(self, bound: int) -> int:
        """A uniform integer in ``[0, bound]``: mask to the bound's bit width, reject above it."""
        if bound == 0:
            return 0
        mask = (1 << bound.bit_length()) - 1
        while True:
            value = self._mt.getrandbits(32) & mask
            if value <= bound:
                return value

    def randint(self, low: int, high: int) -> int:
        """``RandomState.randint(low, high)``: ``high`` excluded."""
        return low + self._at_most(high - 1 - low)

    def choice(self, items: Sequence[T], size: int) -> list[T]:
        """``RandomState.choice(items, size)``: with replacement."""
        return [items[self._at_most(len(items) - 1)] for _ in range(size)]

    def shuffle(self, items: list[T]) -> None:
        """``RandomState.shuffle`` of a Python list (Fisher-Yates from the end)."""
        for i in reversed(range(1, len(items))):
            j = self._at_most(i)
            items[i], items[j] = items[j], items[i]

    def permutation(self, n: int) -> list[int]:
        """``RandomState.permutation(n)``: ``arange(n)`` shuffled in place."""
        order = list(range(n))
        self.shuffle(order)
        return order

    def sample(self, n: int, size: int) -> list[int]:
        """``RandomState.choice(n, size, replace=False)``: the first ``size`` of a permutation."""
        return self.permutation(n)[:size]

