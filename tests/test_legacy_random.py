"""numpy's legacy draws without numpy, and HELM's choice of eval instances built on them."""

from __future__ import annotations

import pytest

from pytest_llmeval.legacy_random import LegacyNumpyRandom
from pytest_llmeval.pipeline import downsample
from pytest_llmeval.scenarios.scenario import Instance, with_ids


@pytest.mark.parametrize(("n", "size"), [(1, 1), (5, 3), (135, 10), (1269, 20), (5000, 1000), (70000, 7)])
def test_sample_is_numpy_choice_without_replacement(n: int, size: int) -> None:
    np = pytest.importorskip("numpy")
    np.random.seed(0)
    expected = [int(i) for i in np.random.choice(n, size, replace=False)]
    assert LegacyNumpyRandom(0).sample(n, size) == expected


def test_permutation_is_numpys() -> None:
    np = pytest.importorskip("numpy")
    assert LegacyNumpyRandom(7).permutation(300) == [int(i) for i in np.random.RandomState(7).permutation(300)]


def _instances() -> list[Instance]:
    train = [Instance(f"t{n}", [], "train") for n in range(4)]
    valid = [Instance(f"v{n}", [], "valid") for n in range(30)]
    test = [Instance(f"x{n}", [], "test") for n in range(50)]
    return with_ids(train + valid + test)


def test_downsample_keeps_training_and_picks_helms_eval_instances_in_its_order() -> None:
    np = pytest.importorskip("numpy")
    instances = _instances()
    evaluated = [i for i in instances if i.split in ("valid", "test")]
    np.random.seed(0)  # helm/benchmark/runner.py: downsample_eval_instances
    helm = list(np.random.choice(evaluated, 10, replace=False))  # type: ignore[arg-type]
    chosen = downsample(instances, ("valid", "test"), 10)
    assert [i.id for i in chosen] == ["id0", "id1", "id2", "id3", *(i.id for i in helm)]
    assert [i.id for i in chosen[4:]] != sorted((i.id for i in chosen[4:]), key=lambda s: int(s[2:]))


def test_downsample_without_a_limit_or_under_it_keeps_all() -> None:
    instances = _instances()
    assert downsample(instances, ("test",), None) == [i for i in instances if i.split in ("train", "test")]
    assert downsample(instances, ("test",), 50) == [i for i in instances if i.split in ("train", "test")]
