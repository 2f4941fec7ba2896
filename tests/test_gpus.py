"""GPU pinning per xdist worker and the resident-model limit (no GPU needed)."""

from __future__ import annotations

import pytest

from pytest_llmeval.clients import hf_loading
from pytest_llmeval.clients.accelerators import pin_worker_gpu, visible_devices


def test_each_worker_takes_its_own_visible_device(monkeypatch: pytest.MonkeyPatch) -> None:
    for worker, expected in (("gw0", "4"), ("gw1", "6"), ("gw2", "4")):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
        assert pin_worker_gpu(worker) == expected
        assert visible_devices() == [expected]


def test_no_pinning_outside_xdist_or_without_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    assert pin_worker_gpu() is None
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert pin_worker_gpu("gw0") is None


def test_least_recently_used_model_is_unloaded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(hf_loading.MAX_RESIDENT_ENV, "2")
    source = hf_loading.WeightsSource(path="x")
    models: dict[tuple[object, ...], object] = {(source, "a"): object(), (source, "b"): object()}
    monkeypatch.setattr(hf_loading, "_MODELS", models)
    hf_loading._evict_for_one_more()
    assert list(models) == [(source, "b")]
