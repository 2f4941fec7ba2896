"""The hooks pytest-llmeval adds to pytest (added in ``pytest_addhooks``, as pytest-xdist's ``newhooks``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_llmeval.extensions import Registries


@pytest.hookspec(historic=True)
def pytest_llmeval_register(registries: Registries) -> None:
    """Register scenarios, value expanders, metrics, adapters, game folders or client backends
    into the session's ``registries`` (a :class:`pytest_llmeval.extensions.Registries`).

    Called once per session (in each xdist worker too) after the built-ins and the entry points;
    a ``conftest.py`` loaded later during collection is called when it is loaded. For example::

        def pytest_llmeval_register(registries):
            registries.metrics.add("shouted", lambda gold, pred: float(pred.strip() == gold.upper()),
                                   origin=__file__)
    """
