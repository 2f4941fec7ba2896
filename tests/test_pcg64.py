"""numpy's default generator without numpy: raw draws and permutations equal numpy's."""

from __future__ import annotations

import pytest

from pytest_llmeval.pcg64 import PCG64, permutation

# numpy 2.x: np.random.default_rng(42).bit_generator.random_raw(3) and .permutation(25).
RAW_42 = [14276969152011380360, 8095878257575067585, 15838336090824644132]
PERMUTATION_25_42 = [15, 16, 19, 20, 9, 7, 17, 24, 6, 10, 3, 0, 21, 18, 12, 5, 11, 14, 23, 2, 4, 22, 1, 13, 8]


def test_raw_draws_are_numpys() -> None:
    rng = PCG64(42)
    assert [rng.next64() for _ in range(3)] == RAW_42


def test_permutation_is_numpys_recorded_one() -> None:
    assert permutation(25, 42) == PERMUTATION_25_42


@pytest.mark.parametrize("seed", [0, 1, 42, 2**32 + 5, 2**70 + 3])
@pytest.mark.parametrize("n", [0, 1, 2, 10, 257, 7500])
def test_permutation_equals_numpy(seed: int, n: int) -> None:
    np = pytest.importorskip("numpy")
    assert permutation(n, seed) == np.random.default_rng(seed).permutation(n).tolist()


def test_32_bit_draws_use_both_halves() -> None:
    """numpy keeps the high half of a 64-bit draw for the next 32-bit one."""
    first, second = PCG64(7), PCG64(7)
    value = first.next64()
    assert [second.next32(), second.next32()] == [value & 0xFFFFFFFF, value >> 32]


def test_a_negative_seed_is_refused() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        PCG64(-1)
