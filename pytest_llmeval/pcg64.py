"""numpy's ``default_rng(seed).permutation(n)`` without numpy.

Hugging Face ``datasets`` shuffles with exactly that call, and HELM shuffles MATH with it before
it picks instances, so matching HELM's instances means drawing as numpy's default generator
does: PCG64 (XSL-RR output), seeded through ``SeedSequence``, and the Fisher-Yates shuffle of
``Generator.shuffle`` with its masked-rejection bounded integers.
"""

from __future__ import annotations

from itertools import cycle

_M32 = 0xFFFFFFFF
_M64 = (1 << 64) - 1
_M128 = (1 << 128) - 1
_PCG_MULTIPLIER = (2549297995355413924 << 64) + 4865540595714422341

# SeedSequence's hashing constants (numpy/random/bit_generator.pyx).
_INIT_A, _MULT_A = 0x43B0D7E5, 0x931E8875
_INIT_B, _MULT_B = 0x8B51F9DD, 0x58F38DED
_MIX_MULT_L, _MIX_MULT_R = 0xCA01F9DD, 0x4973F715
_XSHIFT = 16
_POOL_SIZE = 4


def _entropy_words(seed: int) -> list[int]:
    """A non-negative integer seed as numpy's little-endian 32-bit words (at least one)."""
    if seed < 0:
        raise ValueError("the seed must be non-negative")
    words = [0] if seed == 0 else []
    while seed:
        words.append(seed & _M32)
        seed >>= 32
    return words


def _seed_sequence_state(seed: int, n_words64: int) -> list[int]:
    """``SeedSequence(seed).generate_state(n_words64, np.uint64)``."""
    hash_const = _INIT_A

    def hashmix(value: int) -> int:
        nonlocal hash_const
        value = (value ^ hash_const) & _M32
        hash_const = (hash_const * _MULT_A) & _M32
        value = (value * hash_const) & _M32
        return value ^ (value >> _XSHIFT)

    def mix(x: int, y: int) -> int:
        result = (_MIX_MULT_L * x - _MIX_MULT_R * y) & _M32
        return result ^ (result >> _XSHIFT)

    entropy = _entropy_words(seed)
    pool = [hashmix(entropy[i] if i < len(entropy) else 0) for i in range(_POOL_SIZE)]
    for i_src in range(_POOL_SIZE):
        for i_dst in range(_POOL_SIZE):
            if i_src != i_dst:
                pool[i_dst] = mix(pool[i_dst], hashmix(pool[i_src]))
    for word in entropy[_POOL_SIZE:]:
        for i_dst in range(_POOL_SIZE):
            pool[i_dst] = mix(pool[i_dst], hashmix(word))

    words32: list[int] = []
    out_const = _INIT_B
    source = cycle(pool)
    for _ in range(2 * n_words64):
        value = (next(source) ^ out_const) & _M32
        out_const = (out_const * _MULT_B) & _M32
        value = (value * out_const) & _M32
        words32.append(value ^ (value >> _XSHIFT))
    return [words32[2 * i] | (words32[2 * i + 1] << 32) for i in range(n_words64)]


class PCG64:
    """numpy's ``PCG64(seed)``: a 128-bit LCG with the XSL-RR 64-bit output."""

    def __init__(self, seed: int) -> None:
        words = _seed_sequence_state(seed, 4)
        initstate = (words[0] << 64) | words[1]
        self._inc = (((words[2] << 64) | words[3]) << 1 | 1) & _M128
        self._state = 0
        self._step()
        self._state = (self._state + initstate) & _M128
        self._step()
        self._half: int | None = None  # the upper 32 bits of the last 64-bit draw, not yet used

    def _step(self) -> None:
        self._state = (self._state * _PCG_MULTIPLIER + self._inc) & _M128

    def next64(self) -> int:
        self._step()
        value = ((self._state >> 64) ^ self._state) & _M64
        rotation = self._state >> 122
        return ((value >> rotation) | (value << (64 - rotation))) & _M64

    def next32(self) -> int:
        """numpy's buffered 32-bit draw: the low half of a 64-bit draw, then its high half."""
        if self._half is not None:
            half, self._half = self._half, None
            return half
        value = self.next64()
        self._half = value >> 32
        return value & _M32

    def interval(self, bound: int) -> int:
        """numpy's ``random_interval``: uniform in ``[0, bound]`` by masked rejection."""
        if bound == 0:
            return 0
        mask = (1 << bound.bit_length()) - 1
        draw = self.next32 if bound <= _M32 else self.next64
        while True:
            value = draw() & mask
            if value <= bound:
                return value


def permutation(n: int, seed: int) -> list[int]:
    """``np.random.default_rng(seed).permutation(n)`` as a list."""
    rng = PCG64(seed)
    values = list(range(n))
    for i in range(n - 1, 0, -1):
        j = rng.interval(i)
        values[i], values[j] = values[j], values[i]
    return values
