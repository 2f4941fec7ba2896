"""Freezing the heap at the end of a model run, and only in pytest's own process."""

from __future__ import annotations

import gc
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_llmeval.heap import freeze_for_exit


def _config(plugins: tuple[Any, ...]) -> Any:
    return types.SimpleNamespace(invocation_params=types.SimpleNamespace(plugins=plugins))


@pytest.fixture()
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_freezes_after_a_model_library_was_loaded(unfrozen: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", types.ModuleType("torch"))
    freeze_for_exit(_config(()))
    assert gc.get_freeze_count() > 0


def test_in_process_sessions_keep_collecting(unfrozen: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", types.ModuleType("torch"))
    freeze_for_exit(_config((object(),)))
    assert gc.get_freeze_count() == 0


def test_light_runs_are_left_alone(unfrozen: None, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("torch", "transformers"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    freeze_for_exit(_config(()))
    assert gc.get_freeze_count() == 0
